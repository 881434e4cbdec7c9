"""The files of a DARTS run: checkpoint (CPU tensors, ``weights_only`` loads), its JSON
metadata, ``metrics.csv`` and the alpha history; rank 0 writes, every rank starts from
what rank 0 read."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from search_spaces import SearchSpace
from supernets import distributed
from supernets._darts.config import DartsConfig
from supernets._darts.history import load_alpha_history, save_alpha_history
from supernets._ofa.checkpoint import to_cpu
from supernets.errors import SupernetError

if TYPE_CHECKING:
    from supernets._darts.search import DartsSearch

__all__ = ["DERIVE_ONLY", "FORMAT", "metadata", "save_run", "start_run", "write_json",
           "write_metrics"]

FORMAT = "darts-run/1"
DERIVE_ONLY = ("derive", "tune_steps", "eval_batches")
"""Settings that only affect derivation: a finished search may be re-derived with others."""




def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def metadata(space: SearchSpace, config: DartsConfig, data, latency_weight: float,
              space_options: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"format": FORMAT, "space": space.name, "space_options": dict(space_options or {}),
            "fingerprint": space.fingerprint, "config": config.to_dict(),
            "latency_weight": float(latency_weight),
            "data": {"name": getattr(data, "name", "?"), "input_shape": list(data.input_shape),
                     "num_classes": data.num_classes}}


def resume_state(run_dir: Path, meta: dict[str, Any], search: DartsSearch
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The checkpoint's state dict, metrics and alpha history (refuses another run's)."""
    saved = json.loads((run_dir / "checkpoint.json").read_text())
    for key in ("format", "space", "fingerprint", "config", "latency_weight", "data"):
        mine, theirs = meta[key], saved.get(key)
        if key == "config" and isinstance(theirs, dict):
            mine, theirs = ({k: v for k, v in c.items() if k not in DERIVE_ONLY} for c in (mine, theirs))
        if theirs != mine:
            raise SupernetError(
                f"{run_dir}: checkpoint has a different {key!r} ({theirs!r} vs {mine!r}); "
                "use another run directory or resume=False"
            )
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    epoch = int(state["epoch"])
    history = [h for h in load_alpha_history(run_dir) if h["epoch"] <= epoch]
    return state, saved["metrics"][:epoch], history


def start_run(run_dir: Path, meta: dict[str, Any], search: DartsSearch, resume: bool
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rank 0 reads the checkpoint (or clears a stale run) and sends it to every rank."""
    payload: tuple[Any, ...] = ("ok", None, [], [{"epoch": 0, "alphas": search.net.alphas()}])
    if search.rt.is_main:
        ckpt, ckpt_meta = run_dir / "checkpoint.pt", run_dir / "checkpoint.json"
        try:
            if resume and ckpt.is_file() and ckpt_meta.is_file():
                payload = ("ok", *resume_state(run_dir, meta, search))
            else:
                for stale in ("derived.json", "checkpoint.pt", "checkpoint.json"):
                    (run_dir / stale).unlink(missing_ok=True)
        except SupernetError as exc:
            if search.rt.parallel:
                distributed.broadcast_object(("error", str(exc), None, None))
            raise
    if search.rt.parallel:
        payload = distributed.broadcast_object(payload)
    status, state, metrics, history = payload
    if status == "error":
        raise SupernetError(f"rank 0: {state}")
    if state is not None:
        search.load_state_dict(state)
    return metrics, history


def save_run(run_dir: Path, meta: dict[str, Any], search: DartsSearch,
          metrics: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    ckpt = run_dir / "checkpoint.pt"
    tmp = ckpt.with_suffix(".pt.tmp")
    torch.save(to_cpu(search.state_dict()), tmp)
    os.replace(tmp, ckpt)
    write_json(run_dir / "checkpoint.json", {**meta, "epoch": search.epoch, "metrics": metrics})
    write_metrics(run_dir / "metrics.csv", metrics)
    save_alpha_history(history, run_dir)
