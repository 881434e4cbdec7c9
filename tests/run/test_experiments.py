"""Every file in experiments/ parses and validates against the registries."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.cli import darts as darts_cli
from nas.cli._search_config import load_search_config
from nas.run import load_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
KIND = {"darts_nb201.yaml": "darts", "nb201_flops_params.yaml": "search", "ray_sweep.yaml": "sweep"}


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_experiment_file_is_valid(path):
    kind = KIND.get(path.name, "run")
    if kind == "darts":
        assert darts_cli.load_experiment(path).space == "nb201"
    elif kind == "search":
        assert load_search_config(path).budget > 0
    elif kind == "sweep":
        from nas.sweep import expand_trials, load_sweep

        trials = expand_trials(load_sweep(path), "runs/unused")  # validates every trial
        assert load_sweep(path).name == path.stem and len(trials) >= 2
    else:
        cfg = load_experiment(path)
        assert cfg.name == path.stem


def test_every_experiment_is_documented():
    readme = (EXPERIMENTS / "README.md").read_text()
    for path in EXPERIMENTS.glob("*.yaml"):
        assert path.name in readme, path.name
