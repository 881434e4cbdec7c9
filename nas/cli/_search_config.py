"""The YAML experiment file of ``nas search``, parsed once into frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nas.config import load_yaml, parse

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

    type: Literal["flops", "params", "tabular", "table_latency"]
    name: str | None = None
    direction: Literal["minimize", "maximize"] | None = None
    path: str | None = None          # tabular: CSV file; table_latency: saved table
    column: str | None = None        # tabular: value column
    key_column: str = "arch"         # tabular: column of architecture keys
    key_format: Literal["nb201", "key", "json"] = "nb201"


@dataclass(frozen=True)
class SearchConfig:
    space: SpaceConfig
    objectives: tuple[ObjectiveConfig, ...]
    engine: EngineConfig = field(default_factory=EngineConfig)
    constraints: tuple[str, ...] = ()
    measures: tuple[ObjectiveConfig, ...] = ()
    budget: int = field(default=100, metadata={"ge": 1})
    batch_size: int = field(default=20, metadata={"ge": 1})
    seed: int = 0
    storage: str = "search.db"
    study: str = "search"
    output: str | None = None
    reference: tuple[float, ...] | None = None


def load_search_config(path: str | Path) -> SearchConfig:
    """Parse a YAML search config (``yaml.safe_load``); errors name the key path."""
    return parse(SearchConfig, load_yaml(path))
