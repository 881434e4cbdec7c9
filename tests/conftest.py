"""Shared test fixtures: small settings of every built-in space."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)

# name -> (factory options, input shape) small enough for fast tests
SMALL_SPACES = {
    "mobilenetv3_ofa": ({"width_mult": 0.25, "resolutions": [16, 24]}, (1, 8, 8)),
    "nb201": ({"channels": 8, "cells_per_stage": 1}, (1, 8, 8)),
    "darts": ({"channels": 4, "layers": 3}, (1, 8, 8)),
    "transformer": ({"dims": [16, 32], "heads": [2, 4], "patch": 2, "depths": [1, 2]}, (1, 8, 8)),
    "einspace_lite": ({"channels": 32, "max_depth": 6}, (1, 16, 16)),
}


@pytest.fixture(params=sorted(SMALL_SPACES))
def small_space(request):
    """(space, input_shape) for every built-in space at test size."""
    from search_spaces import get_space

    options, shape = SMALL_SPACES[request.param]
    return get_space(request.param, **options), shape
