"""An objective read from a user's table (CSV or pandas DataFrame)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.errors import ObjectiveError
from nas.objectives._base import Objective
from search_spaces import Architecture, to_nb201_string

__all__ = ["TabularObjective", "KEY_FORMATS"]

KEY_FORMATS: dict[str, Callable[[Architecture], str]] = {
    "nb201": to_nb201_string,
    "key": lambda arch: arch.key,
    "json": lambda arch: arch.to_json(),
}


class TabularObjective(Objective):
    """Values looked up in a table keyed by architecture (e.g. NAS-Bench-201 accuracies).

    Args:
        table: a DataFrame, or a path to a CSV file.
        column: the value column.
        key_column: the column holding each row's architecture.
        key_format: how architectures are written in ``key_column``: ``"nb201"``
            (``|nor_conv_3x3~0|+...``), ``"key"`` (``Architecture.key``) or ``"json"``.
        name: objective name (default: ``column``).
        direction: ``"minimize"`` or ``"maximize"``.

    Raises:
        ObjectiveError: on a missing column, duplicate keys, or (when called) an
            architecture that is not in the table, naming it.
    """

    def __init__(self, table: pd.DataFrame | str | Path, column: str, key_column: str = "arch",
                 key_format: str = "nb201", name: str | None = None,
                 direction: str = "minimize") -> None:
        super().__init__(name or column, direction, cache=False)
        self.source = str(table) if not isinstance(table, pd.DataFrame) else "<DataFrame>"
        if not isinstance(table, pd.DataFrame):
            path = Path(table)
            if not path.is_file():
                raise ObjectiveError(f"objective {self.name!r}: table file {path} does not exist")
            table = _read_csv(path, self.name)
        if key_format not in KEY_FORMATS:
            raise ObjectiveError(f"objective {self.name!r}: key_format {key_format!r} is unknown; "
                                 f"valid: {', '.join(KEY_FORMATS)}")
        for col in (key_column, column):
            if col not in table.columns:
                raise ObjectiveError(f"objective {self.name!r}: table {self.source} has no column "
                                     f"{col!r}; columns: {', '.join(map(str, table.columns))}")
        keys = table[key_column].astype(str)
        dup = keys[keys.duplicated()]
        if len(dup):
            raise ObjectiveError(f"objective {self.name!r}: table {self.source} repeats key "
                                 f"{dup.iloc[0]!r} in column {key_column!r}")
        self.column, self.key_column, self.key_format = column, key_column, key_format
        self._to_key = KEY_FORMATS[key_format]
        values = pd.to_numeric(table[column], errors="coerce").astype(float)
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ObjectiveError(f"objective {self.name!r}: table {self.source} row {row + 2} "
                                 f"(key {keys.iloc[row]!r}): {column} value "
                                 f"{table[column].iloc[row]!r} is not a finite number")
        self._values: dict[str, float] = dict(zip(keys, values, strict=True))

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        out = np.empty(len(archs))
        for i, arch in enumerate(archs):
            try:
                key = self._to_key(arch)
            except KeyError as exc:
                raise ObjectiveError(f"objective {self.name!r}: architecture {arch.key} cannot be "
                                     f"written as a {self.key_format!r} key ({exc})") from None
            try:
                out[i] = self._values[key]
            except KeyError:
                raise ObjectiveError(
                    f"objective {self.name!r}: architecture {key!r} (key {arch.key}) is not in "
                    f"table {self.source} (column {self.key_column!r}, {len(self._values)} rows)"
                ) from None
        return out

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "table": self.source, "column": self.column,
                "key_column": self.key_column, "key_format": self.key_format,
                "rows": len(self._values)}


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    """A CSV table; an unreadable file is one :class:`ObjectiveError` naming it."""
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ObjectiveError(f"objective {name!r}: table file {path} is not a readable CSV: "
                             f"{first}") from None
