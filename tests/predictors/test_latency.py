from __future__ import annotations

import json

import numpy as np
import pytest

from predictors import (
    FewShotLatencyPredictor,
    LayerwiseLatencyPredictor,
    PredictorError,
    SyntheticDevice,
    kendall_tau,
    mape,
)


@pytest.fixture(scope="module")
def devices(ofa_space):
    refs = {f"ref{i}": SyntheticDevice(i, ofa_space, spread=1.0) for i in range(3)}
    targets = [SyntheticDevice(100 + i, ofa_space, spread=1.0, noise=0.02) for i in range(3)]
    return refs, targets


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_layerwise_predictor_learns_a_device(kind, ofa_space, ofa_archs):
    device = SyntheticDevice(7, ofa_space, noise=0.01)
    archs = ofa_archs[:120]
    y = device.measure(archs, 0)
    model = LayerwiseLatencyPredictor(ofa_space, kind=kind, epochs=300).fit(archs[:80], y[:80])
    pred = model.predict(archs[80:])
    truth = device.predict(archs[80:])
    assert mape(truth, pred) < 10.0
    assert kendall_tau(truth, pred) > 0.6
    restored = LayerwiseLatencyPredictor(ofa_space, kind=kind)
    restored.load_state_dict(json.loads(json.dumps(model.state_dict())))
    np.testing.assert_allclose(restored.predict(archs[80:90]), pred[:10], rtol=1e-9)


def test_layerwise_fit_layers_from_table_rows(ofa_space, ofa_archs):
    device = SyntheticDevice(3, ofa_space)
    specs = list({s for a in ofa_archs[:40] for s in ofa_space.layers(a, (1, 8, 8), 10)})
    ms = np.array([device.layer_ms(s) for s in specs])
    model = LayerwiseLatencyPredictor(ofa_space).fit_layers(specs, ms)
    assert mape(ms, model.predict_layers(specs)) < 25.0


def test_layerwise_rejects_bad_input(ofa_space, ofa_archs):
    with pytest.raises(PredictorError, match="valid kinds: linear, mlp"):
        LayerwiseLatencyPredictor(ofa_space, kind="tree")
    with pytest.raises(PredictorError, match="positive"):
        LayerwiseLatencyPredictor(ofa_space).fit(ofa_archs[:3], [1.0, -1.0, 2.0])


def test_few_shot_error_decreases_with_more_samples(ofa_space, ofa_archs, devices):
    refs, targets = devices
    pool, test = ofa_archs[:40], ofa_archs[40:120]
    err = {k: [] for k in (5, 20)}
    tau = {k: [] for k in (5, 20)}
    for device in targets:
        measured, truth = device.measure(pool, 0), device.predict(test)
        for k in err:
            for r in range(3):
                idx = np.random.default_rng([r, k]).choice(len(pool), k, replace=False)
                model = FewShotLatencyPredictor(refs, ofa_space).fit([pool[i] for i in idx], measured[idx])
                pred = model.predict(test)
                err[k].append(mape(truth, pred))
                tau[k].append(kendall_tau(truth, pred))
    restored = FewShotLatencyPredictor(refs, ofa_space)
    restored.load_state_dict(json.loads(json.dumps(model.state_dict())))
    np.testing.assert_allclose(restored.predict(test[:5]), pred[:5], rtol=1e-12)
    assert np.mean(err[20]) < np.mean(err[5])
    assert np.mean(tau[20]) > np.mean(tau[5])
    assert np.mean(tau[20]) > 0.85


def test_few_shot_needs_references_and_valid_measurements(ofa_space, ofa_archs, devices):
    refs, _ = devices
    with pytest.raises(PredictorError, match="at least one reference"):
        FewShotLatencyPredictor({}, ofa_space)
    with pytest.raises(PredictorError, match="one per arch"):
        FewShotLatencyPredictor(refs, ofa_space).fit(ofa_archs[:3], [1.0, 2.0])
    with pytest.raises(PredictorError, match="not fitted"):
        FewShotLatencyPredictor(refs, ofa_space).predict(ofa_archs[:2])
