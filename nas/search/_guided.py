"""A predictor-guided engine for expensive objectives: many cheap candidates, few real evaluations.

Each ``ask`` (after an initial random design) refits an accuracy predictor of the
``predictors`` package (mean and uncertainty) on every evaluation so far, one per
*expensive* objective, generates a few thousand candidates cheaply (batch mutations
and crossovers of the current front, plus uniform samples), drops those already
proposed and, when the engine knows the problem, those that break a constraint on a
*cheap* quantity (latency from a table, params, FLOPs), scores the rest and returns
the ``n`` with the best acquisition, chosen greedily: after each pick its predicted
point joins the front ("kriging believer"), so a batch spreads along the front.

The acquisition is the expected hypervolume improvement (exact, closed form) when
there are two objectives and at most one is expensive, the usual accuracy x table
latency problem; the hypervolume improvement of the optimistic point (mean - std) with
more uncertain objectives; expected improvement with one objective. A constraint on an
expensive objective multiplies it by the probability of feasibility. BANANAS (ensemble
predictor + acquisition over mutations of the best) and local search are the anchors
on NAS-Bench-201; this is their multi-objective, constrained form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.errors import SearchError
from nas.search._acquisition import (
    expected_hv_improvement_2d,
    expected_improvement,
    optimistic_hv_improvement,
    probability_below,
)
from nas.search._base import SearchEngine, register_engine
from nas.search._pareto import non_dominated_sort, pareto_mask
from nas.search._problem import Problem
from search_spaces import Architecture, SearchSpace

__all__ = ["PredictorGuided", "guided_defaults"]

#: Objective types the engine treats as cheap by default (looked up, not trained).
_CHEAP_TYPES = ("TableLatency", "Params", "Flops")


def guided_defaults(budget: int | None) -> dict[str, float]:
    """The budget-derived settings of :class:`PredictorGuided` (see its docstring)."""
    budget = 300 if budget is None else int(budget)
    return {"initial": int(np.clip(round(0.1 * budget), 10, 30)),
            "explore_until": int(round(0.4 * budget)),
            "exploit_after": int(round(0.85 * budget))}


@register_engine("guided")
class PredictorGuided(SearchEngine):
    """Predictor-guided search for expensive objectives (module docstring: how it works).

    Budget-aware defaults (``budget`` is the number of evaluations the search may
    spend; ``None``: 300): an initial random design of ``clip(0.1 x budget, 10, 30)``
    evaluations; then while fewer than ``0.4 x budget`` are evaluated, half of the
    candidates are uniform samples (exploration), afterwards 10%; after ``0.85 x budget``
    the acquisition uses the predicted mean alone (exploitation). These fractions were
    chosen on NAS-Bench-201 problems with devices and seeds other than those
    ``bench/search_quality.py`` reports (docs/decisions/guided-search.md).

    Args:
        space: the search space.
        seed: seed of the engine's generator (and of each predictor fit).
        budget: evaluations the search will spend (sets the defaults above).
        problem: the problem searched; with it the engine evaluates cheap objectives
            and constraints on candidates itself (infeasible ones are never proposed)
            and models only the expensive objectives. Without it every objective is
            modelled and constraints are only seen through the reported violations.
        cheap: names of the cheap objectives and measures (default: those of type
            ``TableLatency``, ``Params`` or ``Flops``); needs ``problem``.
        predictor: name of a registered accuracy predictor (``predictors.list_predictors()``).
        predictor_options: keyword arguments of that predictor (default for ``"gp"``:
            ``{"restarts": 0}``, it is refitted at every ask).
        candidates: candidates scored per ask.
        initial, explore_until, exploit_after: override the budget-derived defaults.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, budget: int | None = None,
                 problem: Problem | None = None, cheap: Sequence[str] | None = None,
                 predictor: str = "gp", predictor_options: dict[str, Any] | None = None,
                 candidates: int = 2000, initial: int | None = None,
                 explore_until: int | None = None, exploit_after: int | None = None) -> None:
        super().__init__(space, seed)
        if budget is not None and (int(budget) != budget or budget < 1):
            raise SearchError(f"budget must be an integer >= 1, got {budget!r}")
        if problem is not None and not isinstance(problem, Problem):
            raise SearchError(f"problem must be a nas.search.Problem, got {type(problem).__name__}")
        if int(candidates) != candidates or candidates < 10:
            raise SearchError(f"candidates must be an integer >= 10, got {candidates!r}")
        from predictors import list_predictors

        if predictor not in list_predictors():
            raise SearchError(f"unknown predictor {predictor!r}; valid: {', '.join(list_predictors())}")
        defaults = guided_defaults(budget)
        self.budget = None if budget is None else int(budget)
        self.initial = int(defaults["initial"] if initial is None else initial)
        self.explore_until = int(defaults["explore_until"] if explore_until is None else explore_until)
        self.exploit_after = int(defaults["exploit_after"] if exploit_after is None else exploit_after)
        if predictor_options is None:  # refitted every ask: one optimiser run, not three
            predictor_options = {"restarts": 0} if predictor == "gp" else {}
        self.predictor, self.predictor_options = predictor, dict(predictor_options)
        self.candidates = int(candidates)
        self.problem = problem
        self._cheap = self._cheap_names(problem, cheap)
        # every evaluation told so far: architectures, minimised values, violations
        self.history: list[Architecture] = []
        self.values = np.zeros((0, 0))
        self.violations = np.zeros(0)

    @staticmethod
    def _cheap_names(problem: Problem | None, cheap: Sequence[str] | None) -> list[str]:
        if problem is None:
            if cheap:
                raise SearchError("cheap= needs problem= (the engine evaluates cheap objectives itself)")
            return []
        known = {o.name: o for o in problem.objectives + problem.measures}
        if cheap is None:
            return [n for n, o in known.items() if type(o).__name__ in _CHEAP_TYPES]
        unknown = sorted(set(cheap) - set(known))
        if unknown:
            raise SearchError(f"cheap names {unknown} are not objectives or measures of the "
                              f"problem; valid: {', '.join(known)}")
        return list(cheap)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "budget": self.budget, "cheap": self._cheap,
                "predictor": self.predictor, "predictor_options": self.predictor_options,
                "candidates": self.candidates, "initial": self.initial,
                "explore_until": self.explore_until, "exploit_after": self.exploit_after}

    # ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Architecture]:
        if len(self.history) < self.initial or not len(self.values):
            return self._pick_random(n)
        cands = self._candidates()
        if len(cands) < n:
            return cands + self._pick_random(n - len(cands))
        chosen = self._select(cands, n)
        self._seen.update(a.key for a in chosen)
        return chosen

    def tell(self, archs: Sequence[Architecture], values: np.ndarray,
             violations: np.ndarray) -> None:
        values = np.asarray(values, dtype=float).reshape(len(archs), -1)
        known = {a.key for a in self.history}
        fresh = []  # first occurrence of each architecture not told before
        for i, arch in enumerate(archs):
            if arch.key not in known:
                known.add(arch.key)
                fresh.append(i)
        if not fresh:
            return
        if self.values.size == 0:
            self.values = np.zeros((0, values.shape[1]))
        self.history += [archs[i] for i in fresh]
        self.values = np.vstack([self.values, values[fresh]])
        self.violations = np.concatenate([self.violations, np.asarray(violations, float)[fresh]])

    # state -----------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {"history": [a.to_dict() for a in self.history], "values": self.values.tolist(),
                "violations": self.violations.tolist()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.history = [Architecture(d) for d in state["history"]]
        values = np.asarray(state["values"], dtype=float)
        self.values = values.reshape(len(self.history), -1) if self.history else np.zeros((0, 0))
        self.violations = np.asarray(state["violations"], dtype=float)

    # candidates ------------------------------------------------------------------------
    def _pick_random(self, n: int) -> list[Architecture]:
        """``n`` new samples; with a problem, feasible on the cheap constraints if any is."""
        table = self.space.decision_table
        pool = (table.to_archs(table.sample_batch(max(20 * n, 200), self.rng)) if table is not None
                else [self.space.sample(self.rng) for _ in range(max(5 * n, 50))])
        pool = self._feasible(self._unseen(pool))
        picked = pool[:n]
        self._seen.update(a.key for a in picked)
        if len(picked) < n:
            picked += self._fresh_rows(lambda k: table.sample_batch(k, self.rng), n - len(picked)) \
                if table is not None else [self._fresh(lambda: self.space.sample(self.rng))
                                           for _ in range(n - len(picked))]
        return picked

    def _unseen(self, archs: Sequence[Architecture]) -> list[Architecture]:
        out, keys = [], set()
        for a in archs:
            if a.key not in self._seen and a.key not in keys:
                keys.add(a.key)
                out.append(a)
        return out

    def _cheap_values(self, archs: Sequence[Architecture]) -> dict[str, np.ndarray]:
        by_name = {o.name: o for o in self.problem.objectives + self.problem.measures}
        return {name: np.asarray(by_name[name](list(archs)), float) for name in self._cheap}

    def _feasible(self, archs: list[Architecture]) -> list[Architecture]:
        """Drop candidates that break a constraint on a cheap quantity."""
        cons = [c for c in (self.problem.constraints if self.problem else []) if c.name in self._cheap]
        if not cons or not archs:
            return archs
        values = self._cheap_values(archs)
        ok = np.ones(len(archs), bool)
        for c in cons:
            ok &= c.values(values[c.name]) <= 0
        return [a for a, keep in zip(archs, ok, strict=True) if keep]

    def _parents(self) -> np.ndarray:
        """Indices of the history the candidates vary: the first fronts, at least 10."""
        ranks = non_dominated_sort(self.values, self.violations, stop_after=10)
        return np.flatnonzero(ranks <= np.sort(ranks)[min(9, len(ranks) - 1)])

    def _candidates(self) -> list[Architecture]:
        """New, cheap-feasible candidates: variations of the best plus uniform samples."""
        explore = 0.5 if len(self.history) < self.explore_until else 0.1
        total = self.candidates
        n_random = int(round(explore * total))
        parents = self._parents()
        table = self.space.decision_table
        if table is None:
            total = min(total, 300)  # per-architecture operators: keep the ask fast
            n_random = int(round(explore * total))
            pop = [self.history[i] for i in parents]
            pick = self.rng.integers(len(pop), size=(2, total - n_random))
            archs = [self.space.mutate(pop[i], self.rng) if k % 2 else
                     self.space.mutate(self.space.crossover(pop[i], pop[j], self.rng), self.rng)
                     for k, (i, j) in enumerate(pick.T)]
            archs += [self.space.sample(self.rng) for _ in range(n_random)]
        else:
            rows = self.space.to_matrix([self.history[i] for i in parents])
            n_local = total - n_random
            first = rows[self.rng.integers(len(rows), size=n_local)]
            second = rows[self.rng.integers(len(rows), size=n_local)]
            cross = self.rng.random(n_local) < 0.3
            local = first.copy()
            if cross.any():
                local[cross] = table.crossover_batch(first[cross], second[cross], self.rng)
            steps = 1 + (self.rng.random(n_local) < 0.3)  # one or two mutations
            for k in (1, 2):
                sel = steps == k
                local[sel] = table.mutate_batch(local[sel], self.rng, n=k)
            archs = table.to_archs(np.vstack([local, table.sample_batch(n_random, self.rng)]))
        return self._feasible(self._unseen(archs))

    # scoring ---------------------------------------------------------------------------
    def _predictions(self, cands: list[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """Minimised mean and std of every objective for ``cands`` (std 0 where cheap)."""
        from predictors import get_predictor

        m = self.values.shape[1]
        mean, std = np.zeros((len(cands), m)), np.zeros((len(cands), m))
        names = self.problem.names if self.problem is not None else [None] * m
        signs = self.problem.signs if self.problem is not None else np.ones(m)
        cheap = self._cheap_values(cands) if self._cheap else {}
        for j, name in enumerate(names):
            if name in cheap:
                mean[:, j] = cheap[name] * signs[j]
                continue
            model = get_predictor(self.predictor, self.space, seed=int(self.rng.integers(2**31)),
                                  **self.predictor_options)
            model.fit(self.history, self.values[:, j])
            mean[:, j], std[:, j] = model.predict(cands)
        return mean, std

    def _feasibility(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Probability that the expensive constraints hold (cheap ones are filtered)."""
        prob = np.ones(len(mean))
        if self.problem is None:
            return prob
        names = self.problem.names
        for c in self.problem.constraints:
            if c.name in self._cheap or c.name not in names:
                continue
            j = names.index(c.name)
            raw_mean = mean[:, j] * self.problem.signs[j]  # back to the raw direction
            if c.op == "<=":
                prob *= probability_below(c.bound, raw_mean, std[:, j])
            else:
                prob *= probability_below(-c.bound, -raw_mean, std[:, j])
        return prob

    def _select(self, cands: list[Architecture], n: int) -> list[Architecture]:
        """The ``n`` candidates of best acquisition, greedily with believed outcomes."""
        mean, std = self._predictions(cands)
        if len(self.history) >= self.exploit_after:
            std = np.zeros_like(std)
        feasible = self.violations <= 0
        front = self.values[feasible]
        if len(front):
            front = front[pareto_mask(front)]
        # normalise on the evaluated points: the reference is 10% beyond the worst
        base = self.values[feasible] if feasible.any() else self.values
        low, high = base.min(axis=0), base.max(axis=0)
        scale = np.where(high > low, high - low, 1.0)
        mean, std, front = (mean - low) / scale, std / scale, (front - low) / scale
        reference = np.full(mean.shape[1], 1.1)
        pof = self._feasibility(mean * scale + low, std * scale)
        jitter = self.rng.random(len(cands)) * 1e-12  # deterministic tie-break
        chosen: list[int] = []
        for _ in range(n):
            score = self._acquisition(front, reference, mean, std) * pof + jitter
            score[chosen] = -np.inf
            best = int(np.argmax(score))
            chosen.append(best)
            front = np.vstack([front, mean[best]]) if len(front) else mean[best:best + 1]
        return [cands[i] for i in chosen]

    @staticmethod
    def _acquisition(front: np.ndarray, reference: np.ndarray, mean: np.ndarray,
                     std: np.ndarray) -> np.ndarray:
        m = mean.shape[1]
        if m == 1:
            best = front[:, 0].min() if len(front) else reference[0]
            return expected_improvement(best, mean[:, 0], std[:, 0])
        uncertain = np.flatnonzero(std.max(axis=0) > 0)
        if m == 2 and len(uncertain) <= 1:
            u = int(uncertain[0]) if len(uncertain) else 1
            k = 1 - u
            return expected_hv_improvement_2d(front[:, [k, u]], reference[[k, u]], mean[:, k],
                                              mean[:, u], std[:, u])
        return optimistic_hv_improvement(front, reference, mean - std)
