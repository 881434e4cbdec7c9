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


def test_numbers_in_exponent_notation_are_numbers(tmp_path):
    """PyYAML alone reads 1e-3 and 5e4 as strings; every number field takes them."""
    path = tmp_path / "n.yaml"
    path.write_text("space: x\nengine: {lr: 1e-3, population: 5e4}\nbudgets_ms: [2e1, 1.5]\n")
    data = load_yaml(path)
    assert data["engine"] == {"lr": 0.001, "population": 50000.0}
    cfg = parse(Experiment, data)
    assert cfg.engine.lr == 0.001 and cfg.engine.population == 50000
    assert isinstance(cfg.engine.population, int) and cfg.budgets_ms == (20.0, 1.5)
    # strings from other sources (JSON, plain PyYAML) too
    assert parse(Engine, {"lr": "1e-3", "population": "5e4"}) == Engine(lr=0.001, population=50000)
    with pytest.raises(ConfigError, match=r"^engine.population: expected int, got 2.5$"):
        parse(Experiment, {"space": "x", "engine": {"population": 2.5}})
    with pytest.raises(ConfigError, match=r"^engine.population: expected int, got True$"):
        parse(Experiment, {"space": "x", "engine": {"population": True}})


@dataclass(frozen=True)
class Checked:
    lr: float = 0.1
    steps: int = 1

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if self.steps > 10:
            raise ValueError("too many steps for this test")


@dataclass(frozen=True)
class Outer:
    inner: Checked = field(default_factory=Checked, metadata={"omit": ("steps",)})
    items: tuple[Checked, ...] = ()
    data: str | None = field(default=None, metadata={"path": "file"})
    plugins: tuple[str, ...] = field(default=(), metadata={"path": "plugin"})


def test_a_dataclass_s_own_errors_name_the_key_path():
    with pytest.raises(ConfigError, match=r"^inner\.lr: must be > 0, got -1\.0$"):
        parse(Outer, {"inner": {"lr": -1}})
    with pytest.raises(ConfigError, match=r"^items\[1\]: too many steps for this test$"):
        parse(Outer, {"items": [{}, {"steps": 11}]})


def test_omitted_keys_are_unknown_and_left_out_of_to_dict():
    with pytest.raises(ConfigError, match=r"^inner.steps: unknown key; valid keys: lr$"):
        parse(Outer, {"inner": {"steps": 2}})
    cfg = parse(Outer, {"inner": {"lr": 0.5}, "items": [{"steps": 3}]})
    assert to_dict(cfg)["inner"] == {"lr": 0.5} and parse(Outer, to_dict(cfg)) == cfg


def test_paths_resolve_against_the_file_folder(tmp_path):
    from nas.config import resolve_paths

    cfg = parse(Outer, {"data": "d/x.csv", "plugins": ["my_mod", "p/plug.py"]})
    out = resolve_paths(cfg, tmp_path)
    assert out.data == str(tmp_path / "d" / "x.csv")
    assert out.plugins == ("my_mod", str(tmp_path / "p" / "plug.py"))  # module names stay
    assert resolve_paths(parse(Outer, {"data": "/abs.csv"}), tmp_path).data == "/abs.csv"
    assert resolve_paths(parse(Outer, {"data": "postgresql://h/db"}), tmp_path).data == "postgresql://h/db"
