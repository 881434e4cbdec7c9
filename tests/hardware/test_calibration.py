"""The whole-network calibration keeps the line only when it generalises."""

from __future__ import annotations

import numpy as np

from hardware import fit_calibration


def test_exact_line_with_offset_is_kept():
    s = np.linspace(2.0, 10.0, 8)
    cal = fit_calibration(s, 0.8 * s + 1.5)
    assert cal["model"] == "linear"
    assert abs(cal["a"] - 0.8) < 1e-9 and abs(cal["b"] - 1.5) < 1e-9 and cal["loo_error"] < 1e-9


def test_one_stalled_network_does_not_tilt_the_calibration():
    s = np.linspace(6.0, 11.0, 8)
    m = 0.94 * s
    m[-1] *= 1.25  # one whole-network timing hit by a stall
    cal = fit_calibration(s, m)
    assert cal["model"] == "ratio" and cal["b"] == 0.0 and abs(cal["a"] - 0.94) < 1e-9
    # the plain least-squares line would have been tilted by the stalled network
    design = np.stack([s / m, 1.0 / m], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
    assert abs(a - 0.94) > 0.05


def _layer_sets(rng, n):
    """Networks of 6-14 layers whose isolated latencies span 0.05-3 ms."""
    return [rng.uniform(0.05, 3.0, size=rng.integers(6, 15)) for _ in range(n)]


def test_concave_layer_model_is_found_and_predicts_held_out_networks():
    from hardware._calibration import transform_layers

    rng = np.random.default_rng(0)
    layers = _layer_sets(rng, 60)
    t_ref = 0.8
    measured = np.array([1.1 * (t_ref ** 0.4 * t ** 0.6).sum() + 0.3 for t in layers])
    measured *= rng.normal(1.0, 0.005, size=measured.size)  # timing noise
    sums = np.array([t.sum() for t in layers])
    cal = fit_calibration(sums[:16], measured[:16], layers[:16])
    assert cal["gamma"] == 0.6
    pred = cal["a"] * np.array([transform_layers(t, cal["gamma"], cal["t_ref_ms"]).sum()
                                for t in layers[16:]]) + cal["b"]
    assert np.max(np.abs(pred / measured[16:] - 1)) < 0.03
    # without layer latencies the fit is a line on plain sums, and it is worse on the same networks
    plain = fit_calibration(sums[:16], measured[:16])
    assert plain["gamma"] == 1.0 and plain["t_ref_ms"] is None
    plain_pred = plain["a"] * sums[16:] + plain["b"]
    assert np.mean(np.abs(plain_pred / measured[16:] - 1)) > 2 * np.mean(np.abs(pred / measured[16:] - 1))


def test_additive_layers_keep_the_plain_sum():
    rng = np.random.default_rng(1)
    layers = _layer_sets(rng, 12)
    sums = np.array([t.sum() for t in layers])
    cal = fit_calibration(sums, 0.9 * sums * rng.normal(1.0, 0.002, size=12), layers)
    assert cal["gamma"] == 1.0 and cal["model"] == "ratio"
