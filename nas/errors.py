"""The errors a user can cause, which the CLI reports as one line (no traceback).

Importing this module imports no other package (the CLI starts without torch): the
other packages' base errors are looked up only when an exception is classified
(:func:`user_errors`, :func:`is_user_error`).
"""

from __future__ import annotations

import importlib
import sys

# ``USER_ERRORS`` (every package's base error) is served by ``__getattr__``: it imports them.
__all__ = ["NasError", "ConfigError", "ObjectiveError", "SearchError", "StorageError", "SweepError",
           "is_user_error", "user_errors"]

#: Each package's base error, as (module, name): a user error of that package.
_PACKAGE_ERRORS = (
    ("search_spaces.errors", "SearchSpaceError"),
    ("supernets.data", "DataError"),
    ("hardware.errors", "HardwareError"),
    ("supernets.errors", "SupernetError"),
    ("predictors.errors", "PredictorError"),
)


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


def user_errors(imported_only: bool = False) -> tuple[type[BaseException], ...]:
    """The base errors of every package (a user's mistake, reported as one line).

    Args:
        imported_only: only those of packages already imported: enough to classify an
            exception (its class's module is imported), and it imports nothing.
    """
    found: list[type[BaseException]] = [NasError]
    for module, name in _PACKAGE_ERRORS:
        if imported_only and module not in sys.modules:
            continue
        found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a user error of any package (imports nothing)."""
    return isinstance(exc, user_errors(imported_only=True))


def __getattr__(name: str) -> tuple[type[BaseException], ...]:
    if name == "USER_ERRORS":  # every package's base error: imports the packages
        return user_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
