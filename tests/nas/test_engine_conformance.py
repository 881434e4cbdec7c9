"""The engine conformance suite (nas.testing) over every registered engine."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from nas.search import ENGINES, SearchEngine, get_engine
from nas.testing import ENGINE_CHECKS, check_ask, check_determinism, check_engine, toy_problem
from search_spaces import get_space

# Small settings so the checks' 16-evaluation searches reach each engine's main loop.
SMALL = {"population_size": 8, "n_startup_trials": 4, "initial": 4, "candidates": 200}
# Optuna's GP refits a GP per trial (seconds each here): in the default suite it stays in
# its random start-up phase; test_optuna_gp_conforms_with_its_model runs the model.
# The guided engine refits its model every ask: ridge keeps the suite fast (its GP default
# runs in tests/nas/test_guided.py).
DEFAULT_SUITE = {"optuna-gp": {"n_startup_trials": 16}, "guided": {"predictor": "ridge"}}


def factory(name, **override):
    params = inspect.signature(ENGINES.get(name)).parameters
    options = {k: v for k, v in SMALL.items() if k in params}
    options.update(DEFAULT_SUITE.get(name, {}), **override)
    return lambda space, seed: get_engine(name, space, seed=seed, **options)


@pytest.fixture(scope="module")
def problem():
    return toy_problem()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Optuna's GP runs on torch; with threads oversubscribed it is ~20x slower here."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("check", list(ENGINE_CHECKS))
@pytest.mark.parametrize("name", ENGINES.names())
def test_registered_engine_conforms(name, check, problem):
    ENGINE_CHECKS[check](factory(name), problem)


@pytest.mark.parametrize("name", ENGINES.names())
def test_registered_engine_conforms_on_a_recursive_space(name):
    """einspace_lite has no decision table: the per-architecture path."""
    space = get_space("einspace_lite")
    assert space.decision_table is None
    problem = toy_problem(space)
    for check in (check_ask, check_determinism):
        check(factory(name, **({"population_size": 4} if name in ("evolution", "nsga2") else {})),
              problem)


@pytest.mark.slow
def test_optuna_gp_conforms_with_its_model():
    check_engine(factory("optuna-gp", n_startup_trials=4), toy_problem(objectives=1))


class _Sampler(SearchEngine):
    """A user's own engine, not registered: plain samples from its seeded generator."""

    name = "users_sampler"

    def ask(self, n):
        return [self.space.sample(self.rng) for _ in range(n)]

    def tell(self, archs, values, violations):
        pass


def test_a_users_engine_runs_the_whole_suite_in_one_call(problem):
    check_engine(lambda space, seed: _Sampler(space, seed=seed), problem)


class _Forgetful:
    """Engines breaking one rule each: the suite must say which."""

    @staticmethod
    def short(space, seed):
        engine = get_engine("random", space, seed=seed)
        ask = engine.ask
        engine.ask = lambda n: ask(n)[:-1]
        return engine

    @staticmethod
    def unseeded(space, seed):
        import random

        return get_engine("random", space, seed=random.randrange(10**6))

    @staticmethod
    def forgets_rng(space, seed):
        engine = get_engine("nsga2", space, seed=seed, population_size=8)
        load = engine.load_state_dict

        def load_without_rng(state):
            load(state)
            engine.rng = np.random.default_rng(12345)

        engine.load_state_dict = load_without_rng
        return engine


@pytest.mark.parametrize(("make", "check", "message"), [
    (_Forgetful.short, "ask", "must return a list of 4 architectures"),
    (_Forgetful.unseeded, "determinism", "proposed different architectures"),
    (_Forgetful.forgets_rng, "state_dict", "did not continue the same proposals"),
    (_Forgetful.forgets_rng, "resume", "did not replay an uninterrupted search"),
])
def test_the_suite_catches_broken_engines(make, check, message, problem):
    with pytest.raises(AssertionError, match=message):
        ENGINE_CHECKS[check](make, problem)
