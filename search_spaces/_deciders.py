"""The built-in deciders of a derivation (see :mod:`search_spaces.derivation`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from search_spaces.errors import ArchitectureError

__all__ = ["ArchDecider", "Decider", "FallbackDecider", "RandomDecider"]


@runtime_checkable
class Decider(Protocol):
    """Answers decision points.

    ``decide(path, choices, probs, kind)`` returns one element of ``choices`` for
    the decision at ``path``; ``probs`` are the grammar's probabilities (``None``:
    uniform) and ``kind`` is one of :data:`KINDS`. A decider may raise (e.g.
    :class:`~search_spaces.ArchitectureError`) to stop the derivation.
    """

    def decide(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str) -> Any: ...


class RandomDecider:
    """Samples each decision by its probabilities (uniform when none are given).

    Uniform numbers are drawn from the generator in blocks: one numpy call per
    block instead of one ``Generator.choice`` per decision, which made sampling
    several times slower. The stream stays a pure function of the generator state.
    """

    _BLOCK = 64

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._uniform = np.empty(0)
        self._next = 0

    def _draw(self) -> float:
        if self._next >= len(self._uniform):
            self._uniform = self.rng.random(self._BLOCK)
            self._next = 0
        self._next += 1
        return float(self._uniform[self._next - 1])

    def decide(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str) -> Any:
        u = self._draw()
        if probs is None:
            return choices[min(int(u * len(choices)), len(choices) - 1)]
        return choices[min(int(np.searchsorted(_cumulative(probs), u, side="right")), len(choices) - 1)]


@functools.lru_cache(maxsize=1024)
def _cumulative(probs: tuple[float, ...]) -> np.ndarray:
    return np.cumsum(probs)


class ArchDecider:
    """Reads decisions from an architecture; errors name the path and the allowed values."""

    def __init__(self, decisions: Mapping[str, Any]) -> None:
        self.decisions = decisions

    def decide(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str) -> Any:
        if path not in self.decisions:
            raise ArchitectureError(
                f"missing decision {path!r}; allowed values: {_fmt(choices)}", path
            )
        value = self.decisions[path]
        if value not in choices or _bool_int_mismatch(value, choices):
            raise ArchitectureError(
                f"decision {path!r} = {value!r} is not allowed; allowed values: {_fmt(choices)}", path
            )
        return choices[choices.index(value)]


class FallbackDecider:
    """Takes the proposed value when it is allowed, else samples one (mutation, crossover)."""

    def __init__(self, proposal: Mapping[str, Any], rng: np.random.Generator) -> None:
        self.proposal, self.random = proposal, RandomDecider(rng)

    def decide(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str) -> Any:
        value = self.proposal.get(path, _MISSING)
        if value is not _MISSING and value in choices and not _bool_int_mismatch(value, choices):
            return choices[choices.index(value)]
        return self.random.decide(path, choices, probs, kind)


_MISSING = object()


def _bool_int_mismatch(value: Any, choices: tuple) -> bool:
    """True == 1 in Python; keep bools and ints apart."""
    match = choices[choices.index(value)]
    return isinstance(match, bool) != isinstance(value, bool)


def _fmt(choices: tuple) -> str:
    return ", ".join(repr(c) for c in choices)
