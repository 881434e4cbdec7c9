"""Engines beyond the conformance suite (test_engine_conformance.py): constraints, options,
search quality against random, exhausted spaces."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nas.errors import SearchError
from nas.search import Problem, get_engine, list_engines, run_search

sys.path.insert(0, str(Path(__file__).parent))
from _resume_child import toy_problem  # noqa: E402

OURS = ("random", "evolution", "nsga2")
FAST = [e for e in list_engines() if e != "optuna-gp"]  # GP refits per trial: tested alone


def _options(name):
    if name in ("evolution", "nsga2", "optuna-nsga2"):
        return {"population_size": 10}
    return {}


@pytest.fixture(scope="module")
def problem():
    return toy_problem()


@pytest.mark.parametrize("name", FAST)
def test_engine_respects_constraints(problem, name):
    engine = get_engine(name, problem.space, seed=0, **_options(name))
    result = run_search(problem, engine, budget=40, batch_size=8, progress=False)
    h = result.history
    assert len(h) == 40 and h["arch_key"].is_unique
    assert (~h["feasible"]).any(), "the toy constraint should reject some architectures"
    front = result.front
    assert len(front) > 0 and front["feasible"].all()
    assert (front["cost <= 3"] <= 0).all()
    for arch in result.front_archs:
        problem.space.validate(arch)


@pytest.fixture
def one_torch_thread():
    """Optuna's GP runs on torch; with threads oversubscribed it is ~20x slower here."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_optuna_gp_runs_with_constraints(problem, one_torch_thread):
    # Single objective: Optuna's multi-objective GP (EHVI) takes ~10 s per trial here.
    cost, acc = problem.objectives
    single = Problem(problem.space, [acc], ["cost <= 3"], measures=[cost])
    engine = get_engine("optuna-gp", problem.space, seed=0, n_startup_trials=4)
    result = run_search(single, engine, budget=8, batch_size=4, progress=False)
    assert len(result) == 8 and result.front["feasible"].all()
    assert len(result.front) == 1  # one objective: the best feasible architecture


def test_evolution_population_only_feasible(problem):
    engine = get_engine("evolution", problem.space, seed=1, population_size=10)
    run_search(problem, engine, budget=60, batch_size=10, progress=False)
    ev = problem.evaluate(engine.population)
    assert len(engine.population) == 10 and ev.feasible.all()


def test_unknown_engine_and_option_list_valid_ones(problem):
    with pytest.raises(SearchError, match="unknown engine 'nsga3'.*valid engines: .*nsga2"):
        get_engine("nsga3", problem.space)
    with pytest.raises(SearchError, match="no option 'pop'.*valid options: seed, population_size"):
        get_engine("nsga2", problem.space, pop=3)


def test_evolution_and_nsga2_beat_random(problem):
    ref = [10.0, -5.0]  # cost <= 10 (minimised), acc >= -5 (maximised)
    scores = {}
    for name in OURS:
        scores[name] = [
            run_search(problem, get_engine(name, problem.space, seed=s, **_options(name)),
                       budget=120, batch_size=10, progress=False).hypervolume(ref)
            for s in range(4)]
    rand = np.mean(scores["random"])
    for name in ("evolution", "nsga2"):
        assert np.mean(scores[name]) > rand * 1.05, scores


def test_state_round_trip_with_empty_population(problem):
    engine = get_engine("evolution", problem.space, seed=0, population_size=4)
    archs = engine.ask(3)
    engine.tell(archs, np.zeros((3, 2)), np.ones(3))  # all infeasible: all rejected
    assert engine.population == []
    again = get_engine("evolution", problem.space, seed=5, population_size=4)
    again.load_state_dict(engine.state_dict())
    assert [a.key for a in again.ask(3)] == [a.key for a in engine.ask(3)]


def test_mutation_rate_option(problem):
    with pytest.raises(SearchError, match="mutation_rate must lie in"):
        get_engine("nsga2", problem.space, mutation_rate=1.5)
    engine = get_engine("evolution", problem.space, seed=2, population_size=4, mutation_rate=0.5)
    assert engine.config()["mutation_rate"] == 0.5
    result = run_search(problem, engine, budget=24, batch_size=4, progress=False)
    assert result.history["arch_key"].is_unique and len(result) == 24


def test_population_engines_walk_on_until_the_space_is_exhausted():
    """27 architectures, budget 27: repeated children are mutated further instead of
    stalling in the population's exhausted neighbourhood (NSGA-II seed 1 stopped at 25
    when repeats were only re-made from fresh tournaments)."""
    from nas.objectives import CallableObjective
    from search_spaces import NUM_CLASSES, Grammar, Op, SearchSpace, Seq, Value

    conv = Op("conv_bn_act", out=4, kernel=Value([1, 3, 5]))
    space = SearchSpace(Grammar({"net": Seq(a=conv, b=conv, c=conv, head=Op("classifier", out=NUM_CLASSES))}),
                        input_shape=(3, 8, 8), num_classes=2)
    w = np.arange(9.0)
    problem = Problem(space, [CallableObjective("f", lambda a: space.encode_batch(a) @ w),
                              CallableObjective("g", lambda a: space.encode_batch(a) @ w[::-1])])
    for name in ("nsga2", "evolution"):
        for seed in range(5):
            engine = get_engine(name, space, seed=seed, population_size=4)
            assert len(run_search(problem, engine, 27, batch_size=3, progress=False)) == 27, (name, seed)
