"""Alpha history: the op weights of every edge after each epoch, saved and plotted."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from supernets.errors import SupernetError

__all__ = ["load_alpha_history", "plot_alpha_history", "save_alpha_history"]

# history: [{"epoch": int, "alphas": {cell: {edge: {op: weight}}}}, ...]


def save_alpha_history(history: list[dict[str, Any]], run_dir: str | Path) -> None:
    """Write ``alphas.json`` (nested) and ``alphas.csv`` (epoch, cell, edge, op, weight)."""
    run_dir = Path(run_dir)
    (run_dir / "alphas.json").write_text(json.dumps(history))
    with open(run_dir / "alphas.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "cell", "edge", "op", "weight"])
        for entry in history:
            for cell, edges in entry["alphas"].items():
                for edge, ops in edges.items():
                    for op, weight in ops.items():
                        writer.writerow([entry["epoch"], cell, edge, op, f"{weight:.6g}"])


def load_alpha_history(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "alphas.json"
    if not path.is_file():
        raise SupernetError(f"{run_dir}: no alphas.json (not a DARTS run directory?)")
    return json.loads(path.read_text())


def plot_alpha_history(history: list[dict[str, Any]] | str | Path, out: str | Path) -> Path:
    """PNG of how each edge's op weights evolved: one panel per (cell, edge), a line per op.

    Args:
        history: the history list, or a run directory holding ``alphas.json``.
        out: PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(history, list):
        history = load_alpha_history(history)
    if not history:
        raise SupernetError("alpha history is empty: nothing to plot")
    epochs = [h["epoch"] for h in history]
    panels = [(cell, edge) for cell, edges in history[-1]["alphas"].items() for edge in edges]
    cols = min(6, len(panels))
    rows = (len(panels) + cols - 1) // cols
    from matplotlib.ticker import MaxNLocator

    height = 2.4 * rows + 0.6  # room for the legend on top
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, height), squeeze=False, sharey=True)
    for ax, (cell, edge) in zip(axes.flat, panels, strict=False):
        for op in history[-1]["alphas"][cell][edge]:
            ax.plot(epochs, [h["alphas"][cell][edge][op] for h in history], label=op)
        ax.set_title(f"{cell}.{edge}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 7), fontsize=8)
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("softmax op weight", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
