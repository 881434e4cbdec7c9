"""Registry of named search spaces (built-ins and users' own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search_spaces._registry import Registry
from search_spaces.errors import SearchSpaceError, UnknownNameError
from search_spaces.space import SearchSpace

__all__ = ["SPACES", "get_space", "list_spaces", "register_space"]

SpaceFactory = Callable[..., SearchSpace]

SPACES: Registry[SpaceFactory] = Registry("space", SearchSpaceError, UnknownNameError)
"""Factories ``(**options) -> SearchSpace`` by name."""


def register_space(name: str, *, replace: bool = False) -> Callable[[SpaceFactory], SpaceFactory]:
    """Decorator registering a factory ``(**options) -> SearchSpace`` under ``name``.

    Example:
        >>> @register_space("tiny_chain")
        ... def tiny_chain(width: int = 8) -> SearchSpace: ...
    """
    return SPACES.register(name, replace=replace)


def get_space(name: str, **options: Any) -> SearchSpace:
    """Build the registered space ``name`` with factory options (e.g. ``width_mult=0.5``).

    Raises:
        UnknownNameError: ``name`` is not registered (the valid names are listed).
        SearchSpaceError: an option the factory does not take (the valid ones are
            listed), or a bad option value rejected by the factory.
    """
    try:
        space = SPACES.create(name, **options)
    except SearchSpaceError:
        raise
    except ValueError as exc:  # a factory refusing an option value
        raise SearchSpaceError(f"space {name!r}: {exc}") from None
    space.name = name
    return space


def list_spaces() -> list[str]:
    """Names of registered spaces, sorted."""
    return SPACES.names()
