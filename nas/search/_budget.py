"""Building an engine for a given evaluation budget (the budget-aware defaults in one place).

The engines that take a ``budget`` (NSGA-II, the predictor-guided engine)
derive their population size, initial design and exploration schedule from it; the
batch size the search loop asks for derives from it too. :func:`make_engine` passes
the budget (and the problem, to engines that use it) only to engines that accept them,
so every registered engine, and users' own, can be built the same way.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from nas.search._base import ENGINES, SearchEngine, get_engine
from nas.search._problem import Problem

__all__ = ["default_batch_size", "default_population", "make_engine"]


def default_batch_size(budget: int) -> int:
    """Architectures per ask for a search of ``budget`` evaluations: ``clip(budget / 20, 5, 50)``
    (5 at 100 evaluations, 15 at 300, 50 from 1,000): small batches let a model-based or
    evolutionary engine learn between asks when evaluations are few."""
    return int(np.clip(round(int(budget) / 20), 5, 50))


def default_population(budget: int | None) -> int:
    """Population of NSGA-II for ``budget`` evaluations:
    ``clip(budget / 10, 10, 50)`` (10 at 100, 30 at 300, 50 from 500; 50 when unknown).
    Chosen on NAS-Bench-201 devices other than the bench's (docs/decisions/guided-search.md)."""
    return 50 if budget is None else int(np.clip(round(int(budget) / 10), 10, 50))


def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


def make_engine(name: str, problem: Problem, *, seed: int = 0, budget: int | None = None,
                **options: Any) -> SearchEngine:
    """Build engine ``name`` on ``problem.space`` for a search of ``budget`` evaluations.

    ``budget`` reaches engines whose constructor takes ``budget`` and ``problem`` those
    that take ``problem`` (the predictor-guided engine), unless ``options`` sets them.
    Unknown names and options raise ``SearchError`` listing the valid ones.
    """
    cls = ENGINES.get(name)
    extra: dict[str, Any] = {}
    if budget is not None and _accepts(cls, "budget") and "budget" not in options:
        extra["budget"] = int(budget)
    if _accepts(cls, "problem") and "problem" not in options:
        extra["problem"] = problem
    return get_engine(name, problem.space, seed=seed, **extra, **options)
