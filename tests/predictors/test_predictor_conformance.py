"""The accuracy-predictor conformance suite (predictors.testing) over every registered predictor."""

from __future__ import annotations

import numpy as np
import pytest

from predictors import PREDICTORS, RidgePredictor, get_predictor, register_predictor
from predictors.testing import PREDICTOR_CHECKS, learnable_task

# Fewer trees, members and epochs: the same code paths, a fraction of the time.
FAST = {"gbdt": {"n_estimators": 60, "members": 3},
        "mlp_ensemble": {"epochs": 100, "members": 2, "hidden": 32}, "gp": {"restarts": 0}}


def factory(name):
    return lambda space, seed: get_predictor(name, space, seed=seed, **FAST.get(name, {}))


@pytest.fixture(scope="module")
def task():
    return learnable_task()


@pytest.mark.parametrize("check", list(PREDICTOR_CHECKS))
@pytest.mark.parametrize("name", PREDICTORS.names())
def test_registered_predictor_conforms(name, check, task):
    PREDICTOR_CHECKS[check](factory(name), task)


@pytest.mark.parametrize("name", PREDICTORS.names())
def test_registered_predictor_saves_graph_features_on_numeric_decisions(name, ofa_space):
    """The conftest's reduced OFA space: compact encoding, graph and complexity features."""
    task = learnable_task(ofa_space, n_train=30, n_test=20)
    PREDICTOR_CHECKS["save_load"](lambda space, seed: get_predictor(
        name, space, seed=seed, graph_features=True, **FAST.get(name, {})), task)


class _Noisy(RidgePredictor):
    """Breaks determinism: jitters its predictions with an unseeded generator."""

    def _predict(self, x):
        mean, std = super()._predict(x)
        return mean + np.random.default_rng().normal(0, 1e-3, mean.shape), std


class _Sticky(RidgePredictor):
    """Breaks refitting: keeps its first fit."""

    def fit(self, archs, y):
        return self if getattr(self, "_fitted", False) else super().fit(archs, y)


class _Constant(RidgePredictor):
    """Learns nothing."""

    def _predict(self, x):
        return np.zeros(len(x)), np.ones(len(x))


@pytest.mark.parametrize(("cls", "check", "message"), [
    (_Noisy, "determinism", "predict different means"),
    (_Sticky, "refit", "does not predict as a fresh one"),
    (_Constant, "beats_constant", "Kendall tau 0.000 < 0.4"),
    (_Noisy, "save_load", "the loaded predictor predicts different means"),
])
def test_the_suite_catches_broken_predictors(cls, check, message, task):
    register_predictor("broken_for_test", replace=True)(cls)  # load_predictor needs the name
    try:
        with pytest.raises(AssertionError, match=message):
            PREDICTOR_CHECKS[check](lambda space, seed: cls(space, seed=seed), task)
    finally:
        PREDICTORS.remove("broken_for_test")
