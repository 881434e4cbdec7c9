"""Bayesian optimisation and evolution through Optuna's own samplers (TPE, GP, NSGA-II).

The architecture is suggested define-by-run with :meth:`SearchSpace.suggest`, so
conditional decisions (e.g. the blocks of a deeper stage) are conditional Optuna
parameters. Constraints go through Optuna's constraint support: each trial gets
``trial.set_constraint(name, value)`` before it is told, which TPE, GP and NSGA-II
read (feasibility-aware acquisition / constraint-domination).

Unlike our engines these samplers keep their state in the study itself: the
engines set ``records_trials`` and use the search loop's hooks, :meth:`bind` to
attach the sampler to the study and :meth:`complete` to finish each trial they
opened.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna

from nas.errors import SearchError
from nas.search._base import SearchEngine, register_engine
from nas.storage import Record, StudySession
from search_spaces import Architecture, SearchSpace

__all__ = ["OptunaEngine", "OptunaGP", "OptunaNSGA2", "OptunaTPE"]


class OptunaEngine(SearchEngine):
    """Base of the engines driven by an Optuna sampler (see the module docstring).

    ``ask`` opens one Optuna trial per architecture; the search loop completes each
    through :meth:`complete` (the study session writes the evaluation into it) and
    then calls ``tell``. After a kill, the trials left RUNNING are marked FAIL on resume (they were never
    scored) and the sampler, re-seeded with ``seed + finished trials``, rebuilds its
    model from the stored trials: nothing is lost or repeated, but the proposals after
    the resume differ from an uninterrupted run's.
    """

    records_trials = True

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.session: StudySession | None = None
        self._pending: list[optuna.trial.Trial] = []

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def bind(self, session: StudySession) -> None:
        """Attach the study whose trials drive the sampler, re-seeded with the number of
        trials it has finished (so a resumed search does not replay the first proposals)."""
        study = session.study
        finished = len(study.get_trials(deepcopy=False, states=(
            optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)))
        study.sampler = self.make_sampler(self.seed + finished)
        self.session = session

    def ask(self, n: int) -> list[Architecture]:
        if self.session is None:
            raise SearchError(f"engine {self.name!r} must be bound to a study session "
                              f"(engine.bind(session), as run_search does) before ask()")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._pending = [self.session.study.ask() for _ in range(n)]
            archs = [self.space.suggest(trial) for trial in self._pending]
        for arch in archs:
            self._seen.add(arch.key)
        return archs

    def complete(self, index: int, record: Record, *, repeat: bool) -> None:
        """Finish the ``index``-th trial of the last ask with its evaluation."""
        self.session.complete(self._pending[index], record, duplicate=repeat)

    def tell(self, archs, values: np.ndarray, violations: np.ndarray) -> None:
        self._pending = []


class _ModelBasedEngine(OptunaEngine):
    """An Optuna sampler that starts with ``n_startup_trials`` random trials."""

    def __init__(self, space: SearchSpace, seed: int = 0, n_startup_trials: int = 10) -> None:
        super().__init__(space, seed)
        self.n_startup_trials = int(n_startup_trials)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_startup_trials": self.n_startup_trials}

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings of Optuna
            return self._sampler(seed)

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        raise NotImplementedError


@register_engine("optuna-tpe")
class OptunaTPE(_ModelBasedEngine):
    """Optuna's TPE sampler (multivariate, grouped for conditional spaces).

    Args:
        n_startup_trials: random trials before the model is used.
    """

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                          multivariate=True, group=True,
                                          warn_independent_sampling=False)


@register_engine("optuna-gp")
class OptunaGP(_ModelBasedEngine):
    """Optuna's Gaussian-process sampler (slow per trial: refits the GP every ask).

    Args:
        n_startup_trials: random trials before the GP is used.
    """

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                         deterministic_objective=True,
                                         warn_independent_sampling=False)


@register_engine("optuna-nsga2")
class OptunaNSGA2(OptunaEngine):
    """Optuna's NSGA-II sampler (uniform crossover on the shared parameters).

    Args:
        population_size: generation size.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, population_size: int = 50) -> None:
        super().__init__(space, seed)
        self.population_size = int(population_size)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "population_size": self.population_size}

    def make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=self.population_size)
