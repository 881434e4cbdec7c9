"""One check shared by the supernets' config dataclasses: known keys only."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from supernets.errors import SupernetError


def check_keys(data: Any, cls: type, where: str) -> Mapping[str, Any]:
    """Return ``data`` if it is a mapping of ``cls``'s field names; else an error listing them."""
    if not isinstance(data, Mapping):
        raise SupernetError(f"{where}: expected a mapping, got {type(data).__name__}")
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise SupernetError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(valid)}")
    return data
