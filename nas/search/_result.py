"""The outcome of a search: history, Pareto front, hypervolume, exports and plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.errors import SearchError
from nas.search._pareto import hypervolume, pareto_mask
from search_spaces import Architecture

__all__ = ["SearchResult"]


class SearchResult:
    """Every evaluation of a search, in order, with the front and hypervolume.

    Args:
        history: one row per evaluated architecture: ``arch_key``, ``arch`` (JSON),
            ``batch``, ``index``, one column per objective (raw values), one per
            constraint (Optuna-style value, ``<= 0`` feasible), ``violation``,
            ``feasible``.
        names, directions: the objectives.
        constraints: the constraints as strings (``"latency_ms <= 15"``).
        study_name, storage: where the study lives (``storage`` is ``None`` in memory).
    """

    def __init__(self, history: pd.DataFrame, names: Sequence[str], directions: Sequence[str],
                 constraints: Sequence[str] = (), study_name: str = "",
                 storage: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.history = history.reset_index(drop=True)
        self.names, self.directions = list(names), list(directions)
        self.constraints = list(constraints)
        self.study_name, self.storage = study_name, storage
        self.metadata = dict(metadata or {})
        self.signs = np.array([1.0 if d == "minimize" else -1.0 for d in self.directions])
        mask = pareto_mask(self.minimized(), self.history["violation"].to_numpy(float))
        self.history["on_front"] = mask

    @classmethod
    def from_session(cls, problem, session) -> SearchResult:
        from nas.search._study import history_frame

        constraints = [str(c) for c in problem.constraints]
        history = history_frame(session.study, problem.names, constraints)
        return cls(history, problem.names, problem.directions, constraints,
                   session.study.study_name, None, dict(session.study.user_attrs))

    def __len__(self) -> int:
        return len(self.history)

    def __repr__(self) -> str:
        return (f"SearchResult({len(self)} evaluated, {int(self.history['feasible'].sum())} "
                f"feasible, front of {int(self.history['on_front'].sum())})")

    def minimized(self, upto: int | None = None) -> np.ndarray:
        """Objective values in minimisation form, shape (n, m)."""
        rows = self.history if upto is None else self.history.iloc[:upto]
        return rows[self.names].to_numpy(float).reshape(len(rows), -1) * self.signs

    @property
    def front(self) -> pd.DataFrame:
        """The feasible non-dominated evaluations (infeasible ones are never on it)."""
        return self.history[self.history["on_front"]].sort_values(self.names[0]).reset_index(drop=True)

    @property
    def front_archs(self) -> list[Architecture]:
        return [Architecture.from_json(text) for text in self.front["arch"]]

    def hypervolume(self, reference: Sequence[float], upto: int | None = None) -> float:
        """Hypervolume of the feasible front of the first ``upto`` evaluations.

        Args:
            reference: reference point in the objectives' *raw* units and directions
                (e.g. ``[15.0, 0.5]`` for latency_ms minimised and accuracy maximised:
                the region better than 15 ms and better than 50%).
            upto: use only the first ``upto`` evaluations (anytime curves).
        """
        ref = np.asarray(reference, dtype=float)
        if ref.shape != (len(self.names),):
            raise SearchError(f"reference point needs one value per objective {self.names}, "
                              f"got {list(reference)}")
        rows = self.history if upto is None else self.history.iloc[:upto]
        feasible = rows["feasible"].to_numpy(bool)
        return hypervolume(self.minimized(upto)[feasible], ref * self.signs)

    # exports ---------------------------------------------------------------------------
    def export(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``history.csv``, ``history.json``, ``front.csv``, ``front.json`` under ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, frame in (("history", self.history), ("front", self.front)):
            paths[f"{name}.csv"] = out / f"{name}.csv"
            frame.to_csv(paths[f"{name}.csv"], index=False)
            paths[f"{name}.json"] = out / f"{name}.json"
            frame.to_json(paths[f"{name}.json"], orient="records", indent=1)
        return paths

    def plot(self, path: str | Path, x: str | None = None, y: str | None = None,
             title: str | None = None) -> Path:
        """Pareto-front PNG: all evaluations, the front highlighted, constraint lines.

        ``x``/``y`` choose two objectives (default the first two; with one objective the
        value is plotted against the evaluation index).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = self.history
        x = x or self.names[0]
        y = y or (self.names[1] if len(self.names) > 1 else None)
        for name in (x, y):
            if name is not None and name not in h.columns:
                raise SearchError(f"cannot plot {name!r}; objectives: {', '.join(self.names)}")
        xs = h[x].to_numpy(float)
        ys = h[y].to_numpy(float) if y else np.arange(len(h), dtype=float)
        feasible, front = h["feasible"].to_numpy(bool), h["on_front"].to_numpy(bool)
        fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
        ax.scatter(xs[feasible & ~front], ys[feasible & ~front], s=8, c="0.6", label="evaluated")
        if (~feasible).any():
            ax.scatter(xs[~feasible], ys[~feasible], s=10, c="tab:red", marker="x",
                       alpha=0.5, label="infeasible")
        order = np.argsort(xs[front])
        ax.plot(xs[front][order], ys[front][order], "o-", c="tab:blue", ms=4,
                drawstyle="steps-post" if y else "default", label="Pareto front")
        for text in self.constraints:
            name, op, bound = text.split(" ")
            if name == x:
                ax.axvline(float(bound), ls="--", c="tab:red", lw=1, label=text)
            elif name == y:
                ax.axhline(float(bound), ls="--", c="tab:red", lw=1, label=text)
        ax.set_xlabel(x)
        ax.set_ylabel(y or "evaluation")
        ax.set_title(title or f"{self.study_name}: {len(h)} evaluated, {int(front.sum())} on front")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return Path(path)
