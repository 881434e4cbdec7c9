"""Decision tables: batch operations give exactly the architectures the derivation walk gives."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from search_spaces import (
    NUM_CLASSES,
    Architecture,
    ArchitectureError,
    Choice,
    Grammar,
    Op,
    RandomDecider,
    Ref,
    Repeat,
    SearchSpace,
    Seq,
    Value,
    derive,
    get_space,
)

COMPILED = {
    "mobilenetv3_ofa": {"width_mult": 0.25, "resolutions": [16, 24]},
    "nb201": {"channels": 4, "cells_per_stage": 1},
    "transformer": {},
    "darts": {"channels": 4, "layers": 3},
}


def nested_space() -> SearchSpace:
    """Control two levels deep: a Choice whose alternative holds a Repeat, with probabilities."""
    block = Op("mbconv", out=8, kernel=Value([3, 5, 7], probs=[0.6, 0.3, 0.1]), expand=Value([2, 4]))
    deep = Seq(body=Repeat(block, depth=[1, 2, 3]), extra=Op("conv_bn_act", kernel=Value([1, 3])))
    grammar = Grammar({"net": Seq(
        stem=Op("conv_bn_act", out=8, kernel=3),
        trunk=Choice({"deep": deep, "flat": Op("conv_bn_act", kernel=Value([1, 3, 5])),
                      "skip": Op("skip")}, probs=[0.5, 0.3, 0.2]),
        head=Op("classifier", out=NUM_CLASSES),
    )})
    return SearchSpace(grammar, name="nested", input_shape=(3, 8, 8), num_classes=4)


SPACES = [pytest.param(lambda n=n, o=o: get_space(n, **o), id=n) for n, o in COMPILED.items()]
SPACES.append(pytest.param(nested_space, id="nested"))


@pytest.mark.parametrize("make", SPACES)
def test_batch_ops_make_valid_architectures_that_round_trip(make):
    space = make()
    table = space.decision_table
    assert table is not None
    rng = np.random.default_rng(0)
    x = table.sample_batch(120, rng)
    mutated = table.mutate_batch(x, rng)
    crossed = table.crossover_batch(x, x[::-1], rng)
    for matrix in (x, mutated, crossed, table.mutate_batch(x, rng, n=3, rate=0.2)):
        assert table.valid(matrix).all()
        for arch in table.to_archs(matrix):
            plain = Architecture(arch.to_dict())  # no row: the slow path validates it
            assert space.validate(plain) == arch and plain.key == arch.key
            assert Architecture.from_json(arch.to_json()) == arch
        np.testing.assert_array_equal(
            space.to_matrix([Architecture(a.to_dict()) for a in table.to_archs(matrix)]), matrix)
    # mutation: exactly one decision that both reach differs (n=1); descendants re-derived
    both = (x >= 0) & (mutated >= 0)
    assert ((x != mutated) & both).sum(axis=1).tolist() == [1] * len(x)
    # crossover: every decision both child and parent reach comes from one of the parents
    reached = crossed >= 0
    from_parent = (crossed == x) | (crossed == x[::-1]) | ((x < 0) & (x[::-1] < 0))
    assert (from_parent | ~reached).all()


@pytest.mark.parametrize("make", SPACES)
def test_encode_batch_equals_per_arch_encode(make):
    space = make()
    archs = space.sample_batch(50, 1)
    expected = np.stack([space.encode(Architecture(a.to_dict())) for a in archs])
    np.testing.assert_array_equal(space.encode_batch(archs), expected)
    np.testing.assert_array_equal(space.encode_batch(space.to_matrix(archs)), expected)


def test_sample_batch_matches_the_walks_distribution():
    """Per slot: how often it is reached, and its values when reached (probabilities honoured)."""
    space = nested_space()
    table = space.decision_table
    n = 6000
    fast = table.sample_batch(n, np.random.default_rng(1))
    gen = np.random.default_rng(10)  # the derivation walk, deciding one decision at a time
    slow = space.to_matrix([derive(space, RandomDecider(gen)).recorder.decisions for _ in range(n)])
    for s, path in enumerate(table.paths):
        reach_fast, reach_slow = (fast[:, s] >= 0).mean(), (slow[:, s] >= 0).mean()
        assert abs(reach_fast - reach_slow) < 5 * np.sqrt(0.5 / n), path
        k = table.sizes[s]
        hist_fast = np.bincount(fast[fast[:, s] >= 0, s], minlength=k) / max((fast[:, s] >= 0).sum(), 1)
        hist_slow = np.bincount(slow[slow[:, s] >= 0, s], minlength=k) / max((slow[:, s] >= 0).sum(), 1)
        m = min((fast[:, s] >= 0).sum(), (slow[:, s] >= 0).sum())
        assert np.abs(hist_fast - hist_slow).max() < 8 * np.sqrt(0.25 / m), (path, hist_fast, hist_slow)
    # the stated probabilities themselves: trunk 0.5/0.3/0.2, kernel 0.6/0.3/0.1 where reached
    trunk = table.paths.index("trunk")
    np.testing.assert_allclose(np.bincount(fast[:, trunk]) / n, [0.5, 0.3, 0.2], atol=0.03)
    kernel = table.paths.index("trunk.deep.body.block1.kernel")
    reached = fast[fast[:, kernel] >= 0, kernel]
    np.testing.assert_allclose(np.bincount(reached) / len(reached), [0.6, 0.3, 0.1], atol=0.03)


def test_uniform_space_is_uniform_per_slot():
    space = get_space("mobilenetv3_ofa", **COMPILED["mobilenetv3_ofa"])
    table = space.decision_table
    x = table.sample_batch(6000, np.random.default_rng(2))
    depth = table.paths.index("stage1.depth")
    np.testing.assert_allclose(np.bincount(x[:, depth]) / len(x), [1 / 3] * 3, atol=0.03)
    block4 = table.paths.index("stage1.block4.kernel")
    assert abs((x[:, block4] >= 0).mean() - 1 / 3) < 0.03  # reached only at depth 4


def test_mutation_with_one_choice_slots_only_keeps_the_row():
    grammar = Grammar({"net": Seq(a=Op("conv_bn_act", out=4, kernel=Value([3])),
                                  b=Op("classifier", out=NUM_CLASSES))})
    space = SearchSpace(grammar, input_shape=(3, 8, 8), num_classes=2)
    x = space.decision_table.sample_batch(3, 0)
    np.testing.assert_array_equal(space.decision_table.mutate_batch(x, np.random.default_rng(0)), x)


def test_uncompilable_grammars_fall_back():
    recursive = get_space("einspace_lite")
    assert recursive.decision_table is None
    archs = recursive.sample_batch(4, 0)
    assert all(recursive.contains(a) for a in recursive.mutate_batch(archs, 1))
    with pytest.raises(ArchitectureError, match="no decision table"):
        recursive.to_matrix(archs)
    # a shared rule reached under a choice and unconditionally: no fixed slot activity
    cell = Op("conv_bn_act", kernel=Value([1, 3]))
    grammar = Grammar({"net": Seq(a=Ref("c", shared=True),
                                  b=Choice({"x": Ref("c", shared=True), "y": Op("skip")}),
                                  head=Op("classifier", out=NUM_CLASSES)),
                       "c": cell})
    space = SearchSpace(grammar, input_shape=(3, 8, 8), num_classes=2)
    assert space.decision_table is None
    assert all(space.contains(a) for a in space.sample_batch(5, 0))


def test_from_matrix_rejects_rows_outside_the_space():
    space = nested_space()
    table = space.decision_table
    x = table.sample_batch(4, 0)
    assert space.from_matrix(x) == table.to_archs(x)
    bad = x.copy()
    trunk = table.paths.index("trunk")
    bad[0, trunk] = (bad[0, trunk] + 1) % 3  # switch production without re-deriving
    with pytest.raises(ArchitectureError, match="row 0"):
        space.from_matrix(bad)
    too_big = x.copy()
    too_big[1, trunk] = 7
    with pytest.raises(ArchitectureError, match="row 1"):
        space.from_matrix(too_big)
    with pytest.raises(ArchitectureError, match="shape"):
        space.from_matrix(x[:, :3])


def test_table_archs_pickle_without_their_row():
    space = nested_space()
    arch = space.sample_batch(1, 0)[0]
    again = pickle.loads(pickle.dumps(arch))
    assert again == arch and again.key == arch.key and again._origin is None
    np.testing.assert_array_equal(space.to_matrix([again]), space.to_matrix([arch]))


def test_mutation_rate_changes_more_decisions():
    table = get_space("mobilenetv3_ofa", **COMPILED["mobilenetv3_ofa"]).decision_table
    x = table.sample_batch(400, 0)
    both = lambda y: ((x != y) & (x >= 0) & (y >= 0)).sum(axis=1)  # noqa: E731
    one, many = both(table.mutate_batch(x, 1)), both(table.mutate_batch(x, 1, rate=0.3))
    assert (one == 1).all() and (many >= 1).all() and many.mean() > 5


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_single_operations_are_batches_of_one(small_space, seed):
    """Same seed, same result: sample, mutate and crossover equal their batch forms."""
    space, _ = small_space
    a, b = space.sample_batch(2, 100 + seed)
    assert space.sample(seed) == space.sample_batch(1, seed)[0]
    assert space.sample(np.random.default_rng(seed)) == space.sample_batch(1, np.random.default_rng(seed))[0]
    assert space.mutate(a, seed) == space.mutate_batch([a], seed)[0]
    assert space.crossover(a, b, seed) == space.crossover_batch([a], [b], seed)[0]
    # plain dicts (validated on the way) give the same answers as table-made architectures
    assert space.mutate(a.to_dict(), seed) == space.mutate(a, seed)
    assert space.crossover(a.to_dict(), b.to_dict(), seed) == space.crossover(a, b, seed)
    assert space.mutate(a, seed, n=0) == a
    if space.decision_table is not None:  # n rounds: the table's n-round mutation
        table = space.decision_table
        rounds = table.to_archs(table.mutate_batch(space.to_matrix([a]), np.random.default_rng(seed), n=3))
        assert space.mutate(a, seed, n=3) == rounds[0]

