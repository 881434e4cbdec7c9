"""`SearchSpace.realisable_layers`: every layer any architecture of a space can contain."""

import numpy as np
import pytest

from search_spaces import (
    SearchSpaceError,
    get_space,
)
from tests._spaces import tiny_space

SPACES = [
    ("mobilenetv3_ofa", {"width_mult": 0.25, "resolutions": [16, 24]}),
    ("nb201", {"channels": 4, "cells_per_stage": 1}),
    ("darts", {"channels": 4, "layers": 3}),
    ("transformer", {"dims": [16, 32], "depths": [1, 2], "heads": [2, 4]}),
]


def _union(space, n, seed=0):
    rng = np.random.default_rng(seed)
    seen = set()
    for _ in range(n):
        seen.update(space.layers(space.sample(rng)))
    return seen


def test_tiny_space_enumeration_is_exact():
    space = tiny_space()
    assert space.size() == 60
    found = space.realisable_layers()
    assert found.method == "grammar"
    assert len(found.specs) == len(set(found.specs))
    assert set(found.specs) == _union(space, 600)  # 600 samples of 60 archs reach every layer


def test_enumeration_equals_brute_force_over_every_architecture():
    space = tiny_space()
    everything = set()
    for arch in {a.key: a for a in space.sample_batch(3000, 0)}.values():
        everything.update(space.layers(arch))
    assert len({a.key for a in space.sample_batch(3000, 0)}) == space.size()  # all 60 seen
    assert set(space.realisable_layers().specs) == everything


@pytest.mark.parametrize("name,options", SPACES)
def test_walk_covers_every_sampled_layer(name, options):
    space = get_space(name, **options)
    found = set(space.realisable_layers(space.input_shape, space.num_classes).specs)
    used = _union(space, 150)
    assert used <= found
    # no phantom layers either: the walk is exact for the built-in spaces
    if name != "darts":  # darts: 7 ops x many input combinations, sampling sees most of them
        assert found == used


def test_ofa_has_a_few_hundred_layers_not_ten_to_the_nineteen():
    space = get_space("mobilenetv3_ofa")
    assert space.size() > 10**18
    found = space.realisable_layers((3, 224, 224), 1000)
    assert 300 <= len(found.specs) <= 500
    one_res = get_space("mobilenetv3_ofa", resolutions=[128]).realisable_layers((3, 128, 128), 1000)
    assert len(one_res.specs) < len(found.specs) / 3


def test_recursive_space_falls_back_to_sampling():
    space = get_space("einspace_lite")
    found = space.realisable_layers(n_samples=20, rng=0)
    assert found.method == "sampled" and found.n_samples == 20
    assert set(found.specs) == _union(space, 20, seed=0)
    with pytest.raises(SearchSpaceError, match="recursive grammar"):
        space.realisable_layers(method="grammar")
    with pytest.raises(SearchSpaceError, match="must be 'auto'"):
        space.realisable_layers(method="all")
