"""Labelled architecture tables: CSV files with an ``arch`` JSON column and value columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.errors import PredictorError
from search_spaces import Architecture, ArchitectureError

__all__ = ["read_arch_table"]


def read_numeric_csv(path: str | Path, key_column: str, value_column: str,
                     positive: bool = False, what: str = "a finite number"
                     ) -> tuple[pd.DataFrame, np.ndarray]:
    """``(frame, values)`` of a CSV that must hold ``key_column`` and a numeric
    ``value_column`` (finite; ``positive``: also > 0).

    Raises:
        PredictorError: naming the file, and the row and column of a bad value: an
            unreadable or missing file, a missing column (listing those present).
    """
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise PredictorError(f"file {str(path)!r} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PredictorError(f"{path}: not a readable CSV ({str(exc).strip()})") from None
    for column in (key_column, value_column):
        if column not in frame.columns:
            raise PredictorError(f"{path}: no column {column!r}; columns are {list(frame.columns)}")
    values = pd.to_numeric(frame[value_column], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(values) & (values > 0) if positive else np.isfinite(values)
    bad = np.flatnonzero(~ok)
    if bad.size:
        raise PredictorError(f"{path}: row {int(bad[0]) + 2}, column {value_column!r}: "
                             f"{frame[value_column].iloc[bad[0]]!r} is not {what}")
    return frame, values


def read_arch_table(path: str | Path, target: str, space: Any = None,
                    arch_column: str = "arch") -> tuple[list[Architecture], np.ndarray, pd.DataFrame]:
    """Read ``(archs, y, frame)`` from a CSV with an architecture JSON column.

    Args:
        path: CSV file.
        target: column holding the values to predict.
        space: when given, every architecture is validated against it.
        arch_column: column holding ``Architecture.to_json()`` text.

    Raises:
        PredictorError: missing column (listing the present ones), a non-numeric
            target, or an architecture that is not JSON / not in ``space`` (with its row).
    """
    frame, y = read_numeric_csv(path, arch_column, target)
    archs = []
    for row, text in enumerate(frame[arch_column]):
        try:
            arch = Architecture.from_json(str(text))
            archs.append(space.validate(arch) if space is not None else arch)
        except ArchitectureError as exc:
            raise PredictorError(f"{path}: row {row + 2}, column {arch_column!r}: {exc}") from None
    return archs, y, frame
