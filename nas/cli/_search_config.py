"""The YAML experiment file of ``nas search``, parsed once into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.errors import ConfigError

__all__ = ["ObjectiveConfig", "SearchConfig", "load_search_config"]


@dataclass(frozen=True)
class SpaceConfig:
    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EngineConfig:
    name: str = "nsga2"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveConfig:
    """One objective or measure. ``type``: flops, params, tabular or table_latency."""

    type: str
    name: str | None = None
    direction: str | None = None
    path: str | None = None          # tabular: CSV file; table_latency: saved table
    column: str | None = None        # tabular: value column
    key_column: str = "arch"         # tabular: column of architecture keys
    key_format: str = "nb201"        # tabular: nb201 | key | json


@dataclass(frozen=True)
class SearchConfig:
    space: SpaceConfig
    objectives: tuple[ObjectiveConfig, ...]
    engine: EngineConfig = field(default_factory=EngineConfig)
    constraints: tuple[str, ...] = ()
    measures: tuple[ObjectiveConfig, ...] = ()
    budget: int = 100
    batch_size: int = 20
    seed: int = 0
    storage: str = "search.db"
    study: str = "search"
    output: str | None = None
    reference: tuple[float, ...] | None = None


def _build(cls: type, data: Any, path: str) -> Any:
    """Dataclass from a mapping; unknown keys are errors naming the path and the valid keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key; valid keys: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: required key is missing")
            continue
        kwargs[name] = _convert(hints[name], data[name], where)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def load_search_config(path: str | Path) -> SearchConfig:
    """Parse a YAML search config (``yaml.safe_load``); errors name the key path."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return _build(SearchConfig, data, "")
