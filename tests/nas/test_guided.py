"""The predictor-guided engine, its acquisition and the budget-aware defaults."""

from __future__ import annotations

import numpy as np
import pytest

from nas.errors import SearchError
from nas.search import (
    default_batch_size,
    default_population,
    get_engine,
    hypervolume,
    make_engine,
    run_search,
)
from nas.search._acquisition import expected_hv_improvement_2d, optimistic_hv_improvement
from nas.testing import check_engine, toy_problem

FRONT = np.array([[0.1, 0.8], [0.3, 0.5], [0.6, 0.2]])
REF = np.array([1.1, 1.1])


def test_ehvi_is_the_hypervolume_improvement_when_certain():
    known = np.array([0.05, 0.2, 0.45, 0.7, 0.9])
    mean = np.array([0.9, 0.4, 0.1, 0.25, 0.05])
    ehvi = expected_hv_improvement_2d(FRONT, REF, known, mean, np.zeros(5))
    base = hypervolume(FRONT, REF)
    exact = [hypervolume(np.vstack([FRONT, [x, y]]), REF) - base for x, y in zip(known, mean)]
    np.testing.assert_allclose(ehvi, exact, atol=1e-12)
    assert ehvi[3] == 0.0  # (0.7, 0.25) is dominated by (0.6, 0.2)
    np.testing.assert_allclose(optimistic_hv_improvement(FRONT, REF, np.stack([known, mean], 1)),
                               exact, atol=1e-12)


def test_ehvi_matches_monte_carlo():
    rng = np.random.default_rng(0)
    known, mean, std = np.array([0.2, 0.5]), np.array([0.6, 0.4]), np.array([0.2, 0.3])
    ehvi = expected_hv_improvement_2d(FRONT, REF, known, mean, std)
    base = hypervolume(FRONT, REF)
    for i in range(2):
        ys = rng.normal(mean[i], std[i], size=2000)
        mc = np.mean([hypervolume(np.vstack([FRONT, [known[i], y]]), REF) - base for y in ys])
        assert ehvi[i] == pytest.approx(mc, rel=0.08)


def _guided(problem, **options):
    return lambda space, seed: get_engine("guided", space, seed=seed, problem=problem,
                                          cheap=["cost"], initial=4, candidates=200, **options)


def test_guided_conforms_with_its_problem_and_model():
    problem = toy_problem()
    check_engine(_guided(problem, predictor="ridge"), problem)


@pytest.mark.slow
def test_guided_conforms_with_its_default_gp():
    problem = toy_problem()
    check_engine(_guided(problem), problem)


def test_cheap_constraint_means_no_infeasible_evaluation():
    problem = toy_problem()
    engine = make_engine("guided", problem, seed=0, budget=40, cheap=["cost"], candidates=300)
    result = run_search(problem, engine, 40, batch_size=8, progress=False)
    assert len(result) == 40
    assert result.history["feasible"].all()
    # without the problem the engine only sees violations: some evaluations are infeasible
    blind = run_search(problem, get_engine("guided", problem.space, seed=0, initial=10,
                                                 candidates=300), 40,
                       batch_size=8, progress=False)
    assert not blind.history["feasible"].all()


def test_guided_finds_more_hypervolume_than_random_at_a_small_budget():
    problem = toy_problem()
    reference = [float(problem.constraints[0].bound), 1e6]

    def hv(name, seed, **options):
        engine = make_engine(name, problem, seed=seed, budget=40, **options)
        r = run_search(problem, engine, 40, batch_size=8, progress=False)
        f = r.minimized()[r.history["feasible"].to_numpy(bool)]
        ref = np.array([reference[0], f[:, 1].max() + 1.0]) if len(f) else np.array(reference)
        return f, ref

    wins = 0
    for seed in range(3):
        fg, _ = hv("guided", seed, cheap=["cost"])
        fr, _ = hv("random", seed)
        ref = np.array([reference[0], max(fg[:, 1].max(), fr[:, 1].max()) + 1.0])
        wins += hypervolume(fg, ref) > hypervolume(fr, ref)
    assert wins >= 2


def test_budget_aware_defaults():
    problem = toy_problem()
    assert [default_batch_size(b) for b in (20, 100, 300, 5000)] == [5, 5, 15, 50]
    assert [default_population(b) for b in (None, 100, 300, 1000)] == [50, 10, 30, 50]
    assert make_engine("nsga2", problem, budget=100).population_size == 10
    assert make_engine("evolution", problem, budget=100).population_size == 50  # measured worse
    assert make_engine("nsga2", problem, budget=300, population_size=7).population_size == 7
    assert get_engine("nsga2", problem.space).population_size == 50  # no budget: as before
    guided = make_engine("guided", problem, budget=300)
    assert (guided.initial, guided.explore_until, guided.exploit_after) == (30, 120, 255)
    assert guided.problem is problem and guided.config()["budget"] == 300
    make_engine("random", problem, budget=100)  # engines without a budget still build


@pytest.mark.parametrize(("options", "message"), [
    ({"predictor": "forest"}, "unknown predictor 'forest'; valid: "),
    ({"cheap": ["cost"]}, "cheap= needs problem="),
    ({"budget": 0}, "budget must be an integer >= 1, got 0"),
    ({"candidates": 5}, "candidates must be an integer >= 10"),
    ({"problem": "cost <= 3"}, "problem must be a nas.search.Problem"),
])
def test_bad_options_say_what_is_wrong(options, message):
    with pytest.raises(SearchError, match=message):
        get_engine("guided", toy_problem().space, **options)


def test_unknown_cheap_name_lists_the_valid_ones():
    problem = toy_problem()
    with pytest.raises(SearchError, match=r"cheap names \['latency'\].*valid: cost, acc"):
        make_engine("guided", problem, cheap=["latency"])
