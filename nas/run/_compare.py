"""Searches over several seeds against random search with the same budget.

Shared by ``nas search`` (``search.seeds`` / ``--seeds N``) and ``nas run``: each
search's history (a ``SearchResult.history`` frame) is scored with one reference point
for all of them, so hypervolumes compare, and with the best value of the maximised
objective under each bound of the minimised one; the table gives the mean and spread
over seeds of each engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nas.search import hypervolume

__all__ = ["compare_histories", "seed_list"]


def seed_list(seed: int, seeds: Sequence[int] = (), count: int | None = None) -> list[int]:
    """The seeds of a run: ``count`` consecutive seeds from ``seed`` (``--seeds N``: seed,
    seed+1, ..., seed+N-1), else ``seeds`` (``search.seeds``), else ``[seed]``."""
    if count is not None:
        if count < 1:
            raise ValueError(f"--seeds must be >= 1, got {count}")
        return [int(seed) + i for i in range(int(count))]
    return [int(s) for s in seeds] or [int(seed)]


def compare_histories(histories: dict[str, list[pd.DataFrame]], maximise: str, minimise: str,
                      bounds: Sequence[float]) -> pd.DataFrame:
    """Per engine: mean and std over seeds of the hypervolume and of the best ``maximise``
    among feasible evaluations with ``minimise <= bound``, for each bound.

    Args:
        histories: engine label -> one history frame per seed (columns ``maximise``,
            ``minimise`` and ``feasible``).
        maximise, minimise: the two objective columns.
        bounds: bounds of ``minimise`` (e.g. latency budgets).

    The hypervolume reference is the worst ``maximise`` and the largest ``minimise``
    (or the largest bound) over every feasible evaluation of every history, so each
    engine and seed is measured against the same point.
    """
    frames = [f[f["feasible"].astype(bool)] for runs in histories.values() for f in runs]
    pool = pd.concat(frames) if frames else pd.DataFrame(columns=[maximise, minimise])
    worst = float(pool[maximise].min()) if len(pool) else 0.0
    ref = np.array([-worst, max([float(pool[minimise].max())] + list(bounds)) if len(pool) else 1.0])
    rows = []
    for label, runs in histories.items():
        hv, best = [], {b: [] for b in bounds}
        for frame in runs:
            ok = frame[frame["feasible"].astype(bool)]
            points = np.stack([-ok[maximise].to_numpy(float), ok[minimise].to_numpy(float)], 1)
            hv.append(hypervolume(points, ref) if len(points) else 0.0)
            for b in bounds:
                under = ok[ok[minimise] <= b][maximise]
                best[b].append(float(under.max()) if len(under) else np.nan)
        row = {"engine": label, "seeds": len(runs), "hypervolume_mean": float(np.mean(hv)),
               "hypervolume_std": float(np.std(hv))}
        for b in bounds:
            values = np.asarray(best[b], float)
            found = values[~np.isnan(values)]
            row[f"best_{maximise}_{minimise}<={b:g}_mean"] = float(found.mean()) if len(found) else np.nan
            row[f"best_{maximise}_{minimise}<={b:g}_std"] = float(found.std()) if len(found) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
