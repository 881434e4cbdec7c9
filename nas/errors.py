"""The errors a user can cause, which the CLI reports as one line (no traceback)."""

from __future__ import annotations

from hardware.errors import HardwareError
from predictors.errors import PredictorError
from search_spaces.errors import SearchSpaceError
from supernets.data import DataError
from supernets.errors import SupernetError

__all__ = ["NasError", "ConfigError", "ObjectiveError", "SearchError", "StorageError", "SweepError",
           "USER_ERRORS"]


class NasError(ValueError):
    """Base class of errors raised by the ``nas`` package."""


class ConfigError(NasError):
    """A bad experiment file or CLI argument: the message names the key path."""


class ObjectiveError(NasError):
    """An objective cannot score an architecture (e.g. it is missing from a table)."""


class SearchError(NasError):
    """A bad search problem or engine setting (unknown engine, constraint, direction)."""


class StorageError(NasError):
    """A study cannot be created, opened or resumed as asked."""


class SweepError(NasError):
    """A sweep cannot start, resume or finish as asked (Ray unreachable, trials failed)."""


# Each package's base error is added here as the package lands.
USER_ERRORS: tuple[type[BaseException], ...] = (
    SearchSpaceError,
    DataError,
    HardwareError,
    SupernetError,
    PredictorError,
    NasError,
)
