"""Users' own components from the CLI: ``plugins:`` in an experiment and ``nas --plugin``.

A user module in tmp_path registers a space (``newcomer_ofa``) built with its own op
(``newcomer_scale``); every command can name them once the module is loaded.
"""

from __future__ import annotations

import json

import pytest
import yaml

from nas.cli import main
from search_spaces import OPS, SPACES, Architecture

PLUGIN = '''
from torch import nn

from search_spaces import (NUM_CLASSES, Choice, Grammar, Op, Param, Repeat, SearchSpace, Seq,
                           Value, register_op, register_space)


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


@register_op("newcomer_scale", params={"factor": Param(float, 1.0)},
             out_shape=lambda shape, factor: shape, replace=True)
def newcomer_scale(in_shape, factor):
    """Multiply by a constant."""
    return Scale(factor)


@register_space("newcomer_ofa", replace=True)
def newcomer_ofa(width: int = 8):
    net = Seq(stem=Op("conv_bn_act", out=width, kernel=3),
              body=Repeat(Op("mbconv", out=width, kernel=Value([3, 5]), expand=Value([2, 3])),
                          depth=[1, 2]),
              scale=Op("newcomer_scale", factor=0.5),
              head=Op("classifier", out=NUM_CLASSES))
    return SearchSpace(Grammar({"net": net}), name="newcomer_ofa", input_shape=(1, 8, 8))


@register_space("newcomer_choice", replace=True)
def newcomer_choice():
    net = Seq(stem=Op("conv_bn_act", out=8, kernel=3),
              body=Choice([Op("newcomer_scale", factor=0.5), Op("mbconv", out=8, kernel=3, expand=2)]),
              head=Op("classifier", out=NUM_CLASSES))
    return SearchSpace(Grammar({"net": net}), name="newcomer_choice", input_shape=(1, 8, 8))
'''

RUN = {
    "name": "newcomer", "plugins": ["plugins/newcomer.py"],
    "space": {"name": "newcomer_ofa"},
    "supernet": {"train": {"batch_size": 64, "calib_images": 64, "phases": [
        {"name": "all", "elastic": ["kernel", "depth", "width"], "steps": 4, "lr": 0.1, "n_random": 1}]}},
    "devices": [{"name": "cpu1", "kind": "cpu", "options": {"threads": 1},
                 "profiler": {"time_budget_s": 0.02, "min_runs": 3, "max_runs": 5, "warmup": 1},
                 "n_calibration": 2}],
    "predictor": {"name": "ridge", "train_archs": 10, "holdout": 0.0},
    "search": {"engine": "evolution", "evaluations": 20, "batch_size": 10, "budget_quantiles": [0.7]},
    "export": {"formats": ["state_dict"]},
    "report": {"random_archs": 2, "remeasure": False},
}


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    (folder / "plugins").mkdir()
    (folder / "plugins" / "newcomer.py").write_text(PLUGIN)
    (folder / "newcomer_mod.py").write_text(PLUGIN)
    yield folder
    for name in ("newcomer_ofa", "newcomer_choice"):
        if name in SPACES:
            SPACES.remove(name)
    if "newcomer_scale" in OPS:
        OPS.remove("newcomer_scale")


def write(folder, data, name="exp.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_plugin_option_serves_sample_and_ops(plugin_dir, capsys, monkeypatch):
    monkeypatch.chdir(plugin_dir)  # --plugin file paths are relative to the working directory
    assert main(["--plugin", "plugins/newcomer.py", "sample", "newcomer_ofa", "-n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    space = SPACES.create("newcomer_ofa")
    assert len(lines) == 3 and all(space.contains(Architecture.from_json(x)) for x in lines)
    assert main(["--plugin", "plugins/newcomer.py", "ops", "--json"]) == 0
    ops = {op["name"]: op for op in json.loads(capsys.readouterr().out)["ops"]}
    assert ops["newcomer_scale"]["params"] == [
        {"name": "factor", "type": "float", "required": False, "default": "1.0", "elastic": None}]
    assert main(["--plugin", "no/such/file.py", "spaces"]) == 2
    assert "--plugin no/such/file.py: plugin file" in capsys.readouterr().err


def test_ops_lists_parameters_elasticity_and_supernet_decisions(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    assert "mbconv" in out and "kernel: int" in out and "[elastic: kernel]" in out
    assert "decisions each supernet accepts" in out and "ofa" in out and "darts" in out
    assert main(["ops", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    mbconv = next(op for op in data["ops"] if op["name"] == "mbconv")
    assert mbconv["ofa_dynamic"] and {p["elastic"] for p in mbconv["params"]} >= {"kernel", "width"}
    assert set(data["supernets"]) == {"ofa", "darts"}


def test_experiment_plugins_serve_nas_search(plugin_dir, capsys, monkeypatch):
    monkeypatch.chdir(plugin_dir.parent)  # plugins: paths are relative to the file
    exp = {"name": "s", "plugins": ["plugins/newcomer.py"], "space": {"name": "newcomer_ofa"},
           "search": {"engine": "random", "objectives": [{"type": "flops"}, {"type": "params"}],
                      "evaluations": 6, "batch_size": 3}}
    path = write(plugin_dir, exp, "search.yaml")
    assert main(["search", str(path), "--out", str(plugin_dir / "s")]) == 0
    assert "6 evaluated" in capsys.readouterr().out
    # a module name works as well (on the Python path)
    monkeypatch.syspath_prepend(str(plugin_dir))
    path = write(plugin_dir, {**exp, "plugins": ["newcomer_mod"]}, "search2.yaml")
    assert main(["search", str(path), "--out", str(plugin_dir / "s2")]) == 0


def test_unsupported_decisions_are_reported_at_validation(plugin_dir, capsys):
    path = write(plugin_dir, {**RUN, "space": {"name": "newcomer_choice"}}, "choice.yaml")
    assert main(["run", str(path), "--out", str(plugin_dir / "never")]) == 2
    err = capsys.readouterr().err
    assert "supernet.type: an OFA supernet cannot serve space 'newcomer_choice'" in err
    assert "choice among productions" in err and not (plugin_dir / "never").exists()


def test_experiment_plugins_serve_nas_run(plugin_dir, capsys):
    path = write(plugin_dir, RUN)
    assert main(["run", str(path), "--out", str(plugin_dir / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "[setup] space newcomer_ofa" in out and "test accuracy" in out
    assert (plugin_dir / "run" / "report.md").is_file()
