"""``nas sweep`` on a local Ray (2 CPUs): all results written, a crashed trial retried,
results identical to running the same trials one after the other in this process.

One Ray session serves the whole module. The crash-retry and Ray-evaluator tests start
extra worker processes and are marked slow (``python -m pytest -m slow tests/nas``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nas.objectives import Flops, Params
from nas.search import Problem, get_engine, run_search
from nas.sweep import (
    RayEvaluator,
    expand_trials,
    load_sweep,
    ray_session,
    run_sweep,
    run_trial,
    tune_trainable,
)
from search_spaces import get_space

SEARCH = {
    "name": "tiny", "seed": 0,
    "space": {"name": "nb201", "options": {"channels": 4, "cells_per_stage": 1, "input_shape": [1, 8, 8]}},
    "search": {"objectives": [{"type": "params"}, {"type": "flops"}], "constraints": ["params <= 6e3"],
               "engine": "nsga2", "options": {"population_size": 8}, "evaluations": 16,
               "batch_size": 8},
}
SWEEP = {"name": "tiny", "base": "base.yaml", "command": "search", "max_concurrent": 2,
         "max_failures": 1, "grid": {"seed": [0, 1], "search.engine": ["nsga2", "evolution"]}}


def write_sweep(folder: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(SEARCH))
    sweep = {**SWEEP, **changes}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def ray_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if ("raylet" in line or "gcs_server" in line) and str(os.getpid()) not in line]


@pytest.fixture(scope="module")
def ray_2cpus(tmp_path_factory):
    """One local Ray for the module, with its files under the test's folder."""
    before = ray_processes()
    untouched = [p for p in (Path("/tmp/ray"), Path.home() / "ray_results", Path.home() / ".ray")
                 if not p.exists()]
    tmp = tmp_path_factory.mktemp("ray")
    with ray_session(tmp / "ray_tmp", num_cpus=2):
        yield tmp
    assert ray_processes() == before  # nothing of ours left running
    assert [p for p in untouched if p.exists()] == []  # Ray wrote only under the test's folder


def histories(trial_dirs: list[str]) -> list[pd.DataFrame]:
    return [pd.read_csv(Path(d) / "results" / "history.csv")[["arch_key", "params", "flops"]]
            for d in trial_dirs]


@pytest.fixture(scope="module")
def sweep_4(ray_2cpus):
    folder = ray_2cpus / "four"
    path = write_sweep(folder)
    result = run_sweep(path, output=folder / "out", echo=None)
    return path, result


def test_four_trial_sweep_writes_every_result(sweep_4):
    _, result = sweep_4
    assert result.ok and len(result.trials) == 4
    table = pd.read_csv(result.output / "sweep.csv")
    assert list(table["status"]) == ["done"] * 4
    assert list(table["param.seed"]) == [0, 0, 1, 1]
    assert (table["evaluations"] == 16).all() and (table["front_size"] >= 1).all()
    assert (table["best_params"] <= 6e3).all()
    for spec in result.trials:
        folder = Path(spec.trial_dir)
        assert (folder / "trial_result.json").is_file() and (folder / "search.db").is_file()
        assert (folder / "results" / "front.png").is_file()
    assert (result.output / "ray_tune").is_dir() and (result.output / "sweep.json").is_file()


def test_sweep_equals_the_same_trials_run_sequentially(sweep_4, tmp_path):
    path, result = sweep_4
    sequential = expand_trials(load_sweep(path), tmp_path / "seq")
    metrics = [run_trial(spec) for spec in sequential]
    for ray_h, seq_h in zip(histories([t.trial_dir for t in result.trials]),
                            histories([t.trial_dir for t in sequential]), strict=True):
        pd.testing.assert_frame_equal(ray_h, seq_h)
    table = result.table.set_index("trial")
    for m in metrics:
        assert table.loc[m["trial"], "best_flops"] == m["best_flops"]
        assert table.loc[m["trial"], "front_size"] == m["front_size"]


def test_existing_sweep_needs_resume_and_resume_keeps_finished_trials(sweep_4):
    from nas.errors import SweepError

    path, result = sweep_4
    with pytest.raises(SweepError, match="already holds this sweep; pass --resume"):
        run_sweep(path, output=result.output, echo=None)
    stamps = [os.stat(Path(t.trial_dir) / "trial_result.json").st_mtime_ns for t in result.trials]
    lines: list[str] = []
    again = run_sweep(path, output=result.output, resume=True, echo=lines.append)
    assert again.ok and any("resuming" in line for line in lines)
    assert stamps == [os.stat(Path(t.trial_dir) / "trial_result.json").st_mtime_ns
                      for t in result.trials]  # finished trials did not run again


def crash_once_then_run(config):
    """Fault injection: the first attempt of trial 1 finishes its work, then kills its
    own worker process before reporting; the retry must not lose or repeat evaluations."""
    spec = config["trial"]
    marker = Path(spec["trial_dir"]) / "crashed_once"
    if spec["index"] == 1 and not marker.exists():
        run_trial(spec)
        marker.write_text("x")
        os._exit(1)
    tune_trainable(config)


@pytest.mark.slow  # a replacement worker process starts (~15-30 s here)
def test_a_trial_whose_worker_dies_is_retried(ray_2cpus):
    import sys

    from ray import cloudpickle

    from nas.storage import read_study

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

    folder = ray_2cpus / "crash"
    path = write_sweep(folder, grid={"seed": [0, 1]})
    lines: list[str] = []
    result = run_sweep(path, output=folder / "out", echo=lines.append, trainable=crash_once_then_run)
    assert result.ok, result.failed
    crashed = Path(result.trials[1].trial_dir)
    assert (crashed / "crashed_once").is_file()
    assert any("retrying" in line for line in lines), lines
    stored = read_study(f"tiny-{result.trials[1].name}", f"sqlite:///{crashed / 'search.db'}")
    assert len(stored.records) == 16  # the retry resumed the study: nothing repeated
    reference = run_trial({**result.trials[1].to_dict(), "trial_dir": str(folder / "ref")})
    assert result.table.loc[1, "best_flops"] == reference["best_flops"]


@pytest.mark.slow  # two actor processes start (~12 s here)
def test_ray_evaluator_matches_in_process_evaluation(ray_2cpus):
    space = get_space("nb201", channels=4, cells_per_stage=1, input_shape=(1, 8, 8))

    def search(evaluator_workers: int):
        problem = Problem(space, [Params(space), Flops(space)], ["params <= 6e3"])
        engine = get_engine("evolution", space, seed=3)
        if not evaluator_workers:
            return run_search(problem, engine, 24, batch_size=12), 0
        with RayEvaluator(problem, evaluator_workers) as evaluator:
            result = run_search(problem, engine, 24, batch_size=12, evaluator=evaluator)
            return result, evaluator.calls

    local, _ = search(0)
    remote, calls = search(2)
    assert calls >= 4  # two actors per batch
    cols = ["arch_key", "params", "flops", "feasible"]
    pd.testing.assert_frame_equal(local.history[cols], remote.history[cols])


@pytest.mark.slow  # actor processes start inside each trial
def test_evaluation_workers_run_inside_the_trials_placement_group(ray_2cpus, sweep_4):
    """Each trial reserves itself plus one evaluation actor: 2 CPUs, so one trial at a
    time on this Ray; results equal those of in-process evaluation."""
    folder = ray_2cpus / "workers"
    path = write_sweep(folder, grid={"seed": [0, 1]},
                       resources={"cpu": 1, "evaluation_workers": 1})
    result = run_sweep(path, output=folder / "out", echo=None)
    assert result.ok, result.failed
    _, plain = sweep_4  # same base, seeds 0 and 1 with nsga2 are its trials 0 and 2
    for with_actor, in_process in zip(histories([t.trial_dir for t in result.trials]),
                                      histories([plain.trials[i].trial_dir for i in (0, 2)]),
                                      strict=True):
        pd.testing.assert_frame_equal(with_actor, in_process)


PLUGIN = '''
from search_spaces import get_space, register_space


@register_space("sweep_plugin_nb201", replace=True)
def sweep_plugin_nb201():
    return get_space("nb201", channels=4, cells_per_stage=1, input_shape=(1, 8, 8))
'''


@pytest.mark.slow  # trials run in Ray worker processes that must import the plugin themselves
def test_trials_load_the_experiment_plugins_on_ray_workers(ray_2cpus):
    folder = ray_2cpus / "plugin"
    folder.mkdir()
    (folder / "my_space.py").write_text(PLUGIN)
    base = {**SEARCH, "plugins": ["my_space.py"], "space": {"name": "sweep_plugin_nb201"}}
    path = write_sweep(folder, grid={"seed": [0, 1]})
    (folder / "base.yaml").write_text(yaml.safe_dump(base))
    result = run_sweep(path, output=folder / "out", echo=None)
    assert result.ok, result.failed
    assert (result.table["evaluations"] == 16).all()
    assert all(t.experiment["plugins"] == [str(folder / "my_space.py")] for t in result.trials)


@pytest.mark.slow  # starts its own local Ray (~10 s)
def test_local_ray_listens_on_loopback_only_and_keeps_its_files_private(tmp_path):
    from nas.sweep import ray_session

    if not Path("/proc/net/tcp").exists():
        pytest.skip("reads listening sockets from /proc/net (Linux)")

    def listening() -> set[tuple[str, int]]:
        found = set()
        loopbacks = {"0100007F", "00000000000000000000000001000000",  # 127.0.0.1, ::1
                     "0000000000000000FFFF00000100007F"}  # ::ffff:127.0.0.1
        for name in ("tcp", "tcp6"):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A":  # LISTEN
                    host, port = local.split(":")
                    found.add(("loopback" if host in loopbacks else host, int(port, 16)))
        return found

    before = listening()
    with ray_session(tmp_path / "ray"):
        new = listening() - before
    assert new, "Ray opened no listening socket?"
    assert all(ip == "loopback" for ip, _ in new), sorted(new)
    assert (tmp_path / "ray").stat().st_mode & 0o077 == 0
