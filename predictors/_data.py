"""Labelled architecture tables: CSV files with an ``arch`` JSON column and value columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.errors import PredictorError
from search_spaces import Architecture, ArchitectureError

__all__ = ["read_arch_table"]


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
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PredictorError(f"{path}: not a readable CSV ({str(exc).strip()})") from None
    for column in (arch_column, target):
        if column not in frame.columns:
            raise PredictorError(f"{path}: no column {column!r}; columns are {list(frame.columns)}")
    y = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise PredictorError(f"{path}: column {target!r} row {int(bad[0]) + 2} is not a finite number")
    archs = []
    for row, text in enumerate(frame[arch_column]):
        try:
            arch = Architecture.from_json(str(text))
            archs.append(space.validate(arch) if space is not None else arch)
        except ArchitectureError as exc:
            raise PredictorError(f"{path}: row {row + 2}, column {arch_column!r}: {exc}") from None
    return archs, y, frame
