"""NAS-Bench-201 cell space: 6 edges x 5 ops, 15,625 architectures.

Of those, 6,466 are unique up to isomorphism (NAS-Bench-201 paper, Dong & Yang
2020); :func:`nb201_canonical` computes a canonical form so duplicates can be
detected (see tests for the count it yields).
"""

from __future__ import annotations

from search_spaces.architecture import Architecture
from search_spaces.builtin._checks import positive
from search_spaces.errors import ArchitectureError
from search_spaces.grammar import Cell, Choice, Grammar, Op, Ref, Seq
from search_spaces.ops import NUM_CLASSES
from search_spaces.registry import register_space
from search_spaces.space import SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Standard NAS-Bench-201 edge order: node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1, 2.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def _edge_path(j: int, i: int) -> str:
    return f"cell.edge_{j}_{i}"


@register_space("nb201")
def nb201(channels: int = 16, cells_per_stage: int = 5, input_shape=(3, 32, 32)) -> SearchSpace:
    """NAS-Bench-201: one cell genotype (4 nodes, 6 edges) in a 3-stage ResNet-like skeleton."""
    positive(channels=channels, cells_per_stage=cells_per_stage)
    ops = Choice({
        "none": Op("zero"),
        "skip_connect": Op("skip"),
        "nor_conv_1x1": Op("relu_conv_bn", kernel=1),
        "nor_conv_3x3": Op("relu_conv_bn", kernel=3),
        "avg_pool_3x3": Op("pool", kind="avg", kernel=3),
    })
    items: dict = {"stem": Op("conv_bn_act", out=channels, kernel=3, act="none")}
    for stage in range(3):
        if stage:
            items[f"reduce{stage}"] = Op("resblock", out=channels * 2**stage, stride=2)
        for k in range(cells_per_stage):
            items[f"stage{stage + 1}_cell{k + 1}"] = Ref("cell", shared=True)
    items["lastbn"] = Op("batchnorm")
    items["lastact"] = Op("act", kind="relu")
    items["head"] = Op("classifier", out=NUM_CLASSES)
    grammar = Grammar({"net": Seq(**items), "cell": Cell(ops, nodes=3, inputs=1)})
    return SearchSpace(grammar, name="nb201",
                       description="NAS-Bench-201 cell: 6 edges x 5 ops (6,466 unique up to isomorphism)",
                       input_shape=tuple(input_shape), num_classes=10)


def to_nb201_string(arch: Architecture) -> str:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` in the standard edge order."""
    parts = []
    for j in (1, 2, 3):
        ops = [f"{arch[_edge_path(j, i)]}~{i}" for i in range(j)]
        parts.append("|" + "|".join(ops) + "|")
    return "+".join(parts)


def from_nb201_string(text: str) -> Architecture:
    """Parse a NAS-Bench-201 architecture string; errors name the bad part."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise ArchitectureError(f"NAS-Bench-201 string needs 3 nodes separated by '+', got {text!r}")
    decisions = {}
    for j, node in enumerate(nodes, start=1):
        edges = [e for e in node.strip("|").split("|") if e]
        if len(edges) != j:
            raise ArchitectureError(f"node {j} of {text!r} needs {j} edges, got {len(edges)}")
        for edge in edges:
            op, _, src = edge.partition("~")
            if op not in OPS or not src.isdigit() or int(src) >= j:
                raise ArchitectureError(
                    f"bad edge {edge!r} in node {j} of {text!r}; ops are {', '.join(OPS)}"
                )
            decisions[_edge_path(j, int(src))] = op
    if len(decisions) != 6:
        raise ArchitectureError(f"NAS-Bench-201 string {text!r} repeats an edge")
    return Architecture(decisions)


def nb201_canonical(arch: Architecture) -> str:
    """Canonical form up to isomorphism, matching NAS-Bench-201's count of 6,466.

    Each node is written as the sorted ``+``-sum of its incoming terms: a "none"
    edge, or any edge leaving a node that is exactly zero, contributes ``#``;
    "skip_connect" passes its source's expression through; any other op writes
    ``(source)@op``. The output node's expression is the form. Over the 15,625
    architectures this yields 6,466 classes, the number the NAS-Bench-201 paper
    reports (tested).
    """
    expr = {0: "x"}
    for j in (1, 2, 3):
        terms = []
        for i in range(j):
            op, source = arch[_edge_path(j, i)], expr[i]
            if op == "none" or source == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(source)
            else:
                terms.append(f"({source})@{op}")
        expr[j] = "+".join(sorted(terms))
    return expr[3]
