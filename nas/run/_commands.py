"""The other commands an experiment file drives: ``nas search`` and ``nas supernet train``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nas.experiment import Experiment, build_problem
from nas.run._context import study_storage
from nas.search import Problem, SearchResult, default_batch_size, make_engine, run_search

__all__ = ["make_runtime", "search_experiment", "train_experiment_supernet"]


def search_experiment(exp: Experiment, run_dir: str | Path, resume: bool = False,
                      progress: bool | None = None, storage: str | None = None,
                      study: str | None = None,
                      make_evaluator: Callable[[Problem], Any] | None = None,
                      command: Sequence[str] | None = None) -> SearchResult:
    """Run (or resume) the search of ``exp`` (its ``search.objectives``) in ``run_dir``.

    Writes ``manifest.json``, ``history.csv``/``.json``, ``front.csv``/``.json`` and
    ``front.png`` into ``run_dir``; the study goes to ``search.storage``.

    Args:
        exp: the validated experiment (``load_experiment(path, "search")``).
        run_dir: the run folder (created).
        resume: continue the stored study of that name (else an existing one is refused).
        progress: a progress bar (None: on a terminal).
        storage: replaces ``search.storage`` (an SQLAlchemy URL).
        study: replaces the study name.
        make_evaluator: builds the batch evaluator from the problem (e.g. Ray actors).
        command: the command line recorded in the manifest (default ``sys.argv``).
    """
    from nas.manifest import write_manifest

    problem = build_problem(exp)  # loads tables and checks constraints before anything is written
    engine = make_engine(exp.search.engine, problem, seed=exp.seed,
                         budget=exp.search.evaluations, **exp.search.options)
    runtime = make_runtime(exp, data_parallel=False)  # sets the threads of this process
    from nas.storage import lock_run_folder

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with lock_run_folder(run_dir):  # one owner per run folder; a second run is one line
        write_manifest(run_dir, exp, command, compute=runtime.describe())
        evaluator = make_evaluator(problem) if make_evaluator is not None else None
        try:
            result = run_search(
                problem, engine, exp.search.evaluations,
                batch_size=exp.search.batch_size or default_batch_size(exp.search.evaluations),
                storage=storage or study_storage(exp.search.storage, run_dir),
                study_name=study or exp.study, resume=resume, progress=progress,
                evaluator=evaluator)
        finally:
            if hasattr(evaluator, "close"):
                evaluator.close()
        result.export(run_dir)
        result.plot(run_dir / "front.png")
    return result


def make_runtime(exp: Experiment, data_parallel: bool = True) -> Any:
    """The ``supernets.Runtime`` of ``exp.compute`` for this process (joins the launcher's
    process group when ``data_parallel``; sets the threads); a bad ``compute`` section
    (``cuda`` without a GPU, fp16 on the CPU) is one :class:`~nas.errors.ConfigError` line."""
    from nas.errors import ConfigError
    from supernets import Runtime, SupernetError
    from supernets.distributed import DistributedError

    try:
        return Runtime(exp.compute, data_parallel=data_parallel)
    except DistributedError:
        raise
    except SupernetError as exc:
        raise ConfigError(f"compute.{exc}") from None


def train_experiment_supernet(exp: Experiment, run_dir: str | Path, restart: bool = False,
                              max_steps: int | None = None, progress: bool | None = None,
                              command: Sequence[str] | None = None) -> Any:
    """Train the OFA supernet of ``exp`` (its space, data, ``supernet.train`` and ``compute``)
    in ``run_dir``: the body of every data-parallel worker.

    Under a launcher (``torchrun``, ``nas supernet train --nproc``, Ray Train) each process
    calls this with the ``torch.distributed`` environment set or a process group formed;
    it joins the group, takes its share of each global batch and only rank 0 writes (see
    :mod:`supernets.distributed`). Alone, it trains in this process.

    Returns:
        ``supernets.TrainResult`` (``finished`` is False when ``max_steps`` stopped it).
    """
    from nas.manifest import write_manifest
    from search_spaces import get_space
    from supernets import train_supernet
    from supernets.data import load_data

    runtime = make_runtime(exp)
    run_dir = Path(run_dir)
    if runtime.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(run_dir, exp, command, compute=runtime.describe())
    space = get_space(exp.space.name, **exp.space.options)
    data = load_data(exp.data, exp.seed)
    return train_supernet(space, exp.supernet.ofa_config(exp.seed), data, run_dir,
                          resume=not restart, max_steps=max_steps, progress=progress,
                          space_options=exp.space.options, runtime=runtime,
                          num_workers=exp.data.loader_options(runtime.device.type == "cuda")["num_workers"])
