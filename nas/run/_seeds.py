"""``nas search`` over several seeds, each against random search with the same budget."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.experiment import Experiment
from nas.run._commands import search_experiment
from nas.run._compare import compare_histories
from nas.search import Problem, SearchResult

__all__ = ["SeedsResult", "search_seeds"]

QUANTILES = (0.10, 0.25, 0.50)


@dataclasses.dataclass
class SeedsResult:
    """The searches of every seed, the random searches, and their comparison table."""

    results: dict[int, SearchResult]
    random: dict[int, SearchResult]
    comparison: pd.DataFrame


def _seeded(exp: Experiment, seed: int, random: bool) -> Experiment:
    search = dataclasses.replace(exp.search, engine="random", options={}) if random else exp.search
    return dataclasses.replace(exp, seed=int(seed), search=search)


def search_seeds(exp: Experiment, run_dir: str | Path, seeds: Sequence[int], resume: bool = False,
                 progress: bool | None = None,
                 make_evaluator: Callable[[Problem], Any] | None = None,
                 command: Sequence[str] | None = None) -> SeedsResult:
    """The search of ``exp`` once per seed, plus random search with the same budget per seed.

    Seed ``s`` runs in ``run_dir/seed-<s>`` (study ``<study>-seed<s>``), its random search
    in ``run_dir/random-seed-<s>``; ``run_dir/seeds.csv`` compares them (mean and std over
    seeds of the hypervolume and of the best maximised objective under the 10%, 25% and
    50% quantiles of the minimised one, over every evaluation), for two-objective
    problems with one objective of each direction.
    """
    run_dir = Path(run_dir)
    study = exp.search.study or exp.name
    results, randoms = {}, {}
    for seed in seeds:
        for random, store in ((False, results), (True, randoms)):
            if random and exp.search.engine == "random":
                continue
            label = f"random-seed-{seed}" if random else f"seed-{seed}"
            store[seed] = search_experiment(
                _seeded(exp, seed, random), run_dir / label, resume=resume, progress=progress,
                study=f"{study}-{label.replace('seed-', 'seed')}", make_evaluator=make_evaluator,
                command=command)
    if exp.search.engine == "random":
        randoms = {}
    table = _comparison(exp.search.engine, results, randoms)
    run_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(run_dir / "seeds.csv", index=False)
    return SeedsResult(results, randoms, table)


def _comparison(engine: str, results: dict[int, SearchResult],
                randoms: dict[int, SearchResult]) -> pd.DataFrame:
    first = next(iter(results.values()))
    if len(first.names) != 2 or sorted(first.directions) != ["maximize", "minimize"]:
        # one objective, or two in the same direction: compare the minimised values' hypervolume
        rows = []
        for label, runs in ((engine, results), ("random", randoms)):
            if runs:
                hv = [_hv(r, results, randoms) for r in runs.values()]
                rows.append({"engine": label, "seeds": len(hv), "hypervolume_mean": float(np.mean(hv)),
                             "hypervolume_std": float(np.std(hv))})
        return pd.DataFrame(rows)
    maximise = first.names[first.directions.index("maximize")]
    minimise = first.names[first.directions.index("minimize")]
    every = pd.concat([r.history for r in [*results.values(), *randoms.values()]])
    bounds = [float(f"{q:.4g}") for q in np.quantile(every[minimise].to_numpy(float), QUANTILES)]
    histories = {engine: [r.history for r in results.values()]}
    if randoms:
        histories["random"] = [r.history for r in randoms.values()]
    return compare_histories(histories, maximise, minimise, bounds)


def _hv(result: SearchResult, *groups: dict[int, SearchResult]) -> float:
    """Hypervolume against the worst value of each objective over every search."""
    from nas.search import hypervolume

    pool = np.vstack([r.minimized() for g in groups for r in g.values()])
    feasible = result.history["feasible"].to_numpy(bool)
    return hypervolume(result.minimized()[feasible], pool.max(axis=0) + 1e-12)
