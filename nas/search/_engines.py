"""Our own engines: random search, regularised (aging) evolution and NSGA-II.

NSGA-II is a vectorised numpy implementation (non-dominated sort, crowding
distance and constraint-domination in :mod:`nas.search._pareto`) rather than a
library such as pymoo: our genomes are grammar architectures varied by the
space's own ``mutate``/``crossover``, which pymoo's real/integer operators would
have to be adapted to anyway, and the selection step is ~60 lines of numpy.

On spaces with a compiled decision table (``space.decision_table``: every
non-recursive built-in space) a whole batch is proposed at once: tournaments are
array operations over the population's index matrix, and sampling, crossover and
mutation are the table's batch operations. Other spaces (recursive grammars) take
the per-architecture path with the same selection rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.errors import SearchError
from nas.search._base import SearchEngine, register_engine
from nas.search._budget import default_population
from nas.search._pareto import crowding_distance, non_dominated_sort
from search_spaces import Architecture, SearchSpace

__all__ = ["NSGA2", "RandomSearch", "RegularizedEvolution"]


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise SearchError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _budget(value: int | None) -> int | None:
    return None if value is None else _positive("budget", value)


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise SearchError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


@register_engine("random")
class RandomSearch(SearchEngine):
    """Uniform samples from the space's grammar (the baseline); repeats are avoided."""

    def ask(self, n: int) -> list[Architecture]:
        table = self.space.decision_table
        if table is not None:
            return self._fresh_rows(lambda k: table.sample_batch(k, self.rng), n)
        return [self._fresh(lambda: self.space.sample(self.rng)) for _ in range(n)]

    def tell(self, archs, values, violations) -> None:
        pass


class _PopulationEngine(SearchEngine):
    """Keeps a population of (arch, minimised values, violation) across tells."""

    crossover_prob = 0.0
    mutation_rate: float | None = None

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.population: list[Architecture] = []
        self.values = np.zeros((0, 0))
        self.violations = np.zeros(0)
        self._matrix: np.ndarray | None = None  # index rows of the population (decision table)

    def _vary(self, first: Architecture, second: Architecture | None) -> Architecture:
        child = first if second is None else self.space.crossover(first, second, self.rng)
        n = 1 if self.mutation_rate is None else 1 + int(self.rng.binomial(len(child), self.mutation_rate))
        return self.space.mutate(child, self.rng, n=n)

    def _population_matrix(self) -> np.ndarray:
        if self._matrix is None or len(self._matrix) != len(self.population):
            self._matrix = self.space.to_matrix(self.population)
        return self._matrix

    def _sample(self, n: int) -> list[Architecture]:
        table = self.space.decision_table
        if table is not None:
            return self._fresh_rows(lambda k: table.sample_batch(k, self.rng), n)
        return [self._fresh(lambda: self.space.sample(self.rng)) for _ in range(n)]

    def _offspring(self, n: int, select) -> list[Architecture]:
        """``n`` children: ``select(k)`` gives ``k`` parent indices; a second parent and
        a crossover with probability ``crossover_prob``, then one mutation (plus each
        decision with probability ``mutation_rate`` when set). A child proposed before
        is made again (20 tries), then mutated further until it is new (20 more)."""
        table = self.space.decision_table
        if table is None:
            def child() -> Architecture:
                first = self.population[int(select(1)[0])]
                second = (self.population[int(select(1)[0])]
                          if self.rng.random() < self.crossover_prob else None)
                return self._vary(first, second)

            return [self._fresh(child, again=lambda a: self._vary(a, None)) for _ in range(n)]
        pop = self._population_matrix()

        def make(k: int) -> np.ndarray:
            first = pop[select(k)]
            cross = self.rng.random(k) < self.crossover_prob
            second = pop[select(k)]
            children = first.copy()
            if cross.any():
                children[cross] = table.crossover_batch(first[cross], second[cross], self.rng)
            return table.mutate_batch(children, self.rng, rate=self.mutation_rate)

        # A child already proposed is made again from fresh tournaments; when that keeps
        # failing (the population's neighbourhood is exhausted) it is mutated once more,
        # and again, so the search walks on instead of stalling.
        return self._fresh_rows(make, n, again=lambda rows: table.mutate_batch(
            rows, self.rng, rate=self.mutation_rate))

    def _extra_state(self) -> dict[str, Any]:
        return {"population": [a.to_dict() for a in self.population], "values": self.values.tolist(),
                "violations": self.violations.tolist()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.population = [Architecture(d) for d in state["population"]]
        self._matrix = None
        values = np.asarray(state["values"], dtype=float)
        self.values = values.reshape(len(self.population), -1) if self.population else np.zeros((0, 0))
        self.violations = np.asarray(state["violations"], dtype=float)


@register_engine("evolution")
class RegularizedEvolution(_PopulationEngine):
    """Regularised (aging) evolution (Real et al. 2019) with multi-objective tournaments.

    The first ``population_size`` feasible architectures come from random sampling.
    Each child then comes from a tournament of ``sample_size`` random members
    (the winner minimises a random-weight Chebyshev scalarisation of the
    population-normalised objectives, so successive tournaments spread along the
    front; with one objective it is simply the best), optionally crossed over with a
    second winner, then mutated. A feasible child joins the population and the
    oldest member dies; an infeasible child is rejected (the population keeps only
    feasible members), so the engine resamples around feasible parents.

    The defaults (population 50, tournaments of 10) do not depend on the budget: on
    NAS-Bench-201 tuning devices the population ``clip(budget / 10, 10, 50)`` that helps
    NSGA-II made evolution worse on 11 of 16 problems at 100 and 300 evaluations
    (docs/decisions/guided-search.md).

    Args:
        population_size: members kept alive.
        sample_size: tournament size.
        crossover_prob: probability of crossing two tournament winners before mutation.
        mutation_rate: besides the one mutated decision, each reached decision also
            changes with this probability (``None``: exactly one mutation per child).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, population_size: int = 50,
                 sample_size: int = 10, crossover_prob: float = 0.3,
                 mutation_rate: float | None = None) -> None:
        super().__init__(space, seed)
        self.population_size = _positive("population_size", population_size, 2)
        self.sample_size = _positive("sample_size", sample_size)
        self.crossover_prob = _probability("crossover_prob", crossover_prob)
        self.mutation_rate = None if mutation_rate is None else _probability("mutation_rate", mutation_rate)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "population_size": self.population_size,
                "sample_size": self.sample_size, "crossover_prob": self.crossover_prob,
                "mutation_rate": self.mutation_rate}

    def _tournaments(self, scaled: np.ndarray, m: int) -> np.ndarray:
        """Winners (population indices) of ``m`` independent tournaments."""
        size = len(self.population)
        k = min(self.sample_size, size)
        idx = np.argsort(self.rng.random((m, size)), axis=1)[:, :k]  # k distinct members each
        rows = np.arange(m)
        if scaled.shape[1] == 1:
            return idx[rows, np.argmin(scaled[idx, 0], axis=1)]
        weights = self.rng.dirichlet(np.ones(scaled.shape[1]), size=m)
        score = np.max(scaled[idx] * weights[:, None, :], axis=2)
        return idx[rows, np.argmin(score, axis=1)]

    def ask(self, n: int) -> list[Architecture]:
        if len(self.population) < self.population_size:
            return self._sample(n)
        low, high = self.values.min(axis=0), self.values.max(axis=0)
        scaled = (self.values - low) / np.where(high > low, high - low, 1.0)
        return self._offspring(n, lambda m: self._tournaments(scaled, m))

    def tell(self, archs: Sequence[Architecture], values: np.ndarray,
             violations: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        keep = np.flatnonzero(np.asarray(violations) <= 0)
        if keep.size == 0:
            return
        if self.values.size == 0:
            self.values = np.zeros((0, values.shape[1]))
        matrix = (np.vstack([self._population_matrix(), self.space.to_matrix([archs[i] for i in keep])])
                  if self.space.decision_table is not None else None)
        self.population += [archs[i] for i in keep]
        self._matrix = matrix
        self.values = np.vstack([self.values, values[keep]])
        self.violations = np.zeros(len(self.population))
        excess = len(self.population) - self.population_size
        if excess > 0:  # aging: the oldest die, whatever their fitness
            self.population = self.population[excess:]
            self._matrix = None if self._matrix is None else self._matrix[excess:]
            self.values, self.violations = self.values[excess:], self.violations[excess:]


@register_engine("nsga2")
class NSGA2(_PopulationEngine):
    """NSGA-II (Deb et al. 2002) with constraint-domination, on grammar architectures.

    Parents come from binary tournaments on (front rank, crowding distance); a child
    is the space's uniform crossover of two parents (``crossover_prob``) followed by
    one mutation. After each ``tell`` the population is the best
    ``population_size`` of parents and children: fronts by constraint-dominated
    non-dominated sorting (feasible before infeasible, smaller violation first), the
    last front cut by crowding distance. Works with batches of any size; a batch
    equal to ``population_size`` is the classic generational scheme.

    Budget-aware default: with ``budget`` (the evaluations the search will spend) and no
    ``population_size``, the population is ``clip(budget / 10, 10, 50)``; without either,
    50 (:func:`nas.search.default_population`; docs/decisions/guided-search.md).

    Args:
        population_size: survivors after each selection (default: from ``budget``, else 50).
        crossover_prob: probability of crossover before mutation. The default 0.5 (not
            the textbook 0.9) was chosen on nb201 with seeds other than the bench's; with
            it and duplicate-free offspring, ours reaches 99% of nb201's exact front in a
            median 320 evaluations against Optuna NSGA-II's 460
            (the synthetic nb201 of ``bench/search_quality.py`` before issue 19;
            docs/decisions/nsga2-defaults.md).
        mutation_rate: besides the one mutated decision, each reached decision also
            changes with this probability (``None``: exactly one mutation per child).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, population_size: int | None = None,
                 crossover_prob: float = 0.5, mutation_rate: float | None = None,
                 budget: int | None = None) -> None:
        super().__init__(space, seed)
        self.budget = _budget(budget)
        if population_size is None:
            population_size = default_population(self.budget)
        self.population_size = _positive("population_size", population_size, 2)
        self.crossover_prob = _probability("crossover_prob", crossover_prob)
        self.mutation_rate = None if mutation_rate is None else _probability("mutation_rate", mutation_rate)
        self._rank = np.zeros(0, dtype=int)
        self._crowding = np.zeros(0)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "budget": self.budget, "population_size": self.population_size,
                "crossover_prob": self.crossover_prob, "mutation_rate": self.mutation_rate}

    def _binary_tournaments(self, m: int) -> np.ndarray:
        """Winners (population indices) of ``m`` binary tournaments on (rank, crowding)."""
        i, j = self.rng.integers(len(self.population), size=(2, m))
        rank, crowd = self._rank, self._crowding
        better_i = (rank[i] < rank[j]) | ((rank[i] == rank[j]) & (crowd[i] >= crowd[j]))
        return np.where(better_i, i, j)

    def ask(self, n: int) -> list[Architecture]:
        if len(self.population) < self.population_size:
            return self._sample(n)
        return self._offspring(n, self._binary_tournaments)

    def tell(self, archs: Sequence[Architecture], values: np.ndarray,
             violations: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        if self.values.size == 0:
            self.values = np.zeros((0, values.shape[1]))
        pop = self.population + list(archs)
        matrix = (np.vstack([self._population_matrix(), self.space.to_matrix(list(archs))])
                  if self.space.decision_table is not None else None)
        f = np.vstack([self.values, values])
        v = np.concatenate([self.violations, np.asarray(violations, dtype=float)])
        ranks = non_dominated_sort(f, v, stop_after=self.population_size)
        crowd = np.zeros(len(pop))
        for r in np.unique(ranks):  # the fronts that keep members (the rest are not sorted)
            if np.count_nonzero(ranks < r) >= self.population_size:
                break
            members = np.flatnonzero(ranks == r)
            crowd[members] = crowding_distance(f[members])
        # Survivors: lowest rank first, then largest crowding; stable for determinism.
        order = np.lexsort((-crowd, ranks))[: self.population_size]
        order.sort()
        self.population = [pop[i] for i in order]
        self._matrix = None if matrix is None else matrix[order]
        self.values, self.violations = f[order], v[order]
        self._rank, self._crowding = ranks[order], crowd[order]

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self._rank = np.asarray(state["rank"], dtype=int)
        self._crowding = np.asarray(state["crowding"], dtype=float)

    def _extra_state(self) -> dict[str, Any]:
        # inf crowding is not JSON: store a large finite stand-in that orders the same.
        crowd = np.where(np.isinf(self._crowding), 1e300, self._crowding)
        return {**super()._extra_state(), "rank": self._rank.tolist(), "crowding": crowd.tolist()}
