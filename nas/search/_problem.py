"""A search problem: a space, objectives with directions, and constraints."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import SearchError
from nas.objectives import Objective
from search_spaces import Architecture, SearchSpace

__all__ = ["Constraint", "Evaluation", "Problem"]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_CONSTRAINT = re.compile(rf"^\s*([A-Za-z_][\w.]*)\s*(<=|>=)\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class Constraint:
    """``name <= bound`` or ``name >= bound`` on an objective or measure of the problem.

    The constraint *value* stored with each trial follows Optuna's convention: it is
    ``value - bound`` for ``<=`` (``bound - value`` for ``>=``), and the trial is
    feasible when it is ``<= 0``.
    """

    name: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise SearchError(f"constraint {self.name!r}: operator must be '<=' or '>=', got {self.op!r}")
        if not np.isfinite(self.bound):
            raise SearchError(f"constraint {self.name!r}: bound must be finite, got {self.bound}")

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``"latency_ms <= 15"`` or ``"params <= 2e6"`` (a regex, never ``eval``)."""
        match = _CONSTRAINT.match(str(text))
        if not match:
            raise SearchError(f"constraint {text!r} must look like 'NAME <= NUMBER' or "
                              f"'NAME >= NUMBER', e.g. 'latency_ms <= 15'")
        name, op, bound = match.groups()
        return cls(name, op, float(bound))

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"

    def values(self, x: np.ndarray) -> np.ndarray:
        """Optuna-style constraint values (<= 0 feasible)."""
        return x - self.bound if self.op == "<=" else self.bound - x

    def violation(self, x: np.ndarray) -> np.ndarray:
        """Non-negative violation relative to the bound's magnitude (so units can mix)."""
        return np.maximum(self.values(x), 0.0) / max(abs(self.bound), 1e-12)


@dataclass(frozen=True)
class Evaluation:
    """Results of one batch: raw objective values, constraint values and total violation."""

    values: np.ndarray        # (n, m) raw, in each objective's own direction
    constraints: np.ndarray   # (n, c) Optuna-style constraint values (<= 0 feasible)
    violation: np.ndarray     # (n,) sum of relative violations, 0 when feasible

    @property
    def feasible(self) -> np.ndarray:
        return self.violation <= 0


class Problem:
    """Space + objectives (with directions) + constraints.

    Args:
        space: the search space.
        objectives: what to optimise, each with its own direction.
        constraints: :class:`Constraint` objects or strings such as ``"latency_ms <= 15"``;
            each names an objective or a measure.
        measures: extra objectives evaluated only because constraints use them
            (e.g. ``params`` when optimising accuracy and latency).

    Engines see the minimisation form: maximised objectives are negated
    (:meth:`to_minimization`).
    """

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective],
                 constraints: Sequence[Constraint | str] = (),
                 measures: Sequence[Objective] = ()) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.measures = list(measures)
        if not self.objectives:
            raise SearchError("a problem needs at least one objective")
        names = [o.name for o in self.objectives + self.measures]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SearchError(f"objective/measure names must be unique, repeated: {dup}")
        self.constraints = [c if isinstance(c, Constraint) else Constraint.parse(c)
                            for c in constraints]
        for c in self.constraints:
            if c.name not in names:
                raise SearchError(f"constraint '{c}' names unknown quantity {c.name!r}; "
                                  f"objectives and measures are: {', '.join(names)}")
        self._by_name = {o.name: o for o in self.objectives + self.measures}
        self.signs = np.array([1.0 if o.direction == "minimize" else -1.0
                               for o in self.objectives])

    def __repr__(self) -> str:
        objs = ", ".join(f"{o.name} ({o.direction})" for o in self.objectives)
        cons = "; ".join(map(str, self.constraints))
        return f"Problem({self.space.name}: {objs}" + (f" s.t. {cons})" if cons else ")")

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def evaluate(self, archs: Sequence[Architecture]) -> Evaluation:
        """Evaluate a batch: each objective and measure is called once on the whole batch."""
        archs = list(archs)
        computed = {o.name: o(archs) for o in self.objectives}
        for c in self.constraints:
            if c.name not in computed:
                computed[c.name] = self._by_name[c.name](archs)
        n = len(archs)
        values = np.stack([computed[o.name] for o in self.objectives], axis=1) if n else \
            np.zeros((0, len(self.objectives)))
        cons = np.zeros((n, len(self.constraints)))
        violation = np.zeros(n)
        for j, c in enumerate(self.constraints):
            cons[:, j] = c.values(computed[c.name])
            violation += c.violation(computed[c.name])
        return Evaluation(values, cons, violation)

    def to_minimization(self, values: np.ndarray) -> np.ndarray:
        """Raw objective values -> all-minimised form used by engines and hypervolume."""
        return np.asarray(values, dtype=float) * self.signs

    def metadata(self) -> dict[str, Any]:
        """Provenance stored with a study: space, objectives (with their sources), constraints."""
        return {
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint,
            "objectives": [o.metadata for o in self.objectives],
            "measures": [o.metadata for o in self.measures],
            "constraints": [str(c) for c in self.constraints],
        }
