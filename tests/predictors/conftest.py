"""Small shared fixtures: a reduced OFA space on 8x8 digits and a synthetic target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces import get_space


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ofa_space():
    space = get_space("mobilenetv3_ofa", width_mult=0.5, resolutions=[8, 12],
                      depths=[2, 3], input_shape=[1, 8, 8])
    space.num_classes = 10
    return space


@pytest.fixture(scope="session")
def ofa_archs(ofa_space):
    rng = np.random.default_rng(0)
    return [ofa_space.sample(rng) for _ in range(160)]


@pytest.fixture(scope="session")
def synthetic_target(ofa_space, ofa_archs):
    """A smooth nonlinear function of the encoding plus a little noise."""
    x = np.stack([ofa_space.encode(a) for a in ofa_archs])
    w = np.random.default_rng(1).normal(size=x.shape[1])
    return np.tanh(x @ w / 4.0) + 0.05 * np.random.default_rng(2).normal(size=len(ofa_archs))
