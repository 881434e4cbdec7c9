"""Exceptions of the search-space package.

Every message names what is wrong and where: the grammar rule or the dotted
decision path, the rule that was broken, and the offending value.
"""

from __future__ import annotations

__all__ = ["SearchSpaceError", "GrammarError", "ArchitectureError", "UnknownNameError"]


class SearchSpaceError(ValueError):
    """Base class of every error raised by ``search_spaces``."""


class GrammarError(SearchSpaceError):
    """A grammar cannot derive finite networks (undefined rule, cycle with no exit...)."""


class ArchitectureError(SearchSpaceError):
    """An architecture is not a member of its search space.

    Attributes:
        path: the dotted decision path at fault (``None`` when not path-specific).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnknownNameError(SearchSpaceError, KeyError):
    """A registry lookup with a name that is not registered (the message lists the valid ones)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]
