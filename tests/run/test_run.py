"""``nas run`` end to end on a tiny budget, its caching, and its one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from nas.cli import main
from nas.errors import ConfigError
from nas.experiment import load_experiment
from nas.export import load_exported
from nas.run import run_experiment

TINY = {
    "name": "tiny",
    "seed": 0,
    "space": {"name": "mobilenetv3_ofa",
              "options": {"width_mult": 0.25, "resolutions": [8, 12], "depths": [1, 2],
                          "kernels": [3, 5], "expands": [3, 4]}},
    "supernet": {"train": {"batch_size": 64, "checkpoint_every": 5, "calib_images": 64, "phases": [
        {"name": "full", "elastic": [], "steps": 6, "lr": "1e-1"},
        {"name": "elastic", "elastic": ["resolution", "kernel", "depth", "width"], "steps": 4,
         "lr": 0.02, "n_random": 1}]}},
    "devices": [{"name": "cpu1", "kind": "cpu", "options": {"threads": 1},
                 "profiler": {"time_budget_s": 0.02, "min_runs": 3, "max_runs": 5, "warmup": 1},
                 "n_calibration": 3}],
    "predictor": {"name": "ridge", "train_archs": 12, "holdout": 0.0},
    "search": {"engine": "evolution", "evaluations": 60, "batch_size": 20, "budget_quantiles": [0.5]},
    "export": {"formats": ["state_dict", "torchscript", "onnx"]},
    "report": {"random_archs": 4},
}


def write(tmp_path: Path, config: dict, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = load_experiment(write(tmp, TINY), "run")
    return run_experiment(cfg, tmp / "out", progress=False, echo=False), cfg


def test_tiny_run_writes_every_artefact(tiny_run):
    result, _ = tiny_run
    out = result.run_dir
    for name in ("front.csv", "history.csv", "front.png", "report.md", "run.log", "config.yaml",
                 "random_baseline.csv", "study.db", "manifest.json"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["experiment"]["name"] == "tiny" and manifest["torch"] == torch.__version__
    assert set(manifest) >= {"version", "git_commit", "command", "python", "started"}
    front = pd.read_csv(out / "front.csv")
    assert len(front) >= 1 and set(front.columns) >= {"accuracy", "latency_ms", "arch"}
    (chosen,) = result.chosen
    assert chosen["table_latency_ms"] <= chosen["budget_ms"]
    assert 0.0 <= chosen["test_accuracy"] <= 1.0 and chosen["measured_latency_ms"] > 0
    (arch,) = result.archs  # the chosen subnet as a value, the most accurate feasible one
    assert arch.to_json() == chosen["arch"]
    feasible = front[front["latency_ms"] <= chosen["budget_ms"]]
    assert chosen["predicted_accuracy"] == pytest.approx(feasible["accuracy"].max())
    report = (out / "report.md").read_text()
    assert "Chosen subnets" in report and "Random-architecture baseline" in report


def test_exported_models_load_and_match(tiny_run):
    result, _ = tiny_run
    (chosen,) = result.chosen
    folder = Path(chosen["dir"])
    model = load_exported(folder / "model.pt")
    scripted = torch.jit.load(str(folder / "model.torchscript.pt"))
    x = torch.randn(3, 1, 8, 8)
    with torch.inference_mode():
        assert torch.allclose(model(x), scripted(x), atol=1e-5)
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(out - model(x).detach().numpy()).max() < 1e-4
    for fmt in ("state_dict", "torchscript", "onnx"):
        assert chosen["files"][fmt]["max_abs_diff"] <= 1e-4


def test_rerun_reuses_every_stage(tiny_run, tmp_path):
    result, cfg = tiny_run
    again = run_experiment(cfg, result.run_dir, progress=False, echo=False)
    assert all(seconds == 0.0 for seconds in again.timings.values())
    assert again.chosen == result.chosen


def test_changed_search_budget_reruns_only_the_search(tiny_run, tmp_path):
    result, cfg = tiny_run
    out = tmp_path / "copy"
    shutil.copytree(result.run_dir, out)
    changed = load_experiment(write(tmp_path, {**TINY, "search": {**TINY["search"], "evaluations": 40}}),
                              "run")
    again = run_experiment(changed, out, progress=False, echo=False)
    assert again.timings["supernet"] == 0.0 and again.timings["predictor"] == 0.0
    assert any(k.startswith("search-") and v > 0 for k, v in again.timings.items())


def test_seeds_and_budgets_choose_among_every_evaluation(tiny_run, tmp_path):
    """Two seeds and two budgets: each budget's subnet is the best feasible one of all
    searches (both budgets, both seeds, engine and random search), and the report compares
    the engine with random search over the seeds."""
    result, _ = tiny_run
    out = tmp_path / "seeds"
    shutil.copytree(result.run_dir, out)
    search = {**TINY["search"], "seeds": [0, 1], "evaluations": 30, "budget_quantiles": [0.3, 0.7]}
    cfg = load_experiment(write(tmp_path, {**TINY, "search": search}), "run")
    again = run_experiment(cfg, out, progress=False, echo=False)
    history = pd.read_csv(out / "history.csv")
    assert set(history["engine"]) == {"evolution", "random"} and set(history["seed"]) == {0, 1}
    assert len(again.chosen) == 2
    for chosen in again.chosen:
        feasible = history[history["latency_ms"] <= chosen["budget_ms"]]
        assert chosen["predicted_accuracy"] >= feasible["accuracy"].max() - 1e-12
        assert chosen["table_latency_ms"] <= chosen["budget_ms"]
        rows = {r["engine"]: r for r in chosen["comparison"]}
        assert set(rows) == {"evolution", "random"} and rows["random"]["seeds"] == 2
    tight, loose = sorted(again.chosen, key=lambda c: c["budget_ms"])
    assert loose["predicted_accuracy"] >= tight["predicted_accuracy"]
    report = (out / "report.md").read_text()
    assert "## Search against random search" in report and "| random | 2 |" in report


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"serach": {}}, "serach: unknown key (did you mean 'search'?)"),
        ({"search": {"engine": "evolutoin"}}, "search.engine: unknown engine 'evolutoin' (did you mean 'evolution'?); valid engines:"),
        ({"search": {"engine": "evolution", "options": {"populaton_size": 4}}},
         "search.options: engine 'evolution' has no option 'populaton_size'"),
        ({"search": {"objectives": [{"type": "flops"}]}}, "search.objectives: `nas run` searches accuracy"),
        ({"search": {"evaluations": 0}}, "search.evaluations: must be >= 1, got 0"),
        ({"search": {"budget_quantiles": [1.5]}}, "search.budget_quantiles[0]: must be in (0, 1)"),
        ({"data": {"name": "mnist"}}, "data.name: unknown data set 'mnist'; valid: digits, digits_aug, cifar10"),
        ({"space": {"name": "nb202"}}, "space.name: unknown space 'nb202'"),
        ({"space": {"name": "nb201"}}, "supernet.type: an OFA supernet cannot serve space 'nb201'"),
        ({"space": {"name": "nb201", "options": {"chanels": 3}}}, "space.options: space 'nb201' has no option 'chanels'"),
        ({"devices": [{"name": "x", "kind": "tpu"}]}, "devices[0].kind: unknown device 'tpu'"),
        ({"devices": [{"name": "x", "profiler": {"budget": 1}}]}, "devices[0].profiler.budget: unknown option"),
        ({"predictor": {"name": "oracle"}}, "predictor.name: unknown predictor 'oracle'"),
        ({"predictor": {"name": "ridge", "options": {"seed": 3}}}, "predictor.options.seed: the experiment's top-level `seed`"),
        ({"supernet": {"train": {"batch_sise": 3}}}, "supernet.train.batch_sise: unknown key (did you mean 'batch_size'?)"),
        ({"supernet": {"train": {"seed": 3}}}, "supernet.train.seed: unknown key"),
        ({"supernet": {"train": {"phases": [{"name": "x", "lr": "fast"}]}}}, "supernet.train.phases[0].lr: expected float, got 'fast'"),
        ({"supernet": {"checkpoint": "c", "train": {}}}, "supernet.train: give either checkpoint or train, not both"),
        ({"plugins": ["no_such_module_xyz"]}, "plugins[0]: plugin module 'no_such_module_xyz' cannot be found"),
    ],
)
def test_bad_experiment_files_fail_before_anything_runs(tmp_path, capsys, patch, message):
    path = write(tmp_path, {**TINY, **patch})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("compute", "message"), [
    ({"device": "cuda"}, "compute.device: 'cuda' but torch finds no CUDA GPU on this machine"),
    ({"device": "cpu", "precision": "fp16"}, "compute.precision: fp16 needs a CUDA device"),
])
def test_a_compute_section_this_machine_cannot_serve_is_one_line(tmp_path, capsys, monkeypatch,
                                                                  compute, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write(tmp_path, {**TINY, "compute": compute})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_manifest_records_where_the_networks_ran(tiny_run):
    result, _ = tiny_run
    compute = json.loads((result.run_dir / "manifest.json").read_text())["compute"]
    assert compute["device"] == "cpu" and compute["precision"] == "fp32"
    assert compute["world_size"] == 1 and compute["processes"] == 1
    assert isinstance(compute["threads"], int) and compute["threads"] >= 1


def test_missing_data_path_is_one_clear_error(tmp_path, capsys):
    path = write(tmp_path, {**TINY, "data": {"name": "cifar10", "root": str(tmp_path / "nowhere")}})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "lacks" in capsys.readouterr().err
    # a relative path is relative to the experiment file, not to the working directory
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", {**TINY, "data": {"name": "cifar10", "root": "data/c10"}})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert str(tmp_path / "sub" / "data" / "c10") in capsys.readouterr().err


def test_checkpoint_of_another_space_is_refused(tiny_run, tmp_path, capsys):
    result, _ = tiny_run
    (ckpt,) = list((result.run_dir / "supernet").iterdir())
    other = {**TINY, "space": {"name": "mobilenetv3_ofa", "options": {"width_mult": 0.5, "resolutions": [8]}},
             "supernet": {"checkpoint": str(ckpt)}}
    assert main(["run", str(write(tmp_path, other)), "--out", str(tmp_path / "out")]) == 2
    assert "fingerprint" in capsys.readouterr().err


def test_table_for_another_device_is_refused(tiny_run, tmp_path, capsys):
    result, _ = tiny_run
    (table,) = list((result.run_dir / "tables").glob("*.csv"))
    other = {**TINY, "devices": [{"name": "cpu2", "kind": "cpu", "options": {"threads": 2},
                                  "table": str(table)}]}
    assert main(["run", str(write(tmp_path, other)), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "threads" in err and len(err.strip().splitlines()) == 1


def test_invalid_arch_file_is_one_clear_error(tmp_path, capsys):
    bad = tmp_path / "arch.json"
    bad.write_text(json.dumps({"stage1.depth": 9}))
    assert main(["describe", "mobilenetv3_ofa", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "missing decision 'resolution.size'" in err and len(err.strip().splitlines()) == 1


def test_load_experiment_rejects_unknown_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(tmp_path / "none.yaml")


@pytest.mark.slow
def test_processes_2_trains_the_supernet_in_two_processes(tmp_path):
    pytest.importorskip("nas.launch")  # the launcher (nas supernet train --nproc) runs the workers
    config = {**TINY, "compute": {"device": "cpu", "threads": 1, "processes": 2}}
    result = run_experiment(load_experiment(write(tmp_path, config), "run"), tmp_path / "out",
                            progress=False, echo=False)
    (folder,) = list((result.run_dir / "supernet").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["compute"]["world_size"] == 2
    assert json.loads((folder / "supernet.json").read_text())["finished"]


def test_a_table_imported_from_a_bundle_drives_nas_run(tiny_run, tmp_path):
    """A device elsewhere: bundle here, its standalone runner, import, then `nas run` with
    the imported table as `devices[0].table` (loaded without a local device check, and the
    chosen subnets are not re-timed on this machine)."""
    import subprocess
    import sys

    result, _ = tiny_run
    (ckpt,) = list((result.run_dir / "supernet").iterdir())
    options = TINY["space"]["options"]
    bundle, measured, table = tmp_path / "bundle", tmp_path / "m.csv", tmp_path / "remote.csv"
    space_args = [arg for key, value in options.items()
                  for arg in ("-O", f"{key}={json.dumps(value).replace(' ', '')}")]
    assert main(["lut", "bundle", "--space", "mobilenetv3_ofa", *space_args, "--input-shape", "1", "8",
                 "8", "--num-classes", "10", "--calibration", "3", "-o", str(bundle)]) == 0
    subprocess.run([sys.executable, str(bundle / "measure.py"), str(bundle), "-o", str(measured),
                    "--time-budget", "0.005", "--max-runs", "5", "--quiet"], check=True, timeout=300)
    assert main(["lut", "import", str(bundle), str(measured), "--allow-noisy", "-o", str(table)]) == 0
    remote = {**TINY, "supernet": {"checkpoint": str(ckpt)},
              "devices": [{"name": "pi", "kind": "onnxruntime", "table": str(table)}],
              "report": {"random_archs": 2}}
    run = run_experiment(load_experiment(write(tmp_path, remote), "run"), tmp_path / "out",
                         progress=False, echo=False)
    (chosen,) = run.chosen
    assert chosen["device"] == "pi" and chosen["table_latency_ms"] <= chosen["budget_ms"]
    assert chosen["measured_latency_ms"] is None  # measured elsewhere: not re-timed here
    assert "measured on another device through a bundle" in (tmp_path / "out" / "run.log").read_text()
