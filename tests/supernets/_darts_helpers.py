"""Small shared fixtures of the DARTS tests: tiny data, tiny spaces, a stand-in latency table."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from search_spaces import (
    Cell,
    Choice,
    Grammar,
    LayerSpec,
    Op,
    SearchSpace,
    Seq,
    get_space,
    layer_complexity,
)
from search_spaces.ops import NUM_CLASSES
from supernets.data import DataSplits, load_dataset


def tiny_digits(n_train: int = 192, n_val: int = 96, n_test: int = 96) -> DataSplits:
    """The first samples of the real digits splits (8x8, 1 channel, 10 classes)."""
    full = load_dataset("digits")

    def head(ds: TensorDataset, n: int) -> TensorDataset:
        x, y = ds.tensors
        return TensorDataset(x[:n], y[:n])

    return DataSplits("digits", head(full.train, n_train), head(full.val, n_val), head(full.test, n_test),
                      full.input_shape, full.num_classes)


def tiny_nb201():
    return get_space("nb201", channels=4, cells_per_stage=1, input_shape=(1, 8, 8))


def tiny_darts():
    return get_space("darts", channels=4, layers=3, stem_multiplier=1, input_shape=(1, 8, 8))


def custom_cell_space() -> SearchSpace:
    """A user's own cell space: 2 nodes, 3 ops, one cell between a stem and a head."""
    ops = Choice({"conv": Op("relu_conv_bn", kernel=3), "pool": Op("pool", kind="max", kernel=3),
                  "skip": Op("skip")})
    grammar = Grammar({
        "net": Seq(stem=Op("conv_bn_act", out=6, kernel=3), body=Op("act", kind="relu"),
                   cellA=Cell(ops, nodes=2), head=Op("classifier", out=NUM_CLASSES)),
    })
    return SearchSpace(grammar, name="custom_cells", input_shape=(1, 8, 8), num_classes=10)


class FlopsTable:
    """Stand-in for ``hardware.LatencyTable``: 'latency' in ms from the layer's FLOPs (+ a floor).

    ``exact=True`` counts with fvcore (``layer_complexity``); the default is the
    multiply-accumulates of the op's convolutions worked out from its parameters,
    which is much faster and ranks the candidate ops the same way.
    """

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact
        self.lookups: dict[LayerSpec, float] = {}

    def lookup(self, spec: LayerSpec) -> float:
        if spec not in self.lookups:
            flops = layer_complexity(spec)[0] if self.exact else _macs(spec)
            self.lookups[spec] = 0.001 + flops / 1e6
        return self.lookups[spec]


def _macs(spec: LayerSpec) -> float:
    if len(spec.out_shape) != 3:
        return float(spec.in_shape[0] * spec.out_shape[0])  # the classifier
    c = spec.in_shape[0]
    out_c, out_h, out_w = spec.out_shape
    p = spec.param_dict
    k = p.get("kernel", 1)
    per_pixel = {"relu_conv_bn": k * k * c, "sep_conv": 2 * (k * k + c), "dil_conv": k * k + c,
                 "pool": k * k / out_c, "skip": 0.0 if p.get("stride", 1) == 1 else c / 2}
    return per_pixel.get(spec.op, 0.0) * out_c * out_h * out_w


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one intra-op thread is much faster than contended ones on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
