"""Registry of named search spaces (built-ins and users' own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search_spaces.errors import SearchSpaceError, UnknownNameError
from search_spaces.space import SearchSpace

__all__ = ["get_space", "list_spaces", "register_space"]

SpaceFactory = Callable[..., SearchSpace]
_SPACES: dict[str, SpaceFactory] = {}


def register_space(name: str, *, replace: bool = False) -> Callable[[SpaceFactory], SpaceFactory]:
    """Decorator registering a factory ``(**options) -> SearchSpace`` under ``name``.

    Example:
        >>> @register_space("tiny_chain")
        ... def tiny_chain(width: int = 8) -> SearchSpace: ...
    """

    def decorator(factory: SpaceFactory) -> SpaceFactory:
        if name in _SPACES and not replace:
            raise SearchSpaceError(f"space {name!r} is already registered (pass replace=True)")
        _SPACES[name] = factory
        return factory

    return decorator


def get_space(name: str, **options: Any) -> SearchSpace:
    """Build the registered space ``name`` with factory options (e.g. ``width_mult=0.5``)."""
    if name not in _SPACES:
        raise UnknownNameError("space", name, list(_SPACES))
    try:
        space = _SPACES[name](**options)
    except TypeError as exc:
        raise SearchSpaceError(f"space {name!r}: bad options {sorted(options)}: {exc}") from None
    space.name = name
    return space


def list_spaces() -> list[str]:
    """Names of registered spaces, sorted."""
    return sorted(_SPACES)
