"""The run's report: front.csv, history.csv, front.png and report.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from nas.config import redact, to_dict
from nas.experiment import Experiment
from nas.plots import plot_run_front
from nas.search import non_dominated_sort

__all__ = ["RunReport", "write_report"]


@dataclass(frozen=True)
class RunReport:
    """What the report of an OFA run shows.

    Attributes:
        exp: the experiment.
        run_dir: the run folder (files are linked relative to it).
        space_name, space_size: the search space and its number of architectures.
        data_name, input_shape: the data set and its input shape.
        chosen: one record per (device, budget): the exported subnet's figures.
        baseline: the random-subnet baseline (``n``, ``mean_test_accuracy``, ``path``).
        quality: the predictor's held-out Kendall tau, Spearman rho, error.
    """

    exp: Experiment
    run_dir: Path
    space_name: str
    space_size: float
    data_name: str
    input_shape: tuple[int, ...]
    chosen: list[dict[str, Any]]
    baseline: dict[str, Any]
    quality: dict[str, float]


def _histories(chosen: list[dict[str, Any]]) -> pd.DataFrame:
    """Every search of the run (each engine and seed), with its device, budget, engine, seed."""
    frames = []
    for item in chosen:
        runs = item.get("histories") or [{"history": item["history"], "engine": None, "seed": None}]
        for run in runs:
            frame = pd.read_csv(run["history"])
            frame.insert(0, "seed", run["seed"])
            frame.insert(0, "engine", run["engine"])
            frame.insert(0, "budget_ms", item["budget_ms"])
            frame.insert(0, "device", item["device"])
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _comparison_lines(chosen: list[dict[str, Any]]) -> list[str]:
    """The engine against random search with the same budget, mean ± std over seeds."""
    rows = [(c, r) for c in chosen for r in c.get("comparison", [])]
    if not rows:
        return []
    lines = ["## Search against random search", "",
             "Same budget of evaluations, mean ± std over seeds; hypervolume of (accuracy, "
             "latency) against one reference per device and budget.", "",
             "| device | budget (ms) | engine | seeds | hypervolume | best accuracy under the budget |",
             "|---|---|---|---|---|---|"]
    for c, r in rows:
        best = f"best_accuracy_latency_ms<={c['budget_ms']:g}"
        lines.append(f"| {c['device']} | {c['budget_ms']:g} | {r['engine']} | {r['seeds']} | "
                     f"{r['hypervolume_mean']:.4g} ± {r['hypervolume_std']:.2g} | "
                     f"{r[best + '_mean']:.4f} ± {r[best + '_std']:.4f} |")
    return [*lines, ""]


def _front(history: pd.DataFrame) -> pd.DataFrame:
    """Accuracy/latency front per device over every evaluated architecture."""
    fronts = []
    for _, group in history.groupby("device", sort=False):
        group = group.drop_duplicates("arch_key")
        points = np.stack([-group["accuracy"].to_numpy(float), group["latency_ms"].to_numpy(float)], 1)
        ranks = non_dominated_sort(points)
        fronts.append(group[np.asarray(ranks) == 0].sort_values("latency_ms"))
    return pd.concat(fronts, ignore_index=True)[["device", "arch_key", "accuracy", "latency_ms", "arch"]]


def write_report(report: RunReport) -> None:
    """Write ``history.csv``, ``front.csv``, ``front.png`` and ``report.md`` into the run folder."""
    run_dir = report.run_dir
    history = _histories(report.chosen)
    history.to_csv(run_dir / "history.csv", index=False)
    front = _front(history)
    front.to_csv(run_dir / "front.csv", index=False)
    random_frame = pd.read_csv(report.baseline["path"]) if report.baseline.get("n") else None
    plot_run_front(run_dir / "front.png", history, front, report.chosen, random_frame,
                   f"{report.exp.name}: {report.space_name}")
    _markdown(run_dir / "report.md", report, front)


def _markdown(path: Path, report: RunReport, front: pd.DataFrame) -> None:
    cfg, chosen, baseline, quality = report.exp, report.chosen, report.baseline, report.quality
    lines = [f"# {cfg.name}", "",
             f"Space `{report.space_name}` ({report.space_size:.3g} architectures), data "
             f"`{report.data_name}` (input {report.input_shape}), devices: "
             + ", ".join(f"`{d.name}` ({d.kind} {d.options})" for d in cfg.devices), ""]
    if quality:
        lines += ["## Predictor", "",
                  f"`{cfg.predictor.name}` fitted on {cfg.predictor.train_archs} supernet-evaluated subnets; "
                  "on held-out subnets: " + ", ".join(f"{k} {v:.3f}" for k, v in quality.items()), ""]
    mean_random = baseline.get("mean_test_accuracy")
    lines += ["## Chosen subnets", "",
              "| device | budget (ms) | test acc. | vs random avg | predicted acc. | latency table (ms) "
              "| latency measured (ms) | MFLOPs | params | files |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in chosen:
        delta = f"{100 * (c['test_accuracy'] - mean_random):+.1f} pts" if mean_random is not None else "n/a"
        measured = f"{c['measured_latency_ms']:.3f}" if c.get("measured_latency_ms") is not None else "n/a"
        files = ", ".join(f"[{k}]({Path(v['path']).relative_to(report.run_dir)})" for k, v in c["files"].items())
        lines.append(f"| {c['device']} | {c['budget_ms']:g} | {c['test_accuracy']:.3f} | {delta} | "
                     f"{c['predicted_accuracy']:.3f} | {c['table_latency_ms']:.3f} | {measured} | "
                     f"{c['flops'] / 1e6:.2f} | {c['params']:,} | {files} |")
    lines += ["", "Each budget's subnet is the most accurate feasible one among every evaluation of "
              "the run on its device (all budgets, seeds and engines" + (", and the random baseline"
              if cfg.search.accuracy == "predicted" else "") + "): "
              + "; ".join(f"{c['budget_ms']:g} ms: {c['found_by']}" for c in chosen if "found_by" in c), ""]
    lines += [f"- **{c['device']} <= {c['budget_ms']:g} ms**: {c['latency_note']}"
              for c in chosen if c.get("latency_note")]
    lines += _comparison_lines(chosen)
    if mean_random is not None:
        lines += ["", f"Random-architecture baseline: {baseline['n']} random subnets, mean test accuracy "
                  f"{mean_random:.3f} (supernet weights, BN recalibrated), see `random_baseline.csv`."]
    lines += ["", "Accuracies of chosen subnets are test accuracies with weights inherited from the "
              "supernet (batch-norm recalibrated); predicted accuracy is the predictor's estimate of "
              "validation accuracy used during search.", "",
              "## Files", "", "- `front.csv`, `history.csv`, `front.png`: every evaluated architecture and the "
              "accuracy/latency front per device", "- `subnets/<device>-<budget>/`: `model.pt` (state_dict + "
              "arch), `model.torchscript.pt`, `model.onnx`, `summary.json`", "- `study.db`: the Optuna study "
              "(open with `optuna-dashboard sqlite:///study.db`)", "- `run.log`: one line per stage",
              "- `manifest.json`: version, git commit, command line, resolved experiment", "",
              "Front size per device: " + ", ".join(f"{d}: {n}" for d, n in front.groupby('device').size().items()),
              "", "## Config", "", "```yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).rstrip(), "```", ""]
    path.write_text(redact("\n".join(lines)))
