from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from predictors import (
    PredictorError,
    evaluate_predictor,
    free_statistics,
    get_predictor,
    learning_curve,
    list_predictors,
    load_predictor,
)
from predictors._accuracy.gbdt import TreeArrays
from search_spaces import get_space

FAST = {"gbdt": {"n_estimators": 60, "members": 3}, "mlp_ensemble": {"epochs": 150, "members": 3},
        "gp": {"restarts": 0}, "ridge": {}}


def make(name, space, **kw):
    return get_predictor(name, space, **{**FAST.get(name, {}), **kw})


def test_registry_lists_the_four_models_and_rejects_unknown(ofa_space):
    assert {"mlp_ensemble", "gbdt", "gp", "ridge"} <= set(list_predictors())
    with pytest.raises(PredictorError, match="valid predictors: gbdt, gp, mlp_ensemble, ridge"):
        get_predictor("xgb", ofa_space)
    with pytest.raises(PredictorError, match="predictor .ridge. has no option .depth.; valid options: alphas"):
        get_predictor("ridge", ofa_space, depth=3)


def test_load_refuses_other_space_and_garbage(ofa_space, ofa_archs, synthetic_target, tmp_path):
    path = make("ridge", ofa_space).fit(ofa_archs[:20], synthetic_target[:20]).save(tmp_path / "r.npz")
    with pytest.raises(PredictorError, match="fingerprint"):
        load_predictor(path, get_space("mobilenetv3_ofa", width_mult=0.5, resolutions=[8, 16]))
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(PredictorError, match="not a predictor file"):
        load_predictor(junk, ofa_space)


def test_errors_on_bad_use(ofa_space, ofa_archs):
    p = make("ridge", ofa_space)
    with pytest.raises(PredictorError, match="not fitted"):
        p.predict(ofa_archs[:2])
    with pytest.raises(PredictorError, match="3 archs but 2 targets"):
        p.fit(ofa_archs[:3], [0.1, 0.2])
    with pytest.raises(PredictorError, match="finite"):
        p.fit(ofa_archs[:3], [0.1, np.nan, 0.2])


def test_tree_arrays_match_sklearn():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 6)), rng.normal(size=200)
    trees = [DecisionTreeRegressor(max_depth=4, random_state=i).fit(x[i::2], y[i::2]) for i in range(2)]
    forest = TreeArrays.from_sklearn(trees)
    expected = np.stack([t.predict(x) for t in trees], axis=1)
    np.testing.assert_allclose(forest.leaf_values(x), expected)


def test_graph_features_extend_the_encoding(ofa_space, ofa_archs):
    kw = {"encoding": "onehot", "complexity_features": False}
    plain = get_predictor("ridge", ofa_space, **kw).features(ofa_archs[:3])
    rich = get_predictor("ridge", ofa_space, graph_features=True, **kw).features(ofa_archs[:3])
    assert rich.shape[1] > plain.shape[1]
    np.testing.assert_array_equal(rich[:, :plain.shape[1]], plain)


def test_fbnet_pretraining_initialises_from_free_statistics(ofa_space, ofa_archs):
    stats, names = free_statistics(ofa_space, ofa_archs[:50], (1, 8, 8), 10)
    assert names == ["log_flops", "log_params"] and stats.shape == (50, 2)
    # target = FLOPs: a pretrained trunk already knows it, so 10 labels suffice
    target = stats[:, 0]
    cold = make("mlp_ensemble", ofa_space, seed=0).fit(ofa_archs[:10], target[:10])
    warm = make("mlp_ensemble", ofa_space, seed=0).pretrain(ofa_archs[:50], stats)
    warm.fit(ofa_archs[:10], target[:10])
    test_stats, _ = free_statistics(ofa_space, ofa_archs[100:], (1, 8, 8), 10)
    tau_cold = evaluate_predictor(cold, ofa_archs[100:], test_stats[:, 0])["kendall_tau"]
    tau_warm = evaluate_predictor(warm, ofa_archs[100:], test_stats[:, 0])["kendall_tau"]
    assert tau_warm > tau_cold + 0.05, (tau_cold, tau_warm)


def test_free_statistics_takes_a_duck_typed_latency_model(ofa_space, ofa_archs):
    class Table:
        def predict(self, archs):
            return np.arange(1, len(archs) + 1, dtype=float)

    stats, names = free_statistics(ofa_space, ofa_archs[:4], latency=Table(), input_shape=(1, 8, 8),
                                   num_classes=10)
    assert names[-1] == "log_latency_ms"
    np.testing.assert_allclose(stats[:, 2], np.log([1, 2, 3, 4]))


def test_learning_curve_rows(ofa_space, ofa_archs, synthetic_target):
    rows = learning_curve({"ridge": lambda seed: make("ridge", ofa_space, seed=seed)},
                          ofa_archs, synthetic_target, sizes=(10, 40, 500), repeats=2)
    assert {r["n_train"] for r in rows} == {10, 40}  # 500 exceeds the pool and is skipped
    assert len(rows) == 4 and all(set(r) >= {"kendall_tau", "spearman", "mae"} for r in rows)
    tau = {n: np.mean([r["kendall_tau"] for r in rows if r["n_train"] == n]) for n in (10, 40)}
    assert tau[40] > tau[10]
    json.dumps(rows)
