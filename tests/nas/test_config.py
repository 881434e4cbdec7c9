"""Config parsing: every bad key, type and value is reported with its key path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from nas.config import load_yaml, parse, to_dict
from nas.errors import ConfigError


@dataclass(frozen=True)
class Engine:
    name: Literal["evolution", "random"] = "evolution"
    population: int = field(default=20, metadata={"ge": 2})
    lr: float = 1e-3


@dataclass(frozen=True)
class Experiment:
    space: str
    budgets_ms: tuple[float, ...] = ()
    engine: Engine = field(default_factory=Engine)
    options: dict[str, int] = field(default_factory=dict)
    note: str | None = None


def test_parses_nested_dataclasses_and_round_trips():
    cfg = parse(Experiment, {"space": "nb201", "budgets_ms": [10, 12.5], "engine": {"population": 8, "lr": "1e-2"}})
    assert cfg.engine == Engine(population=8, lr=0.01) and cfg.budgets_ms == (10.0, 12.5)
    assert parse(Experiment, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"space": "x", "engin": {}}, "engin: unknown key (did you mean 'engine'?); valid keys: space, budgets_ms, engine, options, note"),
        ({"space": "x", "engine": {"name": "evo"}}, "engine.name: 'evo' is not allowed; allowed values: 'evolution', 'random'"),
        ({"space": "x", "engine": {"population": 1}}, "engine.population: must be >= 2, got 1"),
        ({"space": "x", "engine": {"population": "many"}}, "engine.population: expected int, got 'many'"),
        ({"space": "x", "budgets_ms": [10, "fast"]}, "budgets_ms[1]: expected float, got 'fast'"),
        ({"space": "x", "options": {"a": 1.5}}, "options.a: expected int, got 1.5"),
        ({}, "space: required key is missing"),
        ({"space": "x", "engine": 3}, "engine: expected a mapping of keys for Engine, got 3"),
    ],
)
def test_errors_name_the_key_path(data, message):
    with pytest.raises(ConfigError) as info:
        parse(Experiment, data)
    assert str(info.value) == message


def test_load_yaml_is_safe_and_reports_syntax_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: nb201\nengine: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+: invalid YAML"):
        load_yaml(bad)
    evil = tmp_path / "evil.yaml"
    evil.write_text("space: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(evil)
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "none.yaml")
