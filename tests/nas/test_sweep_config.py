"""Sweep files without Ray: trial expansion, override checks against the schema, errors."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from nas.cli import main
from nas.errors import ConfigError
from nas.sweep import expand_trials, load_sweep

SEARCH = {
    "name": "tiny", "seed": 0,
    "space": {"name": "nb201", "options": {"channels": 4, "cells_per_stage": 1, "input_shape": [1, 8, 8]}},
    "search": {"objectives": [{"type": "params"}, {"type": "flops"}], "constraints": ["params <= 2e5"],
               "engine": "nsga2", "evaluations": 16, "batch_size": 8},
}

RUN = {
    "name": "base", "seed": 0,
    "space": {"name": "mobilenetv3_ofa", "options": {"width_mult": 0.25, "resolutions": [8, 12]}},
    "devices": [{"name": "cpu1", "kind": "cpu", "options": {"threads": 1}, "table": "tables/t.csv"}],
    "search": {"engine": "evolution", "evaluations": 60},
}


def write_sweep(tmp_path, sweep: dict, base: dict = SEARCH, name: str = "sweep.yaml"):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    path = tmp_path / name
    command = "search" if base is SEARCH else "run"
    path.write_text(yaml.safe_dump({"base": "base.yaml", "command": command, **sweep}, sort_keys=False))
    return path


def test_grid_times_samples_expand_in_a_fixed_order(tmp_path):
    path = write_sweep(tmp_path, {"grid": {"seed": [0, 1], "search.engine": ["nsga2", "random"]},
                                  "sample": {"search.batch_size": {"randint": [4, 12]}},
                                  "num_samples": 2, "seed": 7})
    trials = expand_trials(load_sweep(path), tmp_path / "out")
    assert len(trials) == 8 and trials[0].command == "search"
    assert [t.overrides["seed"] for t in trials[:4]] == [0, 0, 1, 1]
    assert [t.overrides["search.engine"] for t in trials[:4]] == ["nsga2", "random"] * 2
    assert all(4 <= t.overrides["search.batch_size"] < 12 for t in trials)
    assert trials[1].experiment["search"]["engine"] == "random" and trials[2].experiment["seed"] == 1
    assert trials[3].experiment["search"]["batch_size"] == trials[3].overrides["search.batch_size"]
    assert len({t.name for t in trials}) == 8 and trials[0].name.startswith("t000_seed=0")
    assert all(t.trial_dir.startswith(str((tmp_path / "out" / "trials").resolve())) for t in trials)
    again = expand_trials(load_sweep(path), tmp_path / "out")  # the sweep's seed fixes the draws
    assert [t.to_dict() for t in again] == [t.to_dict() for t in trials]
    json.dumps([t.to_dict() for t in trials])  # plain data, as Tune stores it


def test_sample_distributions_stay_in_range(tmp_path):
    path = write_sweep(tmp_path, {"sample": {
        "search.constraints": {"choice": [["params <= 1e5"], ["params <= 3e5"]]},
        "search.options.population_size": {"randint": [4, 9]},
        "search.options.crossover_prob": {"uniform": [0.5, 0.9]}}, "num_samples": 5})
    trials = expand_trials(load_sweep(path), tmp_path / "out")
    assert len(trials) == 5
    for t in trials:
        assert t.overrides["search.constraints"] in (["params <= 1e5"], ["params <= 3e5"])
        assert 4 <= t.overrides["search.options.population_size"] < 9
        assert isinstance(t.overrides["search.options.population_size"], int)
        assert 0.5 <= t.overrides["search.options.crossover_prob"] < 0.9


@pytest.mark.parametrize("sweep, message", [
    ({"grid": {"search.engin": ["nsga2"]}}, "grid.search.engin: unknown key 'engin' in search (did you mean 'engine'?)"),
    ({"grid": {"sed": [1]}}, "grid.sed: unknown key 'sed' (did you mean 'seed'?)"),
    ({"grid": {"search.evaluations.x": [1]}}, "grid.search.evaluations.x: search.evaluations is a plain value"),
    ({"grid": {"search.objectives.first.type": ["params"]}}, "search.objectives is a list; index it with a number"),
    ({"grid": {"seed": []}}, "grid.seed: give at least one value"),
    ({"sample": {"seed": {"normal": [0, 1]}}}, "sample.seed: give exactly one of choice, uniform"),
    ({"sample": {"search.evaluations": {"randint": [5, 2]}}}, "sample.search.evaluations.randint: low < high must hold"),
    ({"sample": {"search.evaluations": {"loguniform": [0, 2]}}}, "sample.search.evaluations.loguniform: low must be > 0"),
    ({"sample": {"search.evaluations": {"uniform": [10.5, 10.9]}}}, "search.evaluations: expected int, got 10."),
    ({"grid": {"seed": [0]}, "sample": {"seed": {"choice": [1]}}}, "sample.seed: the key is in grid too"),
    ({"grid": {"search.engine": ["nsga2", "anneal"]}}, "trial t001_engine=anneal: search.engine: unknown engine 'anneal'"),
    ({"grid": {"search.options": [{"populatio": 4}]}}, "engine 'nsga2' has no option 'populatio'"),
    ({"grid": {"search.evaluations": [0]}}, "trial t000_evaluations=0: search.evaluations: must be >= 1, got 0"),
    ({"grid": {"search.objectives.5.type": ["params"]}}, "search.objectives has 2 entries in the base experiment"),
    ({"grid": {"search.objectives.0.type": ["bogus"]}}, "search.objectives[0].type: unknown objective type 'bogus'"),
    ({"max_failures": -1}, "max_failures: must be >= 0"),
    ({"command": "train"}, "command: 'train' is not allowed; allowed values: 'run', 'search'"),
    ({"bogus": 1}, "bogus: unknown key"),
])
def test_bad_sweeps_name_their_key(tmp_path, sweep, message):
    with pytest.raises(ConfigError) as info:
        expand_trials(load_sweep(write_sweep(tmp_path, sweep)), tmp_path / "out")
    assert message in str(info.value)


def test_run_experiment_overrides_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)  # input paths are relative to the base file, not here
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "t.csv").write_text("")  # validation checks the table file exists
    path = write_sweep(tmp_path, {"grid": {"search.budgets_ms": [[2.0], [3.5]],
                                           "devices.0.options.threads": [1, 2]}}, base=RUN)
    trials = expand_trials(load_sweep(path), tmp_path / "out")
    assert [t.command for t in trials] == ["run"] * 4
    assert trials[1].experiment["devices"][0]["options"]["threads"] == 2
    assert trials[2].experiment["search"]["budgets_ms"] == [3.5]
    assert trials[0].experiment["devices"][0]["table"] == str(tmp_path / "tables" / "t.csv")
    with pytest.raises(ConfigError, match=r"grid.search.budget_ms: unknown key 'budget_ms' in search "
                                          r"\(did you mean 'budgets_ms'\?\)"):
        expand_trials(load_sweep(write_sweep(tmp_path, {"grid": {"search.budget_ms": [[1.0]]}},
                                             base=RUN)), tmp_path / "out")
    with pytest.raises(ConfigError, match="devices.3.kind: devices has 1 entries"):
        expand_trials(load_sweep(write_sweep(tmp_path, {"grid": {"devices.3.kind": ["cpu"]}},
                                             base=RUN)), tmp_path / "out")


def test_cli_reports_a_bad_sweep_in_one_line_without_starting_ray(tmp_path, capsys):
    path = write_sweep(tmp_path, {"grid": {"search.nam": ["nsga2"]}})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas sweep: error: grid.search.nam: unknown key") and "\n" not in err
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sweep", str(path), "--max-concurrent", "0"]) == 2
    assert "--max-concurrent must be >= 1" in capsys.readouterr().err
