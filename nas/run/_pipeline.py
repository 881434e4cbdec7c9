"""``run_experiment``: the whole pipeline of one experiment file, OFA or DARTS.

OFA stages, each cached in the run folder under a key of its inputs (see
:mod:`nas.run._stages`): supernet -> latency table per device -> predictor ->
random baseline -> one constrained search per (device, budget) -> export -> report.
DARTS (``supernet.type: darts``): search -> derive -> standalone training -> export
-> report (:mod:`nas.run._darts`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.config import redact, to_dict
from nas.experiment import Experiment
from nas.run._context import Logger, RunContext
from nas.run._darts import DartsRunResult, darts_pipeline
from nas.run._stages import StageCache, atomic_write_text
from nas.search import Problem
from search_spaces import Architecture

__all__ = ["RunResult", "make_context", "run_experiment"]


@dataclass
class RunResult:
    """What an OFA run produced: chosen subnets per (device, budget) and the stage timings."""

    run_dir: Path
    chosen: list[dict[str, Any]]
    baseline: dict[str, Any]
    predictor_quality: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def archs(self) -> list[Architecture]:
        """The chosen subnets, in the order of :attr:`chosen`."""
        return [Architecture.from_json(item["arch"]) for item in self.chosen]


def make_context(exp: Experiment, run_dir: str | Path, progress: bool | None = None,
                 echo: bool = True, make_evaluator: Callable[[Problem], Any] | None = None,
                 command: Sequence[str] | None = None) -> RunContext:
    """Create the run folder (with ``config.yaml`` and ``manifest.json``), load the data
    and the space, and log the set-up line."""
    from nas.manifest import write_manifest
    from nas.run._commands import make_runtime
    from search_spaces import get_space
    from supernets.data import load_data

    # this process runs every stage itself; only the supernet stage goes data-parallel
    # (compute.processes > 1), in processes of its own
    runtime = make_runtime(exp, data_parallel=False)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(redact(to_dict(exp)), sort_keys=False))
    write_manifest(run_dir, exp, command,
                   compute={**runtime.describe(), "processes": exp.compute.processes})
    log = Logger(run_dir / "run.log", echo)
    data = load_data(exp.data, exp.seed)
    space = get_space(exp.space.name, **exp.space.options)
    log(f"[setup] space {space.name} ({space.size():.3g} archs), data {data.name} "
        f"{len(data.train)}/{len(data.val)}/{len(data.test)}, input {data.input_shape}")
    return RunContext(exp, run_dir, StageCache(run_dir, log), log, progress, data, space,
                      make_evaluator, runtime)


def run_experiment(exp: Experiment, run_dir: str | Path, progress: bool | None = None,
                   echo: bool = True, make_evaluator: Callable[[Problem], Any] | None = None,
                   restart: bool = False, command: Sequence[str] | None = None
                   ) -> RunResult | DartsRunResult:
    """Run (or continue) an experiment in ``run_dir``; finished stages are reused.

    Args:
        exp: the validated experiment (``nas.experiment.load_experiment(path, "run")``).
        run_dir: output folder (created); re-running with the same folder skips every
            stage whose inputs did not change and continues an interrupted one.
        progress: progress bars (default: on a terminal).
        echo: print the one-line stage summaries (always written to ``run.log``).
        make_evaluator: builds the batch evaluator of each search from its problem (see
            ``run_search(evaluator=...)``; e.g. ``nas.sweep.RayEvaluator``); one with a
            ``close()`` method is closed when its search ends. Default: in this process.
        restart: DARTS only: start the search over instead of resuming its checkpoint.
        command: the command line recorded in ``manifest.json`` (default ``sys.argv``).

    Returns:
        A :class:`RunResult` (OFA) or a :class:`~nas.run.DartsRunResult` (DARTS).
    """
    from nas.storage import lock_run_folder

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    with lock_run_folder(run_dir):  # one owner per run folder; a second run is one line
        ctx = make_context(exp, run_dir, progress, echo, make_evaluator, command)
        if exp.supernet.type == "darts":
            return darts_pipeline(ctx, restart)
        return _ofa_pipeline(ctx)


def _ofa_pipeline(ctx: RunContext) -> RunResult:
    from nas.run._ofa import baseline_stage, predictor_stage, supernet_stage, table_stages
    from nas.run._report import RunReport, write_report
    from nas.run._searches import export_stage, search_stages
    from supernets import OFASupernet

    OFASupernet.check_space(ctx.space, ctx.data.num_classes, ctx.shape)  # at the data's shape
    supernet = supernet_stage(ctx)
    tables = table_stages(ctx)
    predictor = predictor_stage(ctx, supernet, tables)
    baseline = baseline_stage(ctx, supernet, tables, [t.key for t in tables.values()])
    chosen = search_stages(ctx, supernet, tables, predictor)
    chosen = export_stage(ctx, supernet, chosen)
    write_report(RunReport(ctx.exp, ctx.run_dir, ctx.space.name, float(ctx.space.size()),
                           ctx.data.name, ctx.shape, chosen, baseline, predictor.quality))
    ctx.log(f"[done] {len(chosen)} subnets in {ctx.run_dir}; report: {ctx.run_dir / 'report.md'}")
    return RunResult(ctx.run_dir, chosen, baseline, predictor.quality, dict(ctx.cache.timings))
