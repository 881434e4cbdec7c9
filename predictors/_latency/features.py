"""Per-layer features from ``space.layers(arch)``: op type, FLOPs, params and tensor sizes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces import LayerSpec, layer_complexity, list_ops

__all__ = ["LayerFeaturizer"]

NUMERIC = ("log_flops", "log_params", "log_in_elems", "log_out_elems", "kernel", "stride", "expand")


@functools.lru_cache(maxsize=65536)
def _raw(spec: LayerSpec) -> tuple[float, float, float, float]:
    flops, params = layer_complexity(spec)
    return float(flops), float(params), float(np.prod(spec.in_shape)), float(np.prod(spec.out_shape))


class LayerFeaturizer:
    """Vectors describing a layer: one-hot op, log FLOPs/params/elements, a few op parameters.

    Args:
        op_vocab: op names for the one-hot part (default: every registered op).
    """

    def __init__(self, op_vocab: Sequence[str] | None = None) -> None:
        self.op_vocab = list(op_vocab) if op_vocab is not None else list_ops()
        self._index = {op: i for i, op in enumerate(self.op_vocab)}

    @property
    def size(self) -> int:
        return len(self.op_vocab) + len(NUMERIC)

    @staticmethod
    def raw(spec: LayerSpec) -> tuple[float, float, float, float]:
        """(FLOPs, params, input elements, output elements) of one layer (memoised per layer:
        counting FLOPs builds the layer, and a space has few distinct layers)."""
        return _raw(spec)

    def layer(self, spec: LayerSpec) -> np.ndarray:
        """Feature vector of one layer (unknown ops get an all-zero one-hot)."""
        vec = np.zeros(self.size, dtype=np.float64)
        if spec.op in self._index:
            vec[self._index[spec.op]] = 1.0
        flops, params, n_in, n_out = self.raw(spec)
        p = spec.param_dict
        vec[len(self.op_vocab):] = (np.log1p(flops), np.log1p(params), np.log1p(n_in), np.log1p(n_out),
                                    float(p.get("kernel", 0) or 0), float(p.get("stride", 1) or 1),
                                    float(p.get("expand", 0) or 0))
        return vec

    def config(self) -> dict[str, Any]:
        return {"op_vocab": self.op_vocab}
