"""Numeric-decision and complexity features of ArchFeaturizer, and the reliability ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from predictors import (
    AccuracyPredictor,
    ArchFeaturizer,
    PredictorError,
    evaluate_predictor,
    free_statistics,
    get_predictor,
    kendall_tau,
    split_half_reliability,
)


def test_numeric_features_scale_each_reached_decision_and_zero_the_rest(ofa_space, ofa_archs):
    plain = ArchFeaturizer(ofa_space)
    rich = ArchFeaturizer(ofa_space, encoding="onehot+numeric", complexity=True)
    table = ofa_space.decision_table
    numeric = [s for s, ch in enumerate(table.choices) if all(isinstance(c, int) for c in ch)]
    assert rich.size == plain.size + len(numeric) + 2
    x = rich.transform(ofa_archs[:20])
    assert x.shape == (20, rich.size)
    np.testing.assert_array_equal(x[:, :plain.size], plain.transform(ofa_archs[:20]))
    for row, arch in zip(x, ofa_archs[:20], strict=True):
        for j, slot in enumerate(numeric):
            path = table.paths[slot]
            expected = arch[path] / max(table.choices[slot]) if path in arch else 0.0
            assert row[plain.size + j] == pytest.approx(expected), path
    stats, _ = free_statistics(ofa_space, ofa_archs[:20])
    np.testing.assert_allclose(x[:, -2:], stats, rtol=1e-5)


@pytest.mark.parametrize("encoding", ["onehot", "compact"])
def test_complexity_features_are_log_flops_and_params_of_each_arch(encoding, ofa_space, ofa_archs):
    featurizer = ArchFeaturizer(ofa_space, encoding=encoding, complexity=True, input_shape=(1, 12, 12))
    archs = [*ofa_archs[:10], *ofa_space.sample_batch(10, 7), ofa_archs[3].to_dict()]
    x = featurizer.transform(archs)
    costs = [ofa_space.complexity(a, (1, 12, 12), 10) for a in archs]
    expected = np.log1p(np.array([[c.flops, c.params] for c in costs], float)).astype(np.float32)
    np.testing.assert_array_equal(x[:, -2:], expected)
    plain = ArchFeaturizer(ofa_space, encoding=encoding, input_shape=(1, 12, 12))
    np.testing.assert_array_equal(x[:, :-2], plain.transform(archs))


def test_compact_encoding_one_hot_only_for_global_or_categorical_slots(ofa_space, ofa_archs):
    table = ofa_space.decision_table
    compact = ArchFeaturizer(ofa_space, encoding="compact")
    numeric = ArchFeaturizer(ofa_space, encoding="onehot+numeric")
    x, y = compact.transform(ofa_archs[:10]), numeric.transform(ofa_archs[:10])
    global_slots = [s for s, p in enumerate(table.paths) if p.count(".") <= 1]  # resolution, depths
    n_onehot = sum(len(table.choices[s]) for s in global_slots)
    assert compact.size == x.shape[1] == n_onehot + (numeric.size - ofa_space.encoding_size)
    assert compact.size < numeric.size / 2
    np.testing.assert_array_equal(x[:, n_onehot:], y[:, ofa_space.encoding_size:])  # same numeric part
    assert np.all(x[:, :n_onehot].sum(axis=1) == len(global_slots))  # one hot per global slot
    with pytest.raises(PredictorError, match="valid: onehot, onehot\\+numeric, compact"):
        ArchFeaturizer(ofa_space, encoding="ordinal")


@pytest.mark.parametrize("name", ["ridge", "gbdt"])
def test_feature_options_round_trip_and_help_on_a_monotone_target(name, ofa_space, ofa_archs, tmp_path):
    # accuracy-like target: grows with log FLOPs (a sum over blocks), plus noise
    stats, _ = free_statistics(ofa_space, ofa_archs)
    y = stats[:, 0] + 0.05 * np.random.default_rng(0).normal(size=len(ofa_archs))
    kw = {"n_estimators": 60, "members": 3} if name == "gbdt" else {}
    plain = get_predictor(name, ofa_space, encoding="onehot", complexity_features=False, **kw)
    rich = get_predictor(name, ofa_space, encoding="compact", complexity_features=True, **kw)
    train, test = ofa_archs[:30], ofa_archs[30:]
    tau_plain = evaluate_predictor(plain.fit(train, y[:30]), test, y[30:])["kendall_tau"]
    tau_rich = evaluate_predictor(rich.fit(train, y[:30]), test, y[30:])["kendall_tau"]
    assert tau_rich > tau_plain + 0.05, (tau_plain, tau_rich)
    loaded = AccuracyPredictor.load(rich.save(tmp_path / "m.npz"), ofa_space)
    assert loaded.featurizer.encoding == "compact" and loaded.featurizer.complexity
    np.testing.assert_allclose(loaded.predict(test)[0], rich.predict(test)[0], rtol=1e-12)


def test_split_half_reliability_recovers_the_noise_level():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=4000)
    # halves with noise variance 1 each: half reliability 1/2, full (mean of halves) 2/3
    a, b = truth + rng.normal(size=4000), truth + rng.normal(size=4000)
    rel = split_half_reliability(a, b)
    assert rel["r_halves"] == pytest.approx(0.5, abs=0.03)
    assert rel["r_full"] == pytest.approx(2 / 3, abs=0.03)
    full = (a + b) / 2
    # the ceiling is the tau of the truth itself against the full measurement
    assert rel["tau_ceiling"] == pytest.approx(kendall_tau(full, truth), abs=0.02)
    retest = (truth + rng.normal(size=4000) / np.sqrt(2))
    assert rel["tau_retest"] == pytest.approx(kendall_tau(full, retest), abs=0.03)
    with pytest.raises(PredictorError, match="varying"):
        split_half_reliability([1, 1, 1], [1, 2, 3])
