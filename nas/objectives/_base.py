"""The :class:`Objective` role: a batched, named, directed function of architectures."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.errors import ObjectiveError
from search_spaces import Architecture

__all__ = ["DIRECTIONS", "CallableObjective", "Objective"]

DIRECTIONS = ("minimize", "maximize")


class Objective(ABC):
    """Maps a batch of architectures to one float each.

    Subclasses implement :meth:`evaluate` on a batch (vectorised where the source
    allows). Calling the objective adds an optional cache keyed by
    ``Architecture.key``: only architectures not seen before reach ``evaluate``.
    Objectives must be deterministic functions of the architecture when cached.

    Args:
        name: unique name within a problem; used in constraints (``latency_ms <= 15``),
            in the study and in exports.
        direction: ``"minimize"`` or ``"maximize"``.
        cache: remember values by architecture key.
    """

    def __init__(self, name: str, direction: str = "minimize", cache: bool = True) -> None:
        if not isinstance(name, str) or not name.replace("_", "a").replace(".", "a").isalnum():
            raise ObjectiveError(
                f"objective name must be letters, digits, '_' or '.', got {name!r}")
        if direction not in DIRECTIONS:
            raise ObjectiveError(
                f"objective {name!r}: direction must be one of {DIRECTIONS}, got {direction!r}")
        self.name = name
        self.direction = direction
        self._cache: dict[str, float] | None = {} if cache else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.direction})"

    @abstractmethod
    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Score a batch; returns a float array of shape (len(archs),). No caching here."""

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-able provenance stored with the study (override to add a table or model id)."""
        return {"type": type(self).__name__, "name": self.name, "direction": self.direction}

    def __call__(self, archs: Sequence[Architecture]) -> np.ndarray:
        archs = list(archs)
        if self._cache is None:
            return self._checked(self.evaluate(archs), len(archs))
        cache = self._cache
        missing: dict[str, Architecture] = {}
        for arch in archs:
            if arch.key not in cache:
                missing.setdefault(arch.key, arch)
        if missing:
            values = self._checked(self.evaluate(list(missing.values())), len(missing))
            cache.update(zip(missing, values.tolist(), strict=True))
        return np.fromiter((cache[a.key] for a in archs), dtype=float, count=len(archs))

    def clear_cache(self) -> None:
        if self._cache is not None:
            self._cache.clear()

    def _checked(self, values: Any, n: int) -> np.ndarray:
        arr = np.asarray(values, dtype=float).reshape(-1)
        if arr.shape != (n,):
            raise ObjectiveError(
                f"objective {self.name!r} returned {arr.size} values for {n} architectures")
        if np.isnan(arr).any():
            raise ObjectiveError(f"objective {self.name!r} returned NaN")
        return arr


class CallableObjective(Objective):
    """Wrap any batched callable ``archs -> array`` as an objective.

    Args:
        name: objective name.
        fn: ``fn(list[Architecture]) -> array-like`` of shape (n,).
        direction: ``"minimize"`` or ``"maximize"``.
        cache: remember values by architecture key.
        metadata: extra provenance (e.g. ``{"model": "..."}``).
    """

    def __init__(self, name: str, fn: Callable[[list[Architecture]], Any],
                 direction: str = "minimize", cache: bool = True,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__(name, direction, cache)
        if not callable(fn):
            raise ObjectiveError(f"objective {name!r}: fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self._extra = dict(metadata or {})

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.asarray(self.fn(list(archs)), dtype=float)

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "callable": _describe(self.fn), **self._extra}


def _describe(obj: Any) -> str:
    """A stable, human-readable id of a model or callable (for provenance only)."""
    for attr in ("fingerprint", "id", "model_id"):
        value = getattr(obj, attr, None)
        if isinstance(value, str):
            return value
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{getattr(obj, '__module__', '') or type(obj).__module__}.{name}"
