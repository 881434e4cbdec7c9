"""`Architecture`: the flattened decisions of one derivation, as a frozen value."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from search_spaces.errors import ArchitectureError

__all__ = ["Architecture"]

Scalar = bool | int | float | str


def _normalise(path: str, value: Any) -> Any:
    """Map a decision value to its canonical, hashable form (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(path, v) for v in value)
    if isinstance(value, (bool, int, float, str)):
        return value
    raise ArchitectureError(
        f"decision {path!r}: values must be JSON scalars or lists of them, got {type(value).__name__}",
        path,
    )


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


class Architecture(Mapping[str, Any]):
    """Immutable mapping ``{dotted.path: value}`` with a stable content key.

    Two architectures with the same decisions are equal, hash equal and share
    the same :attr:`key` in any process and Python version (the key is a SHA-1
    of the canonical JSON, not Python's salted ``hash``).

    Example:
        >>> a = Architecture({"stage1.depth": 2, "stage1.block1.kernel": 3})
        >>> Architecture.from_json(a.to_json()) == a
        True
    """

    __slots__ = ("_decisions", "_key", "_origin")

    def __init__(self, decisions: Mapping[str, Any]) -> None:
        items = {}
        for path, value in decisions.items():
            if not isinstance(path, str) or not path:
                raise ArchitectureError(f"decision paths must be non-empty strings, got {path!r}")
            items[path] = _normalise(path, value)
        self._decisions: dict[str, Any] = dict(sorted(items.items()))
        self._key: str | None = None
        self._origin: tuple[Any, Any] | None = None

    @classmethod
    def _trusted(cls, decisions: dict[str, Any], key: str, origin: tuple[Any, Any] | None) -> Architecture:
        """Internal: wrap decisions already canonical (normalised values, sorted paths)
        with their precomputed key; ``origin`` is ``(decision table, index row)``."""
        arch = object.__new__(cls)
        object.__setattr__(arch, "_decisions", decisions)
        object.__setattr__(arch, "_key", key)
        object.__setattr__(arch, "_origin", origin)
        return arch

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._decisions,))  # the origin row stays in this process

    # Mapping protocol ------------------------------------------------------
    def __getitem__(self, path: str) -> Any:
        try:
            return self._decisions[path]
        except KeyError:
            raise KeyError(f"architecture has no decision {path!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._decisions)

    def __len__(self) -> int:
        return len(self._decisions)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Architecture):
            return self._decisions == other._decisions
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.key)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__slots__ and not hasattr(self, name):
            object.__setattr__(self, name, value)
            return
        raise AttributeError("Architecture is immutable; use .replace(...)")

    def __repr__(self) -> str:
        return f"Architecture({self.to_json()})"

    # Value API ---------------------------------------------------------------
    @property
    def key(self) -> str:
        """Stable content key: 16 hex digits of SHA-1 over the canonical JSON."""
        if self._key is None:
            object.__setattr__(
                self, "_key", hashlib.sha1(self.to_json().encode()).hexdigest()[:16]
            )
        return self._key  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {path: _jsonable(v) for path, v in self._decisions.items()}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        """Parse JSON text made by :meth:`to_json` (or any ``{path: value}`` object)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"architecture is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ArchitectureError(
                f"architecture JSON must be an object of {{path: value}}, got {type(data).__name__}"
            )
        return cls(data)

    def replace(self, **changes: Any) -> Architecture:
        """Copy with some decisions changed (paths with dots: pass a dict to ``update``)."""
        return self.update(changes)

    def update(self, changes: Mapping[str, Any]) -> Architecture:
        """Copy with ``changes`` applied; a value of ``None`` removes the path."""
        merged = dict(self._decisions)
        for path, value in changes.items():
            if value is None:
                merged.pop(path, None)
            else:
                merged[path] = value
        return Architecture(merged)
