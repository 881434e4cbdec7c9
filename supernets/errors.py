"""Exceptions of the supernets package."""

from __future__ import annotations

__all__ = ["SupernetError"]


class SupernetError(ValueError):
    """Base class of errors raised by ``supernets``: the message names the decision path,
    key or file at fault and the allowed values."""
