"""Launching ``nas supernet train`` on several processes: torch's elastic launcher, torchrun, Ray Train.

The workers here run a probe plugin around the real trainer: every rank joins the
process group and all-reduces its rank (so the group is real), the ranks train the
tiny supernet together, and the probe can kill rank 1 after a checkpoint at step k. The
data-parallel trainer itself (same weights as one process) is tested in
tests/supernets/test_distributed.py.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import main
from nas.launch import LaunchError, TrainJob, launch_local

CONFIG = """
space:
  name: mobilenetv3_ofa
  options: {width_mult: 0.25, resolutions: [16], kernels: [3, 5], expands: [2, 3], depths: [1, 2]}
compute: {threads: 1}
supernet:
  train:
    batch_size: 16
    calib_images: 32
    checkpoint_every: 1
    phases:
      - {name: full, steps: 2, lr: 1e-1}
      - {name: all, elastic: [kernel, depth, width, resolution], steps: 1, n_random: 0}
"""

PROBE = '''
"""Test plugin: wraps nas.run.train_experiment_supernet in every worker."""
import json, os, types
from pathlib import Path

import torch
import torch.distributed as dist

import nas.run

_real = nas.run.train_experiment_supernet


def _probe(exp, run_dir, **kw):
    rank, world = dist.get_rank(), dist.get_world_size()
    if str(rank) == os.environ.get("PROBE_EXIT_RANK"):
        os._exit(3)  # dies without a word, before the others' first collective
    total = torch.tensor([rank + 1.0])
    dist.all_reduce(total)
    run_dir = Path(run_dir)
    fail_at = int(os.environ.get("PROBE_FAIL_AT", "0"))
    marker = run_dir.parent / "failed_once"
    fail = fail_at > 0 and not marker.exists()
    with open(run_dir.parent / f"probe{rank}.jsonl", "a") as f:
        f.write(json.dumps({"rank": rank, "world": world, "sum": total.item(),
                            "backend": dist.get_backend(), "master": os.environ.get("MASTER_ADDR"),
                            "local_rank": os.environ.get("LOCAL_RANK")}) + "\\n")
    result = types.SimpleNamespace(steps=0, finished=False)
    if os.environ.get("PROBE_TRAIN", "1") == "1":  # the data-parallel trainer, on every rank
        result = _real(exp, run_dir, **{**kw, "max_steps": fail_at if fail else kw.get("max_steps")})
    dist.barrier()
    if fail and rank == 1:
        marker.touch()
        raise RuntimeError(f"injected failure at step {fail_at}")
    return result


nas.run.train_experiment_supernet = _probe
'''


@pytest.fixture
def setup(tmp_path: Path, monkeypatch) -> tuple[Path, Path, Path]:
    import nas.run

    # `nas --plugin probe.py` imports the probe in this process too: undo its patch after
    monkeypatch.setattr(nas.run, "train_experiment_supernet", nas.run.train_experiment_supernet)
    (tmp_path / "ofa.yaml").write_text(CONFIG)
    (tmp_path / "probe.py").write_text(PROBE)
    return tmp_path / "ofa.yaml", tmp_path / "probe.py", tmp_path / "run"


def _records(folder: Path, rank: int) -> list[dict]:
    return [json.loads(line) for line in (folder / f"probe{rank}.jsonl").read_text().splitlines()]


def _steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row["loss"]]  # not phase ends


def test_nproc_forms_a_group_and_a_failed_rank_is_one_line(setup, capsys, monkeypatch) -> None:
    cfg, probe, run = setup
    monkeypatch.setenv("PROBE_FAIL_AT", "1")
    monkeypatch.setenv("PROBE_TRAIN", "0")  # the group and the failure only: no training
    argv = ["--plugin", str(probe), "supernet", "train", str(cfg), "--run-dir", str(run),
            "--nproc", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas supernet: error: rank 1 failed: RuntimeError: injected failure at "
                          "step 1 (traceback in ") and len(err.splitlines()) == 1, err
    assert "in _probe" in (run / "logs" / "rank1.err").read_text()
    for rank in (0, 1):  # both ranks joined one gloo group on localhost, each with its LOCAL_RANK
        (record,) = _records(run.parent, rank)
        assert record.pop("master") in ("127.0.0.1", "localhost")
        assert record == {"rank": rank, "world": 2, "sum": 3.0, "backend": "gloo",
                          "local_rank": str(rank)}


@pytest.mark.slow
def test_a_rank_that_exits_fails_the_run_without_a_hang(setup, capsys, monkeypatch) -> None:
    cfg, probe, run = setup
    monkeypatch.setenv("PROBE_EXIT_RANK", "1")
    argv = ["--plugin", str(probe), "supernet", "train", str(cfg), "--run-dir", str(run),
            "--nproc", "2"]
    assert main(argv) == 2  # rank 0 waits in its all-reduce until the launcher stops it
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas supernet: error: rank 1 failed: exited with code 3"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_nproc_rerun_after_a_rank_died_resumes(setup, capsys, monkeypatch) -> None:
    cfg, probe, run = setup
    monkeypatch.setenv("PROBE_FAIL_AT", "2")  # rank 0 checkpoints step 2, then rank 1 dies
    argv = ["--plugin", str(probe), "supernet", "train", str(cfg), "--run-dir", str(run),
            "--nproc", "2"]
    assert main(argv) == 2
    assert "rank 1 failed: RuntimeError: injected failure at step 2" in capsys.readouterr().err
    assert json.loads((run / "supernet.json").read_text())["step"] == 2
    assert main(argv) == 0  # the rerun continues from the checkpoint at step 2
    assert "supernet finished after 3 steps in 2 processes" in capsys.readouterr().out
    assert _steps(run) == [1, 2, 3]
    assert [len(_records(run.parent, rank)) for rank in (0, 1)] == [2, 2]


def test_launch_flags_are_checked(setup, capsys, monkeypatch) -> None:
    cfg, _, run = setup
    base = ["supernet", "train", str(cfg), "--run-dir", str(run)]
    cases = {("--workers", "2"): "--workers: only with --ray-address",
             ("--nproc", "2", "--ray-address", "auto"): "give one of them",
             ("--nproc", "0"): "--nproc: must be >= 1, got 0"}
    for flags, message in cases.items():
        assert main([*base, *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun
    assert main([*base, "--nproc", "2"]) == 2
    assert "already one rank of a launched group (WORLD_SIZE=2)" in capsys.readouterr().err
    assert not run.exists()
    with pytest.raises(LaunchError, match="--nproc: must be >= 1"):
        launch_local(TrainJob(str(cfg), str(run)), 0)


def test_ray_failure_names_the_rank(tmp_path) -> None:
    from nas.launch import _ray_failure

    ray_train = pytest.importorskip("ray.train")
    exc = ray_train.WorkerGroupError("worker 1 died", {1: RuntimeError("Traceback...\nValueError: bad")})
    error = _ray_failure(tmp_path, exc)
    assert str(error).startswith("rank 1 failed: ValueError: bad (traceback in ")
    assert (tmp_path / "logs" / "rank1.err").read_text().endswith("ValueError: bad")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchrun_starts_the_cli(setup) -> None:
    cfg, probe, run = setup
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0",
           "-m", "nas", "--plugin", str(probe), "supernet", "train", str(cfg), "--run-dir", str(run)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("supernet finished after 3 steps") == 1  # rank 0 reports
    assert [r["world"] for rank in (0, 1) for r in _records(run.parent, rank)] == [2, 2]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ray_train_retries_resume_from_the_checkpoint(setup) -> None:
    pytest.importorskip("ray.train.torch")
    cfg, probe, run = setup
    cmd = [sys.executable, "-m", "nas", "--plugin", str(probe), "supernet", "train", str(cfg),
           "--run-dir", str(run), "--ray-address", "local", "--workers", "2", "--max-failures", "1"]
    env = {**os.environ, "PROBE_FAIL_AT": "2"}  # rank 1 fails once after step 2; Ray retries
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "supernet finished after 3 steps on 2 Ray workers" in done.stdout
    assert _steps(run) == [1, 2, 3]  # the retry resumed from the checkpoint at step 2
    for rank in (0, 1):  # two attempts, each a 2-process gloo group on localhost only
        records = _records(run.parent, rank)
        assert [(r["world"], r["sum"], r["master"]) for r in records] == [(2, 3.0, "127.0.0.1")] * 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_nproc_trains_with_the_data_parallel_trainer(setup, capsys) -> None:
    cfg, _, run = setup
    assert main(["supernet", "train", str(cfg), "--run-dir", str(run), "--nproc", "2"]) == 0
    assert "finished after 3 steps in 2 processes" in capsys.readouterr().out
    assert _steps(run) == [1, 2, 3]  # rank 0 alone writes the metrics


def test_restart_applies_until_this_launch_has_checkpointed(tmp_path) -> None:
    from nas.launch import _restart_now

    state = tmp_path / "supernet.json"
    state.write_text("{}")
    os.utime(state, (1000.0, 1000.0))  # a checkpoint of an earlier run
    job = TrainJob("x.yaml", str(tmp_path), restart=True, started_at=2000.0)
    assert _restart_now(job)  # first attempt: ignore the old checkpoint
    os.utime(state, (2001.0, 2001.0))  # written by this launch: a retry resumes from it
    assert not _restart_now(job)
    assert not _restart_now(TrainJob("x.yaml", str(tmp_path), restart=False, started_at=0.0))
    assert TrainJob("x.yaml", "run", plugins=("p.py", "pkg.mod")).absolute().plugins == (
        str(Path("p.py").resolve()), "pkg.mod")
