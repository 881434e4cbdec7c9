"""Objectives: batched, named, directed functions of architectures.

Example:
    >>> from nas.objectives import Params
    >>> params = Params(space)          # doctest: +SKIP
    >>> params(space.sample(0))         # doctest: +SKIP
"""

from nas.objectives._base import DIRECTIONS, CallableObjective, Objective
from nas.objectives._builtin import (
    Flops,
    MeasuredLatency,
    Params,
    PredictedAccuracy,
    SupernetAccuracy,
    TableLatency,
    ZeroCostScore,
)
from nas.objectives._tabular import KEY_FORMATS, TabularObjective

__all__ = [
    "DIRECTIONS",
    "KEY_FORMATS",
    "CallableObjective",
    "Flops",
    "MeasuredLatency",
    "Objective",
    "Params",
    "PredictedAccuracy",
    "SupernetAccuracy",
    "TableLatency",
    "TabularObjective",
    "ZeroCostScore",
]
