"""Exceptions of the ``hardware`` package.

Messages name what is wrong and where: the device option, the table file and
column, the missing ``LayerSpec`` keys, and the values that would be accepted.
"""

from __future__ import annotations

__all__ = ["DeviceUnavailableError", "HardwareError", "MissingEntriesError", "TableMismatchError"]


class HardwareError(ValueError):
    """Base class of every error raised by ``hardware``."""


class DeviceUnavailableError(HardwareError):
    """A device cannot run on this machine: no GPU, a missing package.

    Raised by a device's constructor, so that callers (and :mod:`hardware.testing`)
    can tell "absent here" from a bad option or a bug.
    """


class TableMismatchError(HardwareError):
    """A latency table was asked to serve another space, device or input shape."""


class MissingEntriesError(HardwareError, KeyError):
    """A latency table lacks entries for some layers.

    Attributes:
        keys: the ``LayerSpec.key`` of every missing layer (sorted, unique).
    """

    def __init__(self, keys: list[str], context: str = "") -> None:
        self.keys = sorted(set(keys))
        shown = ", ".join(repr(k) for k in self.keys[:8])
        more = f" and {len(self.keys) - 8} more" if len(self.keys) > 8 else ""
        super().__init__(
            f"latency table has no entry for {len(self.keys)} layer(s): {shown}{more}"
            + (f"; {context}" if context else "")
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]
