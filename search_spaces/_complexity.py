"""FLOPs and parameters: per layer with fvcore (cached), summed per architecture or batch."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from search_spaces._vector import VectorIndex
from search_spaces.architecture import Architecture
from search_spaces.layers import LayerSpec
from search_spaces.ops import Shape, get_op

if TYPE_CHECKING:
    from search_spaces.space import SearchSpace

__all__ = ["Complexity", "complexity_batch", "layer_complexity"]


@dataclass(frozen=True)
class Complexity:
    """FLOPs (multiply-accumulates, as fvcore counts them) and parameter count."""

    flops: int
    params: int


@functools.lru_cache(maxsize=65536)
def layer_complexity(spec: LayerSpec) -> tuple[int, int]:
    """(FLOPs, params) of one layer, via fvcore on the built op (cached per LayerSpec)."""
    from fvcore.nn import FlopCountAnalysis, parameter_count

    module = get_op(spec.op).build(spec.in_shape, spec.param_dict).eval()
    params = int(parameter_count(module).get("", 0))
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad():
        analysis = FlopCountAnalysis(module, torch.zeros(1, *spec.in_shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        flops = int(analysis.total())
    return flops, params


def complexity_batch(space: SearchSpace, archs: Sequence[Mapping[str, Any]] | np.ndarray,
                     shape: Shape, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``SearchSpace.complexity_batch`` (see there): the vectorised sum where the space's
    grammar allows it, ``space.complexity`` for the rest."""
    index = _complexity_index(space, shape, classes)
    if isinstance(archs, np.ndarray):
        # the walk flags rows with a wrong slot activity itself (checked below);
        # out-of-range indices must not reach it
        batch: list[Architecture] | np.ndarray = space._checked_matrix(archs, activity=index is None)
    else:
        batch = [space.validate(a) for a in archs]
    flops = np.zeros(len(batch), np.int64)
    params = np.zeros(len(batch), np.int64)
    if not len(batch):
        return flops, params
    if index is None:
        slow = np.arange(len(batch))
    else:
        sums, bad = index.sums(batch)
        flops[:], params[:] = sums[:, 0], sums[:, 1]
        slow = np.flatnonzero(bad)
        if slow.size and isinstance(batch, np.ndarray):
            invalid = np.zeros(len(batch), dtype=bool)
            invalid[slow] = ~space.decision_table.valid(batch[slow])
            space._refuse_rows(invalid)
    if slow.size:
        lagging = (space.decision_table.to_archs(batch[slow]) if isinstance(batch, np.ndarray)
                   else [batch[i] for i in slow.tolist()])
        for i, arch in zip(slow.tolist(), lagging, strict=True):
            cost = space.complexity(arch, shape, classes)
            flops[i], params[i] = cost.flops, cost.params
    return flops, params


_INDEXES_MAX = 16


def _complexity_index(space: SearchSpace, input_shape: Shape, num_classes: int) -> VectorIndex | None:
    """The space's cached FLOPs/params :class:`VectorIndex` at this input (one per input
    shape and number of classes, at most ``_INDEXES_MAX``), None if not vectorisable."""
    if not space._vectorisable:
        return None
    indexes = space._complexity_indexes
    key = (input_shape, num_classes)
    index = indexes.get(key)
    if index is None:
        if len(indexes) >= _INDEXES_MAX:
            indexes.pop(next(iter(indexes)))
        index = VectorIndex(space, input_shape, num_classes, layer_complexity, columns=2, dtype=np.int64)
        indexes[key] = index
    return index
