"""Data-parallel ``nas supernet train`` on existing engines: torch's elastic launcher and Ray Train.

Every worker process runs the same :func:`run_job`: it imports the plugins, loads the
experiment, joins the process group its launcher describes and calls
:func:`nas.run.train_experiment_supernet`, which takes it from there (same subnets on
every rank, gradient all-reduce, rank-0-only writes). Three ways start the workers:

* ``torchrun --nproc-per-node N [--nnodes ... rendezvous flags] -m nas supernet train
  CONFIG.yaml``: torchrun starts the CLI N times with ``RANK``/``WORLD_SIZE``/... set;
  each runs :func:`run_job` in-process (:func:`under_launcher` tells).
* ``nas supernet train CONFIG.yaml --nproc N`` (:func:`launch_local`): torch's
  ``elastic_launch`` API (what ``torchrun`` runs) on this machine, rendezvous on
  127.0.0.1 only, gloo on CPU, one GPU per process (``LOCAL_RANK``) on CUDA.
* ``nas supernet train CONFIG.yaml --ray-address auto --workers N`` (:func:`launch_ray`):
  Ray Train's ``TorchTrainer`` on a Ray cluster (or a local one, ``local``), which forms
  the process group itself; ``max_failures`` lets Ray restart the workers, and each
  restart resumes from the checkpoint in the run folder (a shared file system).

A rank that fails ends the run with one :class:`LaunchError` line naming the rank and its
error; its full traceback is kept in ``<run_dir>/logs/``. Rerunning the same command
continues from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nas.errors import NasError

__all__ = ["LaunchError", "TrainJob", "init_process_group", "launch_local", "launch_ray",
           "run_job", "run_summary", "under_launcher"]

#: The file the OFA trainer writes last in a checkpoint (``supernets`` writes it atomically).
STATE_FILE = "supernet.json"
LOG_DIR = "logs"
#: How long a collective waits for a missing rank before the run fails (not hangs).
DEFAULT_TIMEOUT_S = 600.0


class LaunchError(NasError):
    """A data-parallel run could not start, or one of its ranks failed (the message names it)."""


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """One ``nas supernet train``, as every worker process runs it (plain data: it is pickled).

    Args:
        experiment: path of the experiment YAML file (absolute: workers may start elsewhere).
        run_dir: the run folder (absolute; on a shared file system for multi-node runs).
        restart: ignore a checkpoint that existed before ``started_at``.
        max_steps: stop after this many steps in total (a later run resumes).
        plugins: ``--plugin`` modules or files, imported in every worker.
        command: the command line recorded in the run manifest.
        started_at: when the launch began (``time.time()``): a checkpoint newer than
            this was written by this launch, so a restarted worker resumes from it even
            under ``restart``.
    """

    experiment: str
    run_dir: str
    restart: bool = False
    max_steps: int | None = None
    plugins: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    started_at: float = dataclasses.field(default_factory=time.time)

    def absolute(self) -> TrainJob:
        """The same job with absolute paths (what workers in other folders need)."""
        def resolve(spec: str) -> str:
            is_file = spec.endswith(".py") or "/" in spec
            return str(Path(spec).resolve()) if is_file else spec

        return dataclasses.replace(self, experiment=str(Path(self.experiment).resolve()),
                                   run_dir=str(Path(self.run_dir).resolve()),
                                   plugins=tuple(resolve(p) for p in self.plugins))


# ------------------------------------------------------------------------------ in a worker
def under_launcher() -> bool:
    """Whether this process is one rank of a launched group (``WORLD_SIZE`` > 1 is set)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def init_process_group(device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Join the process group that the launcher's environment variables describe.

    Does nothing when a group exists already (Ray Train forms it) or ``WORLD_SIZE`` is
    not above 1. The backend is NCCL when ``device`` allows CUDA and a GPU is present (the
    process then uses GPU ``LOCAL_RANK``), else gloo.

    Returns:
        True when this call formed the group (the caller destroys it).
    """
    import torch
    import torch.distributed as dist

    if dist.is_initialized() or not under_launcher():
        return False
    from supernets import distributed

    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    distributed.init_from_env("cuda" if cuda else "cpu", timeout_s)  # the one place
    return True


def _restart_now(job: TrainJob) -> bool:
    """``restart`` applies only while this launch has not checkpointed yet (retries resume)."""
    state = Path(job.run_dir) / STATE_FILE
    return job.restart and not (state.is_file() and state.stat().st_mtime >= job.started_at)


def run_job(job: TrainJob) -> dict[str, Any]:
    """Train the job's supernet in this process: the body of every worker.

    Returns:
        ``{"rank", "world_size", "steps", "finished"}`` as this rank saw them.
    """
    import torch.distributed as dist

    import nas.run
    from nas.experiment import load_experiment
    from search_spaces import load_plugin

    for spec in job.plugins:
        load_plugin(spec)
    exp = load_experiment(job.experiment, "supernet")
    formed = init_process_group(exp.compute.device)
    try:
        rank = dist.get_rank() if dist.is_initialized() else 0
        world = dist.get_world_size() if dist.is_initialized() else 1
        result = nas.run.train_experiment_supernet(
            exp, job.run_dir, restart=_restart_now(job), max_steps=job.max_steps,
            command=list(job.command) or None)
    finally:
        if formed:
            dist.destroy_process_group()
    return {"rank": rank, "world_size": world, "steps": result.steps, "finished": result.finished}


def _elastic_worker(job: TrainJob) -> dict[str, Any]:
    return run_job(job)


def _ray_worker(config: dict[str, Any]) -> None:
    run_job(TrainJob(**config))


# ------------------------------------------------------------------------------ error lines
def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _keep_traceback(run_dir: Path, rank: int, text: str) -> Path | None:
    """Write a failed rank's traceback to ``<run_dir>/logs/rank<N>.err``."""
    if not text:
        return None
    path = run_dir / LOG_DIR / f"rank{rank}.err"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
    return None


def _failure_line(run_dir: Path, rank: int, message: str, traceback: str) -> str:
    kept = _keep_traceback(run_dir, rank, traceback)
    where = f" (traceback in {kept})" if kept else ""
    return f"rank {rank} failed: {message}{where}"


def _elastic_failure(run_dir: Path, exc: Any) -> LaunchError:
    """One line from torch's ``ChildFailedError``: each failed rank and its error, the first
    to fail first (a rank that dies makes the others' collectives fail after it)."""
    lines = []
    for rank, failure in sorted(exc.failures.items(), key=lambda item: item[1].timestamp):
        info = failure.message
        if isinstance(info, dict) and info.get("message"):
            message = info["message"]
            trace = info.get("extraInfo", {}).get("py_callstack", "")
        elif failure.exitcode < 0:
            message, trace = f"killed by signal {-failure.exitcode} ({failure.signal_name()})", ""
        else:
            message, trace = f"exited with code {failure.exitcode}", ""
        lines.append(_failure_line(run_dir, rank, _last_line(message), trace))
    return LaunchError("; ".join(lines) + "; rerun the same command to resume from the last "
                       "checkpoint")


@contextlib.contextmanager
def _quiet_torch_elastic() -> Iterator[None]:
    """torch's launcher logs every failure with a traceback; we report one line instead."""
    names = ("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing")
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# ------------------------------------------------------------------------------ launchers
def launch_local(job: TrainJob, nproc: int, max_restarts: int = 0,
                 monitor_interval_s: float = 0.5, shutdown_timeout_s: int = 5
                 ) -> dict[int, dict[str, Any]]:
    """Run ``job`` in ``nproc`` processes on this machine with torch's elastic launcher.

    Rendezvous is on 127.0.0.1 (a free port); workers start with ``spawn``. When a rank
    fails the others are stopped (no hang) and, unless ``max_restarts`` allows torch to
    restart the group (each restart resumes from the run folder's checkpoint), a
    :class:`LaunchError` names the rank. The surviving ranks, blocked in a collective,
    get SIGTERM and ``shutdown_timeout_s`` later SIGKILL (checkpoints are written
    atomically, so nothing half-written is left).

    Returns:
        What :func:`run_job` returned, by rank.
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise LaunchError(f"--nproc: must be >= 1, got {nproc}")
    job = job.absolute()
    run_dir = Path(job.run_dir)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"nas-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=max_restarts,
        monitor_interval=monitor_interval_s, start_method="spawn",
        shutdown_timeout=shutdown_timeout_s,
        logs_specs=DefaultLogsSpecs(log_dir=str(run_dir / LOG_DIR / "elastic")))
    with _quiet_torch_elastic():
        try:
            return elastic_launch(config, _elastic_worker)(job)
        except ChildFailedError as exc:
            raise _elastic_failure(run_dir, exc) from None


def _ray_failure(run_dir: Path, exc: Any) -> LaunchError:
    failures = getattr(exc, "worker_failures", None) or {}
    lines = [_failure_line(run_dir, rank, _last_line(str(err)), str(err))
             for rank, err in sorted(failures.items())]
    text = "; ".join(lines) if lines else f"Ray Train failed: {_last_line(str(exc))}"
    return LaunchError(f"{text}; rerun the same command to resume from the last checkpoint")



def launch_ray(job: TrainJob, workers: int, address: str | None = None,
               gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0,
               max_failures: int = 0, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Run ``job`` on ``workers`` Ray Train workers (``TorchTrainer``).

    Args:
        job: the training job; its run folder must be on a file system every node sees.
        workers: data-parallel processes (Ray ``ScalingConfig.num_workers``).
        address: ``"auto"`` or ``"ray://HOST:10001"`` (an existing cluster), or None /
            ``"local"``: a local Ray whose session files go to ``<run_dir>/ray_tmp``.
        gpus_per_worker: GPUs per worker (> 0: NCCL and one GPU per process).
        cpus_per_worker: CPUs per worker.
        max_failures: how often Ray restarts the workers after a failure; each restart
            resumes from the checkpoint in the run folder.
        timeout_s: collective timeout of the process group (a dead rank fails the run).
    """
    from nas.sweep import ray_session

    if workers < 1:
        raise LaunchError(f"--workers: must be >= 1, got {workers}")
    if max_failures < -1:
        raise LaunchError(f"--max-failures: must be >= -1 (-1: unlimited), got {max_failures}")
    job = job.absolute()
    run_dir = Path(job.run_dir)
    cluster = None if address in (None, "", "local") else address
    with ray_session(run_dir / "ray_tmp", address=cluster):  # a local Ray: loopback only
        import ray.train
        from ray.train.torch import TorchConfig, TorchTrainer

        resources = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
        trainer = TorchTrainer(
            _ray_worker, train_loop_config=dataclasses.asdict(job),
            torch_config=TorchConfig(backend="nccl" if gpus_per_worker else "gloo",
                                     timeout_s=int(timeout_s)),
            scaling_config=ray.train.ScalingConfig(num_workers=workers,
                                                   use_gpu=gpus_per_worker > 0,
                                                   resources_per_worker=resources),
            run_config=ray.train.RunConfig(
                name=f"nas-{uuid.uuid4().hex[:8]}", storage_path=str(run_dir / "ray_train"),
                failure_config=ray.train.FailureConfig(max_failures=max_failures)))
        try:
            trainer.fit()
        except ray.train.TrainingFailedError as exc:
            raise _ray_failure(run_dir, exc) from None


def run_summary(run_dir: str | Path) -> tuple[int, bool]:
    """(steps, finished) of the checkpoint in ``run_dir`` (what a launch left)."""
    from supernets import SupernetState

    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise LaunchError(f"{run_dir}: the workers wrote no checkpoint ({STATE_FILE})")
    state = SupernetState.from_json(path.read_text(), str(path))
    return state.step, state.finished

