"""One sweep trial: a ``nas run`` or ``nas search`` experiment in its own folder.

:func:`run_trial` is a plain function of a :class:`TrialSpec`: Ray Tune calls it
through :func:`tune_trainable`, and calling it in a loop gives the same results
sequentially. A retried or resumed trial continues where it stopped, because it
reuses its folder: ``nas run`` stages are cached in ``<trial>/.stages/`` and
searches resume from their study.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from nas.config import parse
from nas.errors import ConfigError
from nas.run._stages import atomic_write_text
from nas.sweep._config import TrialSpec

__all__ = ["ERROR_FILE", "RESULT_FILE", "run_trial", "tune_trainable"]

#: Written last in a trial folder: the trial's spec and metrics.
RESULT_FILE = "trial_result.json"
#: Written instead when the trial stopped on a user error (not retried).
ERROR_FILE = "trial_error.json"


def _evaluator_factory(spec: TrialSpec):
    if spec.evaluation_workers < 1:
        return None
    from nas.sweep._evaluator import RayEvaluator

    return lambda problem: RayEvaluator(problem, spec.evaluation_workers, num_cpus=spec.worker_cpus)


def _experiment(spec: TrialSpec):
    """The trial's experiment, validated here (its plugins are imported in this process,
    which on a cluster is a Ray worker)."""
    from nas.experiment import Experiment, validate_experiment

    try:
        return validate_experiment(parse(Experiment, spec.experiment), spec.command)
    except ConfigError as exc:
        raise ConfigError(f"trial {spec.name}: {exc}") from None


def _command(spec: TrialSpec) -> list[str]:
    return ["nas", "sweep", f"(trial {spec.name}: nas {spec.command})"]


def _run_command(spec: TrialSpec, folder: Path) -> dict[str, Any]:
    from nas.run import DartsRunResult, run_experiment

    exp = _experiment(spec)
    # A name per trial keeps study names apart when trials share one storage.
    search = exp.search if spec.storage is None else dataclasses.replace(exp.search, storage=spec.storage)
    exp = dataclasses.replace(exp, name=f"{exp.name}-{spec.name}", search=search)
    result = run_experiment(exp, folder, progress=False, echo=False,
                            make_evaluator=_evaluator_factory(spec), command=_command(spec))
    if isinstance(result, DartsRunResult):
        return {"arch_key": result.arch.key, "search_val_accuracy": result.search_val_accuracy,
                "test_accuracy": result.standalone["test_acc"], "params": result.standalone["params"],
                "report": str(folder / "report.md")}
    # Keyed by device and budget position, not the budget's value: quantile budgets come
    # from each trial's own table, and sweep.csv needs the same columns for every trial.
    chosen, position = {}, {}
    for c in result.chosen:
        i = position[c["device"]] = position.get(c["device"], -1) + 1
        chosen[f"{c['device']}.b{i}"] = {
            k: c[k] for k in ("budget_ms", "test_accuracy", "predicted_accuracy", "table_latency_ms",
                              "measured_latency_ms", "flops", "params") if c.get(k) is not None}
    accuracies = [c["test_accuracy"] for c in result.chosen]
    return {"subnets": len(result.chosen), "best_test_accuracy": max(accuracies, default=None),
            "chosen": chosen, "report": str(folder / "report.md")}


def _search_command(spec: TrialSpec, folder: Path) -> dict[str, Any]:
    from nas.run import search_experiment
    from nas.storage import storage_url

    exp = _experiment(spec)
    out = folder / "results"
    result = search_experiment(exp, out, resume=True, progress=False,
                               storage=spec.storage or storage_url(str(folder / "search.db")),
                               study=f"{exp.study}-{spec.name}",
                               make_evaluator=_evaluator_factory(spec), command=_command(spec))
    history = result.history
    feasible = history[history["feasible"]]
    metrics: dict[str, Any] = {"evaluations": len(result), "feasible": int(len(feasible)),
                               "front_size": int(len(result.front))}
    for name, direction in zip(result.names, result.directions, strict=True):
        if len(feasible):
            best = feasible[name].min() if direction == "minimize" else feasible[name].max()
            metrics[f"best_{name}"] = float(best)
    if exp.search.reference is not None:
        metrics["hypervolume"] = float(result.hypervolume(exp.search.reference))
    metrics["results"] = str(out)
    return metrics


def run_trial(spec: TrialSpec | dict[str, Any]) -> dict[str, Any]:
    """Run one trial in ``spec.trial_dir`` (continuing what an earlier attempt left).

    Returns:
        JSON-able metrics (also written to ``<trial_dir>/trial_result.json``): for a
        ``run`` trial the chosen subnet per (device, budget) with its test accuracy and
        latency (DARTS: the derived architecture and its standalone accuracy); for a
        ``search`` trial the evaluation count, front size, best feasible value per
        objective and the hypervolume when the experiment gives a reference.
    """
    if isinstance(spec, dict):
        spec = TrialSpec.from_dict(spec)
    folder = Path(spec.trial_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ERROR_FILE).unlink(missing_ok=True)
    start = time.perf_counter()
    body = _run_command if spec.command == "run" else _search_command
    metrics = {"trial": spec.name, **body(spec, folder)}
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    atomic_write_text(folder / RESULT_FILE, json.dumps(
        {"trial": spec.to_dict(), "metrics": metrics}, indent=1, default=str))
    return metrics


def tune_trainable(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable: ``config["trial"]`` is a :class:`TrialSpec` dict.

    A user error (bad option, budget no architecture meets) would fail the same way
    again, so it is recorded in ``trial_error.json`` and reported, not raised: Tune
    retries only what may pass on a second attempt (a dead worker, an unexpected error).
    """
    from ray import tune

    from nas.errors import user_errors

    spec = config["trial"]
    try:
        metrics = run_trial(spec)
    except user_errors() as exc:
        message = f"{type(exc).__name__}: {exc}"
        atomic_write_text(Path(spec["trial_dir"]) / ERROR_FILE,
                          json.dumps({"trial": spec["name"], "error": message}))
        metrics = {"trial": spec["name"], "error": message}
    tune.report(metrics)
