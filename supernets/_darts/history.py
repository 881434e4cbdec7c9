"""Alpha history: the op weights of every edge after each epoch, saved and plotted."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from supernets.errors import SupernetError

__all__ = ["load_alpha_history", "save_alpha_history"]

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
