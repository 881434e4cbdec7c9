"""Built-in objectives: complexity, latency (table or measured), accuracy, zero-cost score.

Each wraps a source through a duck-typed contract so the packages that provide it
(``hardware``, ``predictors``, ``supernets``) stay independent of ``nas``:

==========================  ==========================================================
objective                   source contract
==========================  ==========================================================
:class:`Flops`/:class:`Params`  ``space.complexity_batch(archs)`` (fvcore per layer, summed in batch)
:class:`TableLatency`       ``table.predict(archs) -> ms array`` (vectorised)
:class:`MeasuredLatency`    any callable ``archs -> ms array``
:class:`PredictedAccuracy`  ``predictor.predict(archs) -> (mean, std)``
:class:`SupernetAccuracy`   any callable ``archs -> accuracy array``
:class:`ZeroCostScore`      any callable ``archs -> score array``
==========================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.errors import ObjectiveError
from nas.objectives._base import CallableObjective, Objective, _describe
from search_spaces import Architecture, SearchSpace

__all__ = [
    "Flops",
    "MeasuredLatency",
    "Params",
    "PredictedAccuracy",
    "SupernetAccuracy",
    "TableLatency",
    "ZeroCostScore",
]


class _Complexity(Objective):
    _field = ""

    def __init__(self, space: SearchSpace, name: str, input_shape=None,
                 num_classes: int | None = None, cache: bool = True) -> None:
        super().__init__(name, "minimize", cache)
        self.space = space
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        flops, params = self.space.complexity_batch(archs, self.input_shape, self.num_classes)
        return (flops if self._field == "flops" else params).astype(float)

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "space": self.space.name,
                "input_shape": list(self.input_shape or self.space.input_shape),
                "num_classes": self.num_classes or self.space.num_classes}


class Flops(_Complexity):
    """Multiply-accumulates counted by fvcore over ``space.layers(arch)`` (minimised)."""

    _field = "flops"

    def __init__(self, space: SearchSpace, name: str = "flops", **kwargs: Any) -> None:
        super().__init__(space, name, **kwargs)


class Params(_Complexity):
    """Parameter count over ``space.layers(arch)`` (minimised)."""

    _field = "params"

    def __init__(self, space: SearchSpace, name: str = "params", **kwargs: Any) -> None:
        super().__init__(space, name, **kwargs)


class TableLatency(Objective):
    """Latency in milliseconds predicted by a latency table (``hardware.LatencyTable``).

    Args:
        table: anything with ``predict(archs) -> np.ndarray`` of milliseconds; its
            ``metadata`` (device, space, fingerprint) is stored as provenance.
        name: objective name (default ``latency_ms``).
    """

    def __init__(self, table: Any, name: str = "latency_ms", cache: bool = True) -> None:
        super().__init__(name, "minimize", cache)
        if not callable(getattr(table, "predict", None)):
            raise ObjectiveError(f"objective {name!r}: the table needs a predict(archs) method")
        self.table = table

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.asarray(self.table.predict(list(archs)), dtype=float)

    @property
    def metadata(self) -> dict[str, Any]:
        meta = getattr(self.table, "metadata", {}) or {}
        meta = meta.to_dict() if hasattr(meta, "to_dict") else dict(meta)
        fingerprint = getattr(self.table, "fingerprint", None)
        if isinstance(fingerprint, str):
            meta.setdefault("fingerprint", fingerprint)
        return {**super().metadata, "table": _jsonable(meta)}


class MeasuredLatency(CallableObjective):
    """Latency in milliseconds measured on a device: ``measure(archs) -> ms array``.

    Measurements are noisy, so the cache (on by default) also guarantees that one
    architecture keeps one value within a search.
    """

    def __init__(self, measure: Callable[[list[Architecture]], Any],
                 name: str = "measured_latency_ms", cache: bool = True) -> None:
        super().__init__(name, measure, "minimize", cache)


class PredictedAccuracy(Objective):
    """Accuracy from a predictor: ``mean + kappa * std`` (``kappa > 0``: optimistic bound).

    Args:
        predictor: ``predict(archs) -> (mean, std)`` (a plain array is taken as the mean).
        kappa: weight of the predictive standard deviation (0: the mean).
        name: objective name (default ``predicted_accuracy``).
    """

    def __init__(self, predictor: Any, kappa: float = 0.0, name: str = "predicted_accuracy",
                 cache: bool = True) -> None:
        super().__init__(name, "maximize", cache)
        if not callable(getattr(predictor, "predict", None)):
            raise ObjectiveError(f"objective {name!r}: the predictor needs a predict(archs) method")
        if not np.isfinite(kappa):
            raise ObjectiveError(f"objective {name!r}: kappa must be finite, got {kappa}")
        self.predictor = predictor
        self.kappa = float(kappa)

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        out = self.predictor.predict(list(archs))
        if isinstance(out, tuple):
            mean, std = (np.asarray(x, dtype=float) for x in out)
        else:
            mean, std = np.asarray(out, dtype=float), np.zeros(len(archs))
        return mean + self.kappa * std if self.kappa else mean

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "predictor": _describe(self.predictor), "kappa": self.kappa}


class SupernetAccuracy(CallableObjective):
    """Accuracy of the subnet inherited from a trained supernet: ``evaluate(archs) -> acc``."""

    def __init__(self, evaluate: Callable[[list[Architecture]], Any],
                 name: str = "supernet_accuracy", cache: bool = True) -> None:
        super().__init__(name, evaluate, "maximize", cache)


class ZeroCostScore(CallableObjective):
    """A zero-cost proxy score of the untrained network (higher is better by default)."""

    def __init__(self, score: Callable[[list[Architecture]], Any], name: str = "zero_cost",
                 direction: str = "maximize", cache: bool = True) -> None:
        super().__init__(name, score, direction, cache)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
