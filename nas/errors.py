"""The errors a user can cause, which the CLI reports as one line (no traceback)."""

from __future__ import annotations

from search_spaces.errors import SearchSpaceError
from supernets.data import DataError
from supernets.errors import SupernetError

__all__ = ["NasError", "ConfigError", "USER_ERRORS"]


class NasError(ValueError):
    """Base class of errors raised by the ``nas`` package."""


class ConfigError(NasError):
    """A bad experiment file or CLI argument: the message names the key path."""


# Each package's base error is added here as the package lands.
USER_ERRORS: tuple[type[BaseException], ...] = (SearchSpaceError, DataError, SupernetError, NasError)
