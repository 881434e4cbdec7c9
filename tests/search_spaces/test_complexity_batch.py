"""`SearchSpace.complexity_batch` against per-architecture `complexity`, and its VectorIndex."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from search_spaces import (
    Architecture,
    ArchitectureError,
    VectorIndex,
    get_space,
    layer_complexity,
    vectorisable,
)

N = 24


def _per_arch(space, archs, shape, classes=10):
    costs = [space.complexity(a, shape, classes) for a in archs]
    return [c.flops for c in costs], [c.params for c in costs]


def test_batch_equals_per_arch_complexity_on_every_builtin_space(small_space):
    space, shape = small_space
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(N)]
    flops, params = space.complexity_batch(archs, shape, 10)
    assert flops.dtype == params.dtype == np.int64 and flops.shape == params.shape == (N,)
    expected_flops, expected_params = _per_arch(space, archs, shape)
    assert flops.tolist() == expected_flops
    assert params.tolist() == expected_params
    assert (flops > 0).all() and (params > 0).all()
    # the vectorised walk where the grammar allows it, the per-arch path elsewhere
    assert vectorisable(space) == (space.name not in ("darts", "einspace_lite"))


def test_decision_table_rows_dicts_and_an_index_matrix_agree(small_space):
    space, shape = small_space
    if space.decision_table is None:
        pytest.skip("recursive grammar: no decision table")
    made = space.sample_batch(N, 1)  # carry their index rows
    plain = [a.to_dict() for a in made]  # plain dicts: validated, then the dict path
    matrix = space.to_matrix(made)
    expected = _per_arch(space, made, shape)
    for batch in (made, plain, matrix):
        flops, params = space.complexity_batch(batch, shape, 10)
        assert (flops.tolist(), params.tolist()) == expected


def test_mixed_batch_of_table_rows_architectures_and_dicts():
    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16, 24])
    shape = (1, 8, 8)
    rng = np.random.default_rng(2)
    made = space.sample_batch(6, 3)
    mixed = [*made[:3], space.sample(rng), Architecture(made[3].to_dict()), made[4].to_dict(),
             space.mutate(made[5], rng), made[0]]
    flops, params = space.complexity_batch(mixed, shape, 10)
    assert (flops.tolist(), params.tolist()) == _per_arch(space, mixed, shape)
    assert flops[0] == flops[-1]  # the same arch twice in one batch


def test_archs_the_walk_flags_go_through_complexity(monkeypatch):
    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16, 24])
    made = space.sample_batch(8, 5)
    expected = _per_arch(space, made, (1, 8, 8))
    real = VectorIndex.sums

    def flag_odd(self, archs, transform=None):
        sums, bad = real(self, archs, transform)
        sums[1::2] = -1  # garbage the fallback must replace
        bad[1::2] = True
        return sums, bad

    monkeypatch.setattr(VectorIndex, "sums", flag_odd)
    for batch in (made, space.to_matrix(made)):
        flops, params = space.complexity_batch(batch, (1, 8, 8), 10)
        assert (flops.tolist(), params.tolist()) == expected


def test_default_shape_and_classes_are_the_spaces():
    space = get_space("nb201", channels=4, cells_per_stage=1, input_shape=(1, 8, 8))
    archs = space.sample_batch(5, 0)
    flops, params = space.complexity_batch(archs)
    expected = [space.complexity(a) for a in archs]
    assert flops.tolist() == [c.flops for c in expected]
    assert params.tolist() == [c.params for c in expected]
    more_classes, _ = space.complexity_batch(archs, num_classes=100)
    assert (more_classes > flops).all()  # a wider classifier


def test_index_is_built_once_per_input_shape_and_classes_and_reused():
    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16, 24])
    archs = space.sample_batch(40, 0)
    space.complexity_batch(archs, (1, 8, 8), 10)
    assert list(space._complexity_indexes) == [((1, 8, 8), 10)]
    index = space._complexity_indexes[((1, 8, 8), 10)]
    layers = len(index.specs)
    assert layers > 0
    flops, _ = space.complexity_batch(archs, (1, 8, 8), 10)
    assert space._complexity_indexes[((1, 8, 8), 10)] is index
    assert len(index.specs) == layers  # every layer already known: nothing resolved again
    other, _ = space.complexity_batch(archs, (1, 12, 12), 10)
    assert len(space._complexity_indexes) == 2
    assert space._complexity_indexes[((1, 8, 8), 10)] is index
    assert other.tolist() == [space.complexity(a, (1, 12, 12), 10).flops for a in archs]
    assert space._complexity_indexes[((1, 12, 12), 10)].specs[0].in_shape == (1, 12, 12)
    # a pickled space (e.g. sent to a Ray worker) leaves its indexes behind and rebuilds them
    clone = pickle.loads(pickle.dumps(space))
    assert clone._complexity_indexes == {}
    assert clone.complexity_batch(archs, (1, 8, 8), 10)[0].tolist() == flops.tolist()


def test_invalid_architecture_raises_the_same_error_as_complexity():
    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16, 24])
    good = space.sample(0)
    path = next(p for p in good if p.endswith(".kernel"))
    bad = good.update({path: 4})
    with pytest.raises(ArchitectureError) as single:
        space.complexity(bad, (1, 8, 8), 10)
    with pytest.raises(ArchitectureError) as batch:
        space.complexity_batch([good, bad], (1, 8, 8), 10)
    assert str(batch.value) == str(single.value)
    assert batch.value.path == single.value.path == path
    assert "allowed" in str(batch.value)
    extra = good.update({"stage9.depth": 2})
    with pytest.raises(ArchitectureError, match="stage9.depth"):
        space.complexity_batch([extra], (1, 8, 8), 10)


def test_invalid_index_matrix_row_is_refused():
    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16, 24])
    matrix = space.to_matrix(space.sample_batch(3, 0))
    matrix[1, 0] = 99  # out of range
    with pytest.raises(ArchitectureError, match="row 1 of the index matrix"):
        space.complexity_batch(matrix, (1, 8, 8), 10)
    with pytest.raises(ArchitectureError, match="shape"):
        space.complexity_batch(matrix[:, :3], (1, 8, 8), 10)
    # indices in range, wrong activity: a slot left unreached, or one set that is not reached
    good = space.to_matrix(space.sample_batch(20, 1))
    assert (good[5] == -1).any()  # a stage below its largest depth
    for row, slot, value in ((3, int(np.flatnonzero(good[3] >= 0)[-1]), -1),
                             (5, int(np.flatnonzero(good[5] == -1)[0]), 0)):
        broken = good.copy()
        broken[row, slot] = value
        assert not space.decision_table.valid(broken)[row]
        with pytest.raises(ArchitectureError, match=f"row {row} of the index matrix"):
            space.complexity_batch(broken, (1, 8, 8), 10)


def test_recursive_space_refuses_an_index_matrix_and_handles_empty_batches():
    space = get_space("einspace_lite", channels=8, max_depth=4)
    with pytest.raises(ArchitectureError, match="no decision table"):
        space.complexity_batch(np.zeros((2, 3), np.int64))
    for s in (space, get_space("nb201", channels=4, cells_per_stage=1)):
        flops, params = s.complexity_batch([])
        assert flops.shape == params.shape == (0,) and flops.dtype == np.int64


def test_vector_index_sums_scalar_and_multi_column_values():
    space = get_space("transformer", dims=[16, 32], heads=[2, 4], patch=2, depths=[1, 2])
    archs = space.sample_batch(30, 4)
    shape = (1, 8, 8)
    pair = VectorIndex(space, shape, 10, layer_complexity, columns=2, dtype=np.int64)
    flops_only = VectorIndex(space, shape, 10, lambda spec: float(layer_complexity(spec)[0]))
    sums, bad = pair.sums(archs)
    assert sums.shape == (30, 2) and sums.dtype == np.int64 and not bad.any()
    scalar, bad = flops_only.sums(archs, transform=np.sqrt)
    assert scalar.shape == (30,) and not bad.any()
    for i, arch in enumerate(archs):
        layers = [layer_complexity(s) for s in space.layers(arch, shape, 10)]
        assert sums[i].tolist() == [sum(f for f, _ in layers), sum(p for _, p in layers)]
        assert scalar[i] == pytest.approx(sum(np.sqrt(f) for f, _ in layers), rel=1e-12)
    with pytest.raises(ValueError, match="columns"):
        VectorIndex(space, shape, 10, layer_complexity, columns=0)
