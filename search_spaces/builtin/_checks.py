"""Option checks shared by the built-in space factories: one line naming the option."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search_spaces.errors import SearchSpaceError

__all__ = ["positive"]


def positive(**options: Any) -> None:
    """Every option is a positive number, or a non-empty sequence of positive numbers."""
    for name, value in options.items():
        values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        ok = values and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                            for v in values)
        if not ok:
            many = isinstance(value, Sequence) and not isinstance(value, str)
            what = "a non-empty list of positive numbers" if many else "a positive number"
            raise SearchSpaceError(f"{name}: must be {what}, got {value!r}")
