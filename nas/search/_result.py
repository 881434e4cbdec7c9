"""The outcome of a search: history, Pareto front, hypervolume, exports and plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nas.errors import SearchError
from nas.search._pareto import hypervolume, pareto_mask
from nas.storage import StoredStudy, read_study
from search_spaces import Architecture

if TYPE_CHECKING:
    from nas.search._problem import Problem
    from nas.storage import StudySession

__all__ = ["EvaluatedArch", "SearchResult", "load_result"]

# History columns that are neither objectives, constraints nor measures.
_KEYS = ("trial", "batch", "index", "arch_key", "arch")
_STATUS = ("violation", "feasible", "on_front")


@dataclass(frozen=True)
class EvaluatedArch:
    """An evaluated architecture with its raw objective and measure values.

    ``evaluated["accuracy"]`` reads one value.

    Attributes:
        arch: the architecture.
        values: raw value of each objective and measure, by name (read-only).
        feasible: whether it meets every constraint.
        trial: its trial number in the study.
    """

    arch: Architecture
    values: Mapping[str, float]
    feasible: bool
    trial: int

    def __getitem__(self, name: str) -> float:
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"no value {name!r}; values: {', '.join(self.values)}") from None


def _history_frame(stored: StoredStudy) -> pd.DataFrame:
    """One row per evaluation: keys, objectives, constraints, measures, violation, feasible
    (built column by column from the stored rows: no architecture is parsed)."""
    columns = stored.columns()
    frame = pd.DataFrame(columns)
    frame = frame.astype({"trial": "int64", "batch": "int64", "index": "int64",
                          **{c: "float64" for c in columns if c not in _KEYS}})
    frame["feasible"] = frame["violation"] <= 0
    return frame


class SearchResult:
    """Every evaluation of a search, in order, with the front and hypervolume.

    Args:
        history: one row per evaluated architecture: ``trial``, ``batch``, ``index``,
            ``arch_key``, ``arch`` (JSON), one column per objective (raw values), one per
            constraint (Optuna-style value, ``<= 0`` feasible), one per measure,
            ``violation``, ``feasible``. :meth:`archs`, :meth:`evaluated` and
            :meth:`best` turn rows back into :class:`Architecture` values.
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
    def from_stored(cls, stored: StoredStudy) -> SearchResult:
        """The result of a stored study (see :func:`nas.storage.read_study`)."""
        history = _history_frame(stored)
        return cls(history, stored.names, stored.directions, stored.constraints,
                   stored.study_name, stored.storage, stored.provenance)

    @classmethod
    def from_session(cls, problem: Problem, session: StudySession) -> SearchResult:
        """The result of ``problem``'s search so far in ``session``."""
        stored = session.stored()
        if list(stored.names) != problem.names:
            raise SearchError(f"the session's objectives {list(stored.names)} are not the "
                              f"problem's {problem.names}")
        return cls.from_stored(stored)

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
        """The architectures of :attr:`front`, in its order."""
        return self.archs(self.front)

    def archs(self, frame: pd.DataFrame | None = None) -> list[Architecture]:
        """The architectures of ``frame``'s rows (default: the whole history), in order.

        ``frame`` is any selection of :attr:`history` or :attr:`front` rows, e.g.
        ``result.archs(result.history.nsmallest(5, "latency_ms"))``.
        """
        frame = self.history if frame is None else frame
        if "arch" not in frame.columns:
            raise SearchError(f"frame has no 'arch' column; columns: {', '.join(frame.columns)}")
        return [Architecture.from_json(text) for text in frame["arch"]]

    @property
    def measures(self) -> list[str]:
        """Names of the measures (quantities evaluated only for constraints)."""
        known = {*_KEYS, *self.names, *self.constraints, *_STATUS}
        return [c for c in self.history.columns if c not in known]

    def evaluated(self, frame: pd.DataFrame | None = None) -> list[EvaluatedArch]:
        """Each row of ``frame`` (default: the whole history) as an :class:`EvaluatedArch`."""
        frame = self.history if frame is None else frame
        columns = [*self.names, *self.measures]
        return [EvaluatedArch(arch, MappingProxyType({c: float(row[c]) for c in columns}),
                              bool(row["feasible"]), int(row["trial"]))
                for arch, (_, row) in zip(self.archs(frame), frame.iterrows(), strict=True)]

    def best(self, objective: str | None = None) -> EvaluatedArch:
        """The feasible architecture with the best value of ``objective`` (its direction).

        Args:
            objective: an objective's name; may be omitted when there is only one.

        Raises:
            SearchError: an unknown objective, none named among several, or no
                feasible architecture.
        """
        if objective is None:
            if len(self.names) != 1:
                raise SearchError(f"name the objective to pick the best by; objectives: "
                                  f"{', '.join(self.names)}")
            objective = self.names[0]
        if objective not in self.names:
            raise SearchError(f"no objective {objective!r}; objectives: {', '.join(self.names)}")
        front = self.front  # the best feasible value of any objective is on the front
        if front.empty:
            raise SearchError(f"no feasible architecture among the {len(self)} evaluated")
        column = front[objective]
        pick = column.idxmin() if self.directions[self.names.index(objective)] == "minimize" \
            else column.idxmax()
        return self.evaluated(front.loc[[pick]])[0]

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
        """Pareto-front PNG (:func:`nas.plots.plot_search`): every evaluation, the front,
        the constraint bounds.

        ``x``/``y`` choose two objectives (default: the objective to minimise on x and the
        one to maximise on y, else the first two; with one objective the value is plotted
        against the evaluation index).
        """
        from nas.plots import plot_search

        for name in (x, y):
            if name is not None and name not in self.names:
                raise SearchError(f"cannot plot {name!r}; objectives: {', '.join(self.names)}")
        front = int(self.history["on_front"].sum())
        return plot_search(path, self.history, self.names, self.directions, self.constraints,
                           title or f"{self.study_name}: {len(self)} evaluated, {front} on the front",
                           x, y)


def load_result(study_name: str, storage: str) -> SearchResult:
    """Open a stored search study and return its history, front and metadata.

    Raises:
        StorageError: the storage cannot be opened or holds no study of that name
            (the message lists the studies it holds).
    """
    return SearchResult.from_stored(read_study(study_name, storage))
