"""Whole-network latency measurements a user already has: a CSV of architectures and milliseconds.

The architecture column holds ``Architecture`` JSON (``{"stage1.depth": 2, ...}``) or a
benchmark string the space knows (NAS-Bench-201's ``|op~0|+|op~0|op~1|+...|`` for the
``nb201`` space). Every row is checked against the space; an error names the file, row
and column. :class:`MeasuredLatency` serves such a file as a latency model (``predict``
looks architectures up), so it can be a reference device of the few-shot predictor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors._data import read_numeric_csv
from predictors.errors import PredictorError
from search_spaces import Architecture, from_nb201_string

__all__ = ["MeasuredLatency", "parse_arch", "read_latency_measurements"]

# spaces whose benchmark strings are understood, by space name
_STRING_PARSERS = {"nb201": from_nb201_string}


def parse_arch(text: Any, space: Any) -> Architecture:
    """An architecture from JSON text or, for a space with a benchmark notation, its string;
    validated against ``space``. Raises ``ValueError`` subclasses naming the problem."""
    text = str(text).strip()
    if text.startswith("{"):
        return space.validate(Architecture.from_json(text))
    parser = _STRING_PARSERS.get(space.name)
    if parser is None:
        raise PredictorError(f"{text[:40]!r} is not architecture JSON (space {space.name!r} has no "
                             f"benchmark-string notation; spaces with one: {', '.join(_STRING_PARSERS)})")
    return space.validate(parser(text))


def read_latency_measurements(path: str | Path, space: Any, column: str = "latency_ms",
                              arch_column: str = "arch") -> tuple[list[Architecture], np.ndarray]:
    """``(archs, latency_ms)`` of a CSV with an architecture column and a latency column (ms).

    Raises:
        PredictorError: naming the file, row and column: a missing column (listing those
            present), an architecture not in ``space``, a latency that is not a positive number.
    """
    if not Path(path).is_file():
        raise PredictorError(f"measurements file {str(path)!r} does not exist")
    frame, ms = read_numeric_csv(path, arch_column, column, positive=True,
                                 what="a positive latency in ms")
    archs = []
    for row, text in enumerate(frame[arch_column]):
        try:
            archs.append(parse_arch(text, space))
        except ValueError as exc:
            raise PredictorError(f"{path}: row {row + 2}, column {arch_column!r}: {exc}") from None
    return archs, ms


class MeasuredLatency:
    """Measured latencies of some architectures on one device, served by lookup.

    Args:
        archs, latency_ms: the measurements (a repeated architecture keeps its median).
        name: the device's name (for messages).
    """

    def __init__(self, archs: Sequence[Architecture], latency_ms: Any, name: str = "measurements") -> None:
        ms = np.asarray(latency_ms, dtype=float).ravel()
        if ms.size != len(archs) or ms.size == 0:
            raise PredictorError(f"{name}: need one latency per architecture, got {ms.size} for {len(archs)}")
        keys = [a.key if isinstance(a, Architecture) else Architecture(a).key for a in archs]
        self.latency = pd.Series(ms).groupby(keys, sort=False).median().to_dict()
        self.name = name

    @classmethod
    def from_csv(cls, path: str | Path, space: Any, column: str = "latency_ms",
                 arch_column: str = "arch", name: str | None = None) -> MeasuredLatency:
        """Read :func:`read_latency_measurements` and serve it."""
        archs, ms = read_latency_measurements(path, space, column, arch_column)
        return cls(archs, ms, name or f"{Path(path).name}:{column}")

    def __len__(self) -> int:
        return len(self.latency)

    def predict(self, archs: Sequence[Any]) -> np.ndarray:
        """The measured latency (ms) of each architecture.

        Raises:
            PredictorError: naming how many architectures were never measured, and one of them.
        """
        keys = [a.key if isinstance(a, Architecture) else Architecture(a).key for a in archs]
        missing = [i for i, k in enumerate(keys) if k not in self.latency]
        if missing:
            raise PredictorError(f"{self.name}: {len(missing)} of {len(keys)} architectures were never "
                                 f"measured, e.g. {Architecture(archs[missing[0]]).to_json()}")
        return np.array([self.latency[k] for k in keys])
