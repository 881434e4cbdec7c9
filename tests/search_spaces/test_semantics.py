"""One grammar semantics: every walker agrees with the derivation; the public derive API."""

from __future__ import annotations

import numpy as np
import pytest

from search_spaces import (
    NUM_CLASSES,
    ArchDecider,
    Architecture,
    Cell,
    Choice,
    Grammar,
    Op,
    RandomDecider,
    Recorder,
    Ref,
    Repeat,
    Residual,
    SearchSpace,
    SearchSpaceError,
    Seq,
    Value,
    derive,
)
from search_spaces.derivation import DCell, walk_tree
from search_spaces.plan import Planner, plan, plan_layers


class _Odometer:
    """Decides by a prefix of choice indices, then the first choice; remembers the trail."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix, self.trail = prefix, []

    def decide(self, path, choices, probs, kind):
        k = len(self.trail)
        i = self.prefix[k] if k < len(self.prefix) else 0
        self.trail.append((i, len(choices)))
        return choices[i]


def every_architecture(space: SearchSpace) -> set[str]:
    """Brute force: every derivation of the grammar, by backtracking over decisions."""
    keys, prefix = set(), []
    while True:
        odometer = _Odometer(prefix)
        keys.add(Architecture(derive(space, odometer).recorder.decisions).key)
        trail = odometer.trail
        while trail and trail[-1][0] + 1 >= trail[-1][1]:
            trail.pop()
        if not trail:
            return keys
        prefix = [i for i, _ in trail[:-1]] + [trail[-1][0] + 1]


def recursive_space(max_depth: int) -> SearchSpace:
    """At the bound, 'seq' and 'res' (which recurse) are not allowed: the limit filters choices."""
    grammar = Grammar({
        "net": Seq(stem=Op("conv_bn_act", out=4), body=Ref("m"), head=Op("classifier", out=NUM_CLASSES)),
        "m": Choice({"op": Op("act", kind=Value(["relu", "gelu"])), "seq": Seq(a=Ref("m"), b=Ref("m")),
                     "res": Residual(Ref("m"))}, probs=[0.2, 0.5, 0.3]),
    }, max_depth=max_depth)
    return SearchSpace(grammar, input_shape=(1, 4, 4))


@pytest.mark.parametrize("max_depth", [1, 2, 3])
def test_size_under_the_recursion_limit_equals_brute_force(max_depth):
    space = recursive_space(max_depth)
    assert space.grammar.is_recursive
    assert space.size() == len(every_architecture(space))


def test_size_of_cell_spaces_equals_brute_force():
    ops = Choice({"conv": Op("relu_conv_bn", kernel=Value([1, 3])), "skip": Op("skip")})
    grammar = Grammar({"net": Seq(stem=Op("conv_bn_act", out=4), a=Cell(ops, nodes=2),
                                  b=Cell(ops, nodes=2, in_degree=1), head=Op("classifier", out=NUM_CLASSES))})
    space = SearchSpace(grammar, input_shape=(1, 4, 4))
    assert space.size() == len(every_architecture(space)) == 27 * 18  # 3 edges x 3 ops; (1 x 3) x (2 x 3) inputs and ops


def _limited_choice_space() -> SearchSpace:
    """Not recursive, but the depth bound rules out one alternative of a choice."""
    grammar = Grammar({
        "net": Seq(stem=Op("conv_bn_act", out=4, kernel=Value([1, 3])),
                   mid=Choice({"deep": Ref("deep"), "flat": Op("conv_bn_act", kernel=Value([1, 3])),
                               "skip": Op("skip")}),
                   head=Op("classifier", out=NUM_CLASSES)),
        "deep": Seq(a=Ref("deeper")),
        "deeper": Op("conv_bn_act", kernel=Value([3, 5])),
    }, max_depth=1)
    return SearchSpace(grammar, input_shape=(1, 4, 4))


def test_the_recursion_limit_filters_every_walker_alike():
    space = _limited_choice_space()
    table = space.decision_table
    assert table is not None
    assert table.paths == ["stem.kernel", "mid", "mid.flat.kernel"]
    assert table.choices[1] == ("flat", "skip")  # 'deep' needs two nested references
    assert space.encoding_size == int(table.sizes.sum()) == 6
    assert space.size() == len(every_architecture(space)) == 6
    archs = space.sample_batch(20, 0)
    plain = np.stack([space.encode(Architecture(a.to_dict())) for a in archs])
    np.testing.assert_array_equal(space.encode_batch(archs), plain)
    assert space.realisable_layers().method == "grammar"


def test_decision_table_slots_are_the_derivations_decisions(small_space):
    space, _ = small_space
    table = space.decision_table
    if table is None:
        assert space.grammar.is_recursive
        return
    assert space.encoding_size == int(table.sizes.sum())
    gen = np.random.default_rng(0)
    for _ in range(30):
        rec = derive(space, RandomDecider(gen)).recorder
        row = table.to_matrix([Architecture(rec.decisions)])[0]
        assert table.valid(row[None]).all()  # the walk reaches exactly the active slots
        for path, choices in rec.choices.items():
            assert table.choices[table.paths.index(path)] == choices


def tiny_grammar() -> Grammar:
    edge = Choice({"conv": Op("relu_conv_bn", kernel=Value([1, 3])), "skip": Op("skip")})
    return Grammar({"net": Seq(
        stem=Op("conv_bn_act", out=4, kernel=Value([1, 3])),
        mix=Choice({"a": Op("act"), "b": Op("batchnorm")}),
        body=Repeat(Op("conv_bn_act", kernel=3), depth=[1, 2]),
        cell=Cell(edge, nodes=2, in_degree=1),
        head=Op("classifier", out=NUM_CLASSES),
    )})


def test_recorder_kinds_and_origins():
    grammar = tiny_grammar()
    decisions = {"stem.kernel": 3, "mix": "b", "body.depth": 2, "cell.node1.inputs": (0,),
                 "cell.node1.op0": "conv", "cell.node1.op0.conv.kernel": 1,
                 "cell.node2.inputs": (1,), "cell.node2.op0": "skip"}
    tree, rec = derive(grammar, ArchDecider(decisions))
    assert rec.decisions == decisions and list(rec) == list(decisions)  # walk order
    kinds = {p: rec.kinds[p] for p in rec}
    assert kinds == {"stem.kernel": "value", "mix": "choice", "body.depth": "depth",
                     "cell.node1.inputs": "inputs", "cell.node1.op0": "choice",
                     "cell.node1.op0.conv.kernel": "value", "cell.node2.inputs": "inputs",
                     "cell.node2.op0": "choice"}
    stem = rec["stem.kernel"]
    assert (stem.value, stem.choices, stem.origin.op, stem.origin.param) == (3, (1, 3), "conv_bn_act", "kernel")
    assert rec.origins["mix"].expr.labels == ("a", "b") and rec.origins["mix"].cell is None
    assert rec.origins["body.depth"].expr is dict(grammar.rules["net"].parts)["body"]
    assert rec.choices["cell.node2.inputs"] == ((0,), (1,))
    assert isinstance(rec.origins["cell.node2.inputs"].expr, Cell)
    assert {p: rec.origins[p].cell for p in rec if p.startswith("cell")} == {
        "cell.node1.inputs": "cell", "cell.node1.op0": "cell", "cell.node1.op0.conv.kernel": None,
        "cell.node2.inputs": "cell", "cell.node2.op0": "cell"}
    cells = [n for n in walk_tree(tree) if isinstance(n, DCell)]
    assert [c.path for c in cells] == ["cell"] and [[s for s, _ in e] for e in cells[0].nodes] == [[0], [1]]


def test_derive_takes_a_space_or_grammar_and_checks_deciders():
    space = SearchSpace(tiny_grammar(), input_shape=(1, 8, 8))
    gen = np.random.default_rng(3)
    arch = space.sample(gen)
    tree, rec = derive(space, ArchDecider(arch))
    assert Architecture(rec.decisions) == arch
    # the plan IR from the tree is the space's own plan
    assert plan_layers(plan(tree, (1, 8, 8), 10)) == space.layers(arch, (1, 8, 8), 10)
    recorder = Recorder(ArchDecider(arch))
    assert derive(space.grammar, recorder).recorder is recorder

    class Bad:
        def decide(self, path, choices, probs, kind):
            return "nope"

    with pytest.raises(SearchSpaceError, match="answered 'nope' at 'stem.kernel'; allowed values: 1, 3"):
        derive(space, Bad())
    with pytest.raises(SearchSpaceError, match="expected a SearchSpace or a Grammar"):
        derive("nb201", Bad())
    with pytest.raises(SearchSpaceError, match="must have decide"):
        derive(space, object())


def test_planner_edge_strides_reducing_edges():
    from search_spaces.derivation import DOp

    planner = Planner(10)
    node = DOp("c.edge_2_0", "relu_conv_bn", {"kernel": 3})
    assert planner.edge(node, (4, 8, 8), False).out_shape == (4, 8, 8)
    assert planner.edge(node, (4, 8, 8), True).out_shape == (4, 4, 4)
    with pytest.raises(SearchSpaceError, match="reduction cell must be ops with a 'stride'"):
        planner.edge(DOp("c.edge_2_0", "act", {}), (4, 8, 8), True)
