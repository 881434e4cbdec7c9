"""Objectives, constraints and problems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nas.errors import ObjectiveError, SearchError
from nas.objectives import (
    CallableObjective,
    Flops,
    MeasuredLatency,
    Params,
    PredictedAccuracy,
    SupernetAccuracy,
    TableLatency,
    TabularObjective,
    ZeroCostScore,
)
from nas.search import Constraint, Problem
from search_spaces import get_space, to_nb201_string


@pytest.fixture(scope="module")
def space():
    return get_space("nb201", channels=4, cells_per_stage=1, input_shape=(3, 8, 8))


@pytest.fixture(scope="module")
def archs(space):
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(6)]


def test_cache_evaluates_each_arch_once(archs):
    calls = []

    def fn(batch):
        calls.append(len(batch))
        return [len(a.key) + i for i, a in enumerate(batch)]

    obj = CallableObjective("x", fn)
    first = obj(archs[:3] + archs[:3])  # repeats in one batch evaluated once
    assert calls == [3]
    second = obj(archs[:4])
    assert calls == [3, 1]
    np.testing.assert_array_equal(first[:3], second[:3])


def test_complexity_objectives_match_space(space, archs):
    flops, params = Flops(space), Params(space)
    got = np.stack([flops(archs), params(archs)], axis=1)
    want = [[space.complexity(a).flops, space.complexity(a).params] for a in archs]
    np.testing.assert_array_equal(got, want)
    assert flops.direction == params.direction == "minimize"
    assert flops.metadata["space"] == "nb201"


class _Table:
    """Stand-in for hardware.LatencyTable: per-layer costs summed, vectorised predict."""

    metadata = {"device": "cpu-test", "fingerprint": "abc123"}

    def __init__(self, space):
        self.space = space

    def predict(self, archs):
        return np.array([0.1 * len(self.space.layers(a)) for a in archs])


class _Predictor:
    id = "toy-predictor-v1"

    def predict(self, archs):
        n = len(archs)
        return np.full(n, 0.5), np.full(n, 0.1)


def test_latency_accuracy_and_proxy_objectives(space, archs):
    table = TableLatency(_Table(space))
    np.testing.assert_allclose(table(archs), [0.1 * len(space.layers(a)) for a in archs])
    assert table.metadata["table"]["fingerprint"] == "abc123"
    assert PredictedAccuracy(_Predictor())(archs) == pytest.approx(np.full(6, 0.5))
    optimistic = PredictedAccuracy(_Predictor(), kappa=2.0)
    assert optimistic(archs) == pytest.approx(np.full(6, 0.7))
    assert optimistic.direction == "maximize"
    assert optimistic.metadata["predictor"] == "toy-predictor-v1"
    measured = MeasuredLatency(lambda b: np.arange(len(b), dtype=float))
    assert measured(archs[:2]).tolist() == [0.0, 1.0]
    assert SupernetAccuracy(lambda b: [0.9] * len(b)).direction == "maximize"
    assert ZeroCostScore(lambda b: [1.0] * len(b))(archs[:1]).tolist() == [1.0]
    with pytest.raises(ObjectiveError, match="predict"):
        TableLatency(object())


def test_objective_checks_shape_and_nan(archs):
    with pytest.raises(ObjectiveError, match="returned 1 values for 2"):
        CallableObjective("bad", lambda b: [1.0])(archs[:2])
    with pytest.raises(ObjectiveError, match="NaN"):
        CallableObjective("nan", lambda b: [float("nan")] * len(b))(archs[:2])
    with pytest.raises(ObjectiveError, match="direction"):
        CallableObjective("x", len, direction="up")


def test_tabular_objective_from_dataframe_and_csv(tmp_path, archs):
    frame = pd.DataFrame({"arch": [to_nb201_string(a) for a in archs[:5]],
                          "acc": np.linspace(0.5, 0.9, 5)})
    obj = TabularObjective(frame, "acc", direction="maximize")
    assert obj(archs[:5]) == pytest.approx(np.linspace(0.5, 0.9, 5))
    missing = to_nb201_string(archs[5])
    if missing not in set(frame["arch"]):
        with pytest.raises(ObjectiveError, match="is not in table") as err:
            obj(archs[5:])
        assert missing in str(err.value)
    path = tmp_path / "t.csv"
    pd.DataFrame({"key": [a.key for a in archs], "lat": range(6)}).to_csv(path, index=False)
    by_key = TabularObjective(path, "lat", key_column="key", key_format="key")
    assert by_key(archs).tolist() == list(range(6))
    with pytest.raises(ObjectiveError, match="no column 'nope'"):
        TabularObjective(path, "nope", key_column="key")


def test_constraint_parsing_never_evaluates():
    c = Constraint.parse("latency_ms <= 15")
    assert (c.name, c.op, c.bound) == ("latency_ms", "<=", 15.0)
    assert Constraint.parse("params<=2e6").bound == 2e6
    assert Constraint.parse("acc >= .5").values(np.array([0.4, 0.6])) == pytest.approx([0.1, -0.1])
    for bad in ("__import__('os') <= 1", "x < 3", "x <= 1 or True", "x <= y"):
        with pytest.raises(SearchError, match="must look like"):
            Constraint.parse(bad)


def test_problem_evaluates_and_validates(space, archs):
    params = Params(space)
    acc = CallableObjective("acc", lambda b: np.linspace(0, 1, len(b)), "maximize")
    bound = float(np.median(params(archs)))
    problem = Problem(space, [acc], [f"params <= {bound}"], measures=[params])
    ev = problem.evaluate(archs)
    assert ev.values.shape == (6, 1) and ev.constraints.shape == (6, 1)
    np.testing.assert_array_equal(ev.feasible, params(archs) <= bound)
    assert problem.to_minimization(ev.values)[:, 0] == pytest.approx(-ev.values[:, 0])
    with pytest.raises(SearchError, match="unknown quantity 'latency_ms'.*acc, params"):
        Problem(space, [acc], ["latency_ms <= 1"], measures=[params])
    with pytest.raises(SearchError, match="unique"):
        Problem(space, [acc, acc])
