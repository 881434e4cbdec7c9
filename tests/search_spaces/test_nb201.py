"""NAS-Bench-201 conversions and isomorphism-aware counting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from search_spaces import (
    Architecture,
    ArchitectureError,
    from_nb201_string,
    get_space,
    nb201_canonical,
    to_nb201_string,
)
from search_spaces.builtin.nb201 import EDGES, OPS

STANDARD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_string_round_trip_in_standard_edge_order():
    arch = from_nb201_string(STANDARD)
    assert arch["cell.edge_2_1"] == "avg_pool_3x3" and arch["cell.edge_3_2"] == "skip_connect"
    assert to_nb201_string(arch) == STANDARD
    space = get_space("nb201")
    for seed in range(20):
        a = space.sample(np.random.default_rng(seed))
        assert from_nb201_string(to_nb201_string(a)) == a


@pytest.mark.parametrize("bad", ["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|none~1|", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_bad_strings_are_rejected(bad):
    with pytest.raises(ArchitectureError):
        from_nb201_string(bad)


def test_unique_count_matches_nas_bench_201():
    archs = [Architecture({f"cell.edge_{j}_{i}": op for (j, i), op in zip(EDGES, ops)})
             for ops in itertools.product(OPS, repeat=6)]
    assert len(archs) == 15625
    assert len({nb201_canonical(a) for a in archs}) == 6466


def test_canonical_form_identifies_dead_edges():
    base = from_nb201_string("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    other = from_nb201_string("|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    assert nb201_canonical(base) == nb201_canonical(other)  # node 1 never reaches the output
    assert nb201_canonical(base) != nb201_canonical(from_nb201_string(STANDARD))
