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
