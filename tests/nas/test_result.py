"""SearchResult: architectures as values (best, archs, evaluated) and the stored format read back."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.errors import SearchError
from nas.search import EvaluatedArch, Problem, get_engine, load_result, run_search
from nas.storage import read_study
from search_spaces import Architecture

sys.path.insert(0, str(Path(__file__).parent))
from _resume_child import toy_problem  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    return toy_problem()


@pytest.fixture(scope="module")
def result(problem):
    return run_search(problem, get_engine("nsga2", problem.space, seed=0, population_size=8),
                      budget=24, batch_size=8, progress=False)


def test_best_is_the_feasible_architecture_with_the_best_value(problem, result):
    feasible = result.history[result.history["feasible"]]
    for name, pick in (("acc", "idxmax"), ("cost", "idxmin")):
        best = result.best(name)
        row = feasible.loc[getattr(feasible[name], pick)()]
        assert isinstance(best, EvaluatedArch) and isinstance(best.arch, Architecture)
        assert best[name] == pytest.approx(row[name]) and best.feasible
        ev = problem.evaluate([best.arch])  # the values are the architecture's own
        np.testing.assert_allclose([best["cost"], best["acc"]], ev.values[0])
    with pytest.raises(KeyError, match="no value 'latency'; values: cost, acc"):
        best["latency"]


def test_best_needs_a_known_objective_and_a_feasible_architecture(problem, result):
    with pytest.raises(SearchError, match="name the objective.*objectives: cost, acc"):
        result.best()
    with pytest.raises(SearchError, match="no objective 'accuracy'; objectives: cost, acc"):
        result.best("accuracy")
    hopeless = Problem(problem.space, problem.objectives, ["cost <= -1e9"])
    nothing = run_search(hopeless, get_engine("random", problem.space, seed=0), budget=4,
                         batch_size=4, progress=False)
    with pytest.raises(SearchError, match="no feasible architecture among the 4 evaluated"):
        nothing.best("acc")


def test_single_objective_best_and_measures(problem):
    cost, acc = problem.objectives
    single = Problem(problem.space, [acc], ["cost <= 3"], measures=[cost])
    result = run_search(single, get_engine("random", problem.space, seed=1), budget=12,
                        batch_size=4, progress=False)
    assert result.measures == ["cost"]
    best = result.best()
    assert best["acc"] == pytest.approx(result.front["acc"].max())
    assert best["cost"] <= 3 and set(best.values) == {"acc", "cost"}


def test_archs_and_evaluated_follow_the_frames(result):
    assert result.front_archs == result.archs(result.front)
    assert [a.key for a in result.archs()] == result.history["arch_key"].tolist()
    top = result.history.nsmallest(3, "cost")
    rows = result.evaluated(top)
    assert [r.arch.key for r in rows] == top["arch_key"].tolist()
    assert [r["cost"] for r in rows] == pytest.approx(top["cost"].tolist())
    assert [r.trial for r in rows] == top["trial"].tolist()
    with pytest.raises(SearchError, match="no 'arch' column"):
        result.archs(top[["cost"]])


def test_optuna_engine_repeats_are_marked_and_not_read_back(problem, tmp_path):
    """Optuna samplers may propose an architecture again: its trial is completed with
    ``duplicate_of`` and is neither an evaluation nor counted in the budget."""
    url = f"sqlite:///{tmp_path / 'o.db'}"
    space = problem.space
    result = run_search(problem, get_engine("optuna-nsga2", space, seed=1, population_size=8),
                        budget=24, batch_size=8, storage=url, study_name="o", progress=False)
    trials = optuna.load_study(study_name="o", storage=url).get_trials(deepcopy=False)
    repeats = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert repeats, "optuna-nsga2 (seed 1) on nb201 proposes some architectures twice in 24"
    assert all(t.user_attrs["duplicate_of"] == t.user_attrs["arch_key"] for t in repeats)
    assert len(trials) - len(repeats) == len(result) == 24
    stored = read_study("o", url)
    assert [r.arch.key for r in stored.records] == result.history["arch_key"].tolist()
    assert stored.names == ("cost", "acc") and stored.constraints == ("cost <= 3",)
    loaded = load_result("o", url)
    assert loaded.storage == url and loaded.history.equals(result.history)
