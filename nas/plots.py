"""Every figure hwnas draws, in one module with one style (PNG via matplotlib's Agg).

The lower packages keep the data (``hardware.ValidationReport``, the DARTS alpha
history, a predictor learning curve, a search history); the figures are drawn here so
they share their conventions:

* accuracy-vs-cost plots put the objective to maximise (accuracy) on the y axis and the
  one to minimise (latency, FLOPs) on the x axis, whichever order the objectives were
  given in; the y label says which accuracy each marker shows (predicted or test);
* legends sit below the axes and budget labels at the top of their line, so neither
  hides data; long titles wrap; files are saved with a tight bounding box, so no label
  or title is cut.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "axes_for",
    "plot_alpha_history",
    "plot_learning_curve",
    "plot_run_front",
    "plot_search",
    "plot_validation",
]

DPI = 120
GREY, FRONT, BUDGET, RANDOM = "0.65", "tab:blue", "tab:red", "tab:orange"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(ax: Any, text: str, width_in: float) -> None:
    ax.set_title(textwrap.fill(text, max(30, int(width_in * 11))), fontsize=9)


def _legend_below(ax: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
                  fontsize=7, frameon=False)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def axes_for(names: Sequence[str], directions: Sequence[str], x: str | None = None,
             y: str | None = None) -> tuple[str, str | None]:
    """The objectives on the x and y axes: the first minimised on x and the first
    maximised on y when the directions are mixed, else the first two in order (one
    objective: ``(it, None)``, plotted against the evaluation index)."""
    if x is not None or y is not None:
        others = [n for n in names if n not in (x, y)]
        x = x if x is not None else others.pop(0)
        return x, y if y is not None else (others[0] if others else None)
    if len(names) == 1:
        return names[0], None
    low = [n for n, d in zip(names, directions, strict=True) if d == "minimize"]
    high = [n for n, d in zip(names, directions, strict=True) if d == "maximize"]
    if low and high:
        return low[0], high[0]
    return names[0], names[1]


def _budget_line(ax: Any, value: float, label: str, vertical: bool = True) -> None:
    if vertical:
        ax.axvline(value, ls="--", c=BUDGET, lw=1)
        ax.text(value, 0.98, label, transform=ax.get_xaxis_transform(), rotation=90, va="top",
                ha="right", fontsize=7, color=BUDGET)
    else:
        ax.axhline(value, ls="--", c=BUDGET, lw=1)
        ax.text(0.99, value, label, transform=ax.get_yaxis_transform(), va="bottom", ha="right",
                fontsize=7, color=BUDGET)


def plot_search(path: str | Path, history: pd.DataFrame, names: Sequence[str],
                directions: Sequence[str], constraints: Sequence[str] = (), title: str = "",
                x: str | None = None, y: str | None = None) -> Path:
    """A search's evaluations: feasible and infeasible points, the Pareto front (column
    ``on_front``) and the constraint bounds of the plotted objectives."""
    return _save(_search_figure(history, names, directions, constraints, title, x, y), path)


def _search_figure(history: pd.DataFrame, names: Sequence[str], directions: Sequence[str],
                   constraints: Sequence[str], title: str, x: str | None, y: str | None) -> Any:
    x, y = axes_for(names, directions, x, y)
    plt = _pyplot()
    xs = history[x].to_numpy(float)
    ys = history[y].to_numpy(float) if y else np.arange(len(history), dtype=float)
    feasible, front = history["feasible"].to_numpy(bool), history["on_front"].to_numpy(bool)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(xs[feasible & ~front], ys[feasible & ~front], s=8, c=GREY, label="evaluated")
    if (~feasible).any():
        ax.scatter(xs[~feasible], ys[~feasible], s=10, c=BUDGET, marker="x", alpha=0.5,
                   label="infeasible")
    order = np.argsort(xs[front])
    ax.plot(xs[front][order], ys[front][order], "o-", c=FRONT, ms=4,
            drawstyle=_steps(directions, names, y) if y else "default", label="Pareto front")
    for text in constraints:
        name, _, bound = text.split(" ")
        if name in (x, y):
            _budget_line(ax, float(bound), text, vertical=name == x)
    ax.set_xlabel(x)
    ax.set_ylabel(y or "evaluation")
    ax.grid(alpha=0.3)
    _title(ax, title or f"{len(history)} evaluated, {int(front.sum())} on the front", 6)
    _legend_below(ax)
    return fig


def _steps(directions: Sequence[str], names: Sequence[str], y: str) -> str:
    """Step style of a front drawn in increasing x: up-steps after each point when y is
    maximised (a better y costs more x), down-steps before it when y is minimised."""
    return "steps-post" if dict(zip(names, directions, strict=True))[y] == "maximize" else "steps-pre"


def plot_run_front(path: str | Path, history: pd.DataFrame, front: pd.DataFrame,
                   chosen: Sequence[Mapping[str, Any]], random: pd.DataFrame | None,
                   title: str) -> Path:
    """``nas run``'s front.png: per device, every evaluated subnet (predicted accuracy vs
    table latency), the front, the budgets, random subnets and the chosen subnets (both
    at their test accuracy)."""
    return _save(_run_front_figure(history, front, chosen, random, title), path)


def _run_front_figure(history: pd.DataFrame, front: pd.DataFrame, chosen: Sequence[Mapping[str, Any]],
                      random: pd.DataFrame | None, title: str) -> Any:
    plt = _pyplot()
    devices = list(dict.fromkeys(history["device"]))
    fig, axes = plt.subplots(1, len(devices), figsize=(6 * len(devices), 4.5), squeeze=False)
    for ax, device in zip(axes[0], devices, strict=True):
        h = history[history["device"] == device]
        ax.scatter(h["latency_ms"], h["accuracy"], s=6, c=GREY, label="evaluated (predicted accuracy)")
        f = front[front["device"] == device]
        ax.plot(f["latency_ms"], f["accuracy"], "o-", c=FRONT, ms=3, drawstyle="steps-post",
                label="Pareto front (predicted accuracy)")
        column = f"latency_ms_{device}"
        if random is not None and column in random:
            ax.scatter(random[column], random["test_accuracy"], s=14, marker="^", c=RANDOM,
                       label="random subnets (test accuracy)")
        mine = [c for c in chosen if c["device"] == device]
        for item in mine:
            _budget_line(ax, item["budget_ms"], f"≤ {item['budget_ms']:g} ms")
        if mine:
            ax.scatter([c["table_latency_ms"] for c in mine], [c["test_accuracy"] for c in mine],
                       s=70, marker="*", c=BUDGET, zorder=5, label="chosen subnet (test accuracy)")
        ax.set_xlabel(f"latency on {device} (ms, latency table)")
        ax.set_ylabel("accuracy (predicted on val, or test where marked)")
        ax.grid(alpha=0.3)
        _title(ax, f"{title} on {device}", 6)
        _legend_below(ax)
    return fig


def plot_validation(path: str | Path, report: Any, title: str | None = None) -> Path:
    """Latency-table validation (a ``hardware.ValidationReport``): predicted vs measured
    latency with y = x and a ±10% band; the title gives the error and rank figures."""
    predicted_ms, measured_ms = report.predicted_ms, report.measured_ms
    title = title or (f"n={report.n}  MAPE {report.mape:.1f}%  within ±10%: "
                      f"{100 * report.within_10:.0f}%  Kendall tau {report.kendall_tau:.3f}  "
                      f"Spearman {report.spearman:.3f}")
    return _save(_validation_figure(predicted_ms, measured_ms, title), path)


def _validation_figure(predicted_ms: np.ndarray, measured_ms: np.ndarray, title: str) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    lo = float(min(predicted_ms.min(), measured_ms.min())) * 0.95
    hi = float(max(predicted_ms.max(), measured_ms.max())) * 1.05
    line = np.array([lo, hi])
    ax.fill_between(line, line * 0.9, line * 1.1, color="0.9", label="±10%")
    ax.plot(line, line, "k--", lw=1, label="y = x")
    ax.scatter(measured_ms, predicted_ms, s=12, alpha=0.8, label="architectures")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms, table)")
    ax.grid(alpha=0.3)
    _title(ax, title, 5)
    _legend_below(ax)
    return fig


def plot_alpha_history(path: str | Path, history: Sequence[Mapping[str, Any]]) -> Path:
    """DARTS: how each edge's softmax op weights evolved, a panel per (cell, edge)
    (``history``: ``supernets.load_alpha_history(run_dir)``)."""
    if not history:
        from nas.errors import NasError

        raise NasError("the alpha history is empty: nothing to plot")
    return _save(_alpha_figure(history), path)


def _alpha_figure(history: Sequence[Mapping[str, Any]]) -> Any:
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    last = history[-1]["alphas"]
    panels = [(cell, edge) for cell, edges in last.items() for edge in edges]
    cols = min(6, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, (cell, edge) in zip(axes.flat, panels, strict=False):
        for op in last[cell][edge]:
            ax.plot(epochs, [h["alphas"][cell][edge][op] for h in history], label=op)
        ax.set_title(f"{cell}.{edge}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=min(len(labels), 7), fontsize=8,
               frameon=False)
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("softmax op weight", fontsize=9)
    return fig


def plot_learning_curve(path: str | Path, rows: Sequence[Mapping[str, Any]],
                        metric: str = "kendall_tau", title: str = "") -> Path:
    """Predictor quality (mean ± std over repeats) against the number of training archs."""
    return _save(_learning_curve_figure(rows, metric, title), path)


def _learning_curve_figure(rows: Sequence[Mapping[str, Any]], metric: str, title: str) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in sorted({r["model"] for r in rows}):
        sizes = sorted({r["n_train"] for r in rows if r["model"] == model})
        values = [[r[metric] for r in rows if r["model"] == model and r["n_train"] == n] for n in sizes]
        mean = np.array([np.mean(v) for v in values])
        std = np.array([np.std(v) for v in values])
        ax.plot(sizes, mean, marker="o", label=model)
        ax.fill_between(sizes, mean - std, mean + std, alpha=0.2)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    sizes = sorted({r["n_train"] for r in rows})
    ax.set_xticks(sizes, [str(n) for n in sizes])  # the sizes measured, not powers of ten
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training architectures")
    ax.set_ylabel(f"{metric} on held-out architectures")
    ax.grid(alpha=0.3)
    _title(ax, title or f"{metric} vs training set size", 6)
    _legend_below(ax)
    return fig
