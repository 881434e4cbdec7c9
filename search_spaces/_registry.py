"""One registry implementation for every pluggable role, plus plugin loading.

Spaces, ops, dynamic ops, devices, engines, accuracy predictors and zero-cost
proxies are all kept in a :class:`Registry`: the same rules for names, the same
``replace=`` semantics, the same errors. ``create(name, *args, **options)``
checks the option names against the factory's signature *before* calling it, so
a misspelt option names the valid ones, while a ``TypeError`` raised inside a
factory (a bug there) propagates as it is instead of being blamed on the user.

Plugins: users' components are registered by importing the module that defines
them. :func:`load_plugin` imports a module by dotted name or a ``.py`` file by
path (once); modules advertised by installed packages in the entry-point group
``hwnas.plugins`` are imported the first time any registry misses a name.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from search_spaces.errors import SearchSpaceError

__all__ = ["ENTRY_POINT_GROUP", "Registry", "RngLike", "as_generator", "load_entry_point_plugins",
           "load_plugin"]

T = TypeVar("T")

RngLike = np.random.Generator | int | None
"""A ``numpy.random.Generator``, a seed, or ``None`` (fresh entropy)."""

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
"""Registered names: a letter, then letters, digits, ``_``, ``.`` or ``-``."""

ENTRY_POINT_GROUP = "hwnas.plugins"
"""Entry-point group whose modules are imported to register users' components."""


def as_generator(rng: RngLike) -> np.random.Generator:
    """The generator itself, or a new one seeded with ``rng`` (an int or ``None``)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Registry(Generic[T]):
    """Named components of one kind (``"space"``, ``"device"``, ...).

    Args:
        kind: what is registered, used in messages (``unknown device 'tpu'``).
        error: exception class raised for bad names and options (the owning
            package's base error).
        unknown: exception class for a name that is not registered (default ``error``).
        plural: the plural of ``kind`` in messages (default ``kind + "s"``).

    Thread safety: registration is expected at import time; lookups are safe
    from any thread.

    Example:
        >>> DEVICES = Registry("device")
        >>> @DEVICES.register("cpu")
        ... def cpu(threads: int = 1): ...
        >>> DEVICES.create("cpu", threads=2)
    """

    def __init__(self, kind: str, error: type[Exception] = SearchSpaceError,
                 unknown: type[Exception] | None = None, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.error = error
        self.unknown = unknown or error
        self._items: dict[str, T] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} registered)"

    # registration ---------------------------------------------------------------
    def add(self, name: str, item: T, *, replace: bool = False) -> T:
        """Register ``item`` under ``name``; a taken name needs ``replace=True``."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise self.error(f"{self.kind} name must match {NAME_PATTERN.pattern} "
                             f"(a letter, then letters, digits, '_', '.' or '-'), got {name!r}")
        if name in self._items and not replace:
            raise self.error(f"{self.kind} {name!r} is already registered (pass replace=True)")
        self._items[name] = item
        return item

    def register(self, name: str, *, replace: bool = False,
                 name_attribute: str | None = None) -> Callable[[T], T]:
        """Decorator form of :meth:`add`; returns the decorated object (with its
        ``name_attribute``, when given, set to ``name``: engine and predictor classes
        know the name they are registered under)."""

        def decorator(item: T) -> T:
            self.add(name, item, replace=replace)
            if name_attribute is not None:
                setattr(item, name_attribute, name)
            return item

        return decorator

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests and interactive sessions)."""
        self.get(name)
        del self._items[name]

    # lookup ---------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """``(name, item)`` pairs, sorted by name."""
        return sorted(self._items.items())

    def get(self, name: str) -> T:
        """The item registered as ``name``; an unknown name lists the valid ones.

        A miss first imports the modules of the ``hwnas.plugins`` entry-point group
        (once per process), so installed plugins need no explicit import.
        """
        if name not in self._items:
            load_entry_point_plugins()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            hint = difflib.get_close_matches(str(name), list(self._items), n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise self.unknown(f"unknown {self.kind} {name!r}{maybe}; valid {self.plural}: "
                               f"{', '.join(self.names()) or '(none)'}") from None

    def find(self, name: str, default: Any = None) -> T | Any:
        """The item registered as ``name``, or ``default`` (no error, no plugin loading)."""
        return self._items.get(name, default)

    # factories ------------------------------------------------------------------
    def options(self, name: str, skip: int = 0) -> list[str] | None:
        """Keyword options the factory of ``name`` accepts, leaving out its first ``skip``
        positional parameters; ``None`` when it takes any (``**kwargs``).

        A class whose ``__init__`` forwards ``**kwargs`` to its base class accepts the
        options of the bases' ``__init__`` too (followed along the MRO).
        """
        factory = self.get(name)
        chain = ([c.__init__ for c in factory.__mro__ if "__init__" in vars(c)]
                 if isinstance(factory, type) else [factory])
        names: list[str] = []
        for fn in chain:
            params = list(_signature(fn).parameters.values())
            if isinstance(factory, type):
                params = params[1:]  # self
            named = [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                            inspect.Parameter.KEYWORD_ONLY)]
            names += [n for n in named[skip:] if n not in names]  # positionals pass down too
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
                return names
            if fn is object.__init__:
                break
        return None

    def check_options(self, name: str, options: dict[str, Any], skip: int = 0) -> None:
        """Raise ``error`` naming the first unknown option and listing the valid ones."""
        valid = self.options(name, skip)
        if valid is None:
            return
        bad = [key for key in options if key not in valid]
        if bad:
            hint = difflib.get_close_matches(str(bad[0]), valid, n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise self.error(f"{self.kind} {name!r} has no option {bad[0]!r}{maybe}; "
                             f"valid options: {', '.join(valid) or '(none)'}")

    def create(self, name: str, *args: Any, **options: Any) -> Any:
        """Call the factory of ``name`` with ``args`` and ``options`` (names checked first)."""
        self.check_options(name, options, skip=len(args))
        return self.get(name)(*args, **options)


def _signature(factory: Any) -> inspect.Signature:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: accept anything
        return inspect.Signature([inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])


# plugins --------------------------------------------------------------------------------

_LOCK = threading.RLock()
_LOADED: dict[str, str] = {}  # plugin spec (module name or resolved file) -> module name
_ENTRY_POINTS_LOADED = False


def load_plugin(spec: str, base_dir: str | Path | None = None) -> str:
    """Import a plugin module once, so that what it registers becomes available.

    Args:
        spec: a dotted module name (``my_project.nas_plugin``) or the path of a
            ``.py`` file (absolute, or relative to ``base_dir``).
        base_dir: folder that relative file paths start from (default: the
            working directory).

    Returns:
        The module's name in ``sys.modules``.

    Raises:
        SearchSpaceError: the module cannot be found; an error raised while the
            plugin itself runs propagates unchanged (it is the plugin's bug).
    """
    text = str(spec).strip()
    is_file = text.endswith(".py") or "/" in text or "\\" in text
    if is_file:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        key = str(path.resolve())
    else:
        key = text
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if is_file:
            if not path.is_file():
                raise SearchSpaceError(f"plugin file {str(path)!r} does not exist")
            name = f"hwnas_plugin_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise SearchSpaceError(f"plugin file {str(path)!r} cannot be imported")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        else:
            try:
                module = importlib.import_module(text)
            except ModuleNotFoundError as exc:
                if exc.name and text.startswith(exc.name):
                    raise SearchSpaceError(
                        f"plugin module {text!r} cannot be found (not installed, and not on the "
                        "Python path); give an importable module name or a .py file path") from None
                raise
            name = module.__name__
        _LOADED[key] = name
        return name


def load_entry_point_plugins() -> list[str]:
    """Import every module of the ``hwnas.plugins`` entry-point group (once per process)."""
    global _ENTRY_POINTS_LOADED
    with _LOCK:
        if _ENTRY_POINTS_LOADED:
            return []
        _ENTRY_POINTS_LOADED = True
        from importlib.metadata import entry_points

        loaded = []
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            loaded.append(load_plugin(entry.value.split(":", 1)[0]))
        return loaded
