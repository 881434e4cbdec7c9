"""Every file in experiments/ parses and validates, as the command it is written for would."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.experiment import load_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
COMMAND = {"darts_nb201.yaml": "darts", "nb201_flops_params.yaml": "search", "ray_sweep.yaml": "sweep"}


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_experiment_file_is_valid(path):
    command = COMMAND.get(path.name, "run")
    if command == "sweep":
        from nas.sweep import expand_trials, load_sweep

        trials = expand_trials(load_sweep(path), "runs/unused")  # validates every trial
        assert load_sweep(path).name == path.stem and len(trials) >= 2
        return
    exp = load_experiment(path, command)
    assert exp.name == path.stem or command == "search"
    if command == "darts":  # `nas run` runs the same DARTS pipeline on the same file
        assert load_experiment(path, "run").supernet.type == "darts"


def test_input_paths_are_relative_to_the_file():
    exp = load_experiment(EXPERIMENTS / "ofa_cifar10.yaml")
    assert exp.data.root == str((EXPERIMENTS.parent / "data" / "cifar-10-batches-py").resolve())


def test_every_experiment_is_documented():
    readme = (EXPERIMENTS / "README.md").read_text()
    for path in EXPERIMENTS.glob("*.yaml"):
        assert path.name in readme, path.name
