"""`fit_calibration`: the per-network correction of a latency table's layer sum.

The correction predicts a network's latency from its layers' isolated latencies
``t_i`` as ``a * sum_i t_ref ** (1 - gamma) * t_i ** gamma + b``. ``gamma = 1`` is
the plain (scaled, shifted) sum. ``gamma < 1`` is a concave per-layer correction:
measured on this 2-core VM, large layers timed alone overstate their share of a
whole network relative to small ones (the ratio measured / sum falls with the
sum, correlation -0.40 over 140 OFA MobileNetV3 subnets at 1 thread), so the plain
sum mis-ranks networks of equal sum but different layer mixes (Kendall tau 0.69
against the measured networks where gamma = 0.5 gives 0.81, with a noise ceiling
of 0.88). ``t_ref``, the median layer latency of the calibration networks, keeps
the transformed layer latencies in milliseconds. ``gamma`` is chosen from a grid by
leave-one-out error over the calibration networks, together with the ratio-or-line
choice, so a calibration with too few networks to support it stays at ``gamma = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["contrast_design", "fit_calibration", "transform_layers"]


GAMMAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)


def fit_calibration(layer_sums: Sequence[float], measured: Sequence[float],
                    layer_ms: Sequence[Sequence[float]] | None = None) -> dict[str, Any]:
    """Fit ``measured ~ a * layer_sum + b`` (see the module docstring for the model).

    With ``layer_ms`` (each calibration network's isolated layer latencies, from
    the table) the per-layer exponent ``gamma`` of the module docstring is chosen
    too: every ``gamma`` of :data:`GAMMAS` is fitted as below on the transformed sums,
    and the lowest leave-one-out error wins (``gamma = 1`` on ties).

    Two models compete: the ratio ``a = median(m / s), b = 0`` and the linear fit by
    least squares on relative residuals. The linear model is kept only when its
    leave-one-out relative error is lower than the ratio's: with the handful of
    noisy whole-network timings a calibration has, a two-parameter line often
    extrapolates worse than one scale factor (measured here: 1 thread, 8 networks,
    linear a=0.77 b=1.7 ms gave 16% MAPE on 100 held-out subnets where the plain
    ratio stayed under 6%).

    Returns:
        ``{"model": "linear" | "ratio" | "none", "a", "b", "gamma", "t_ref_ms",
        "n_networks", "sum_over_measured", "loo_error"}`` where ``sum_over_measured``
        is the mean ratio of the plain sum to the measured latency (the bias the
        calibration removes).
    """
    s = np.asarray(layer_sums, dtype=float)
    m = np.asarray(measured, dtype=float)
    if s.size == 0:
        return {"model": "none", "a": 1.0, "b": 0.0, "gamma": 1.0, "t_ref_ms": None, "n_networks": 0,
                "sum_over_measured": None}
    best = _fit_sums(s, m)
    if layer_ms is not None and s.size >= 4:
        layers = [np.asarray(t, dtype=float) for t in layer_ms]
        t_ref = float(np.median(np.concatenate(layers)))
        for gamma in GAMMAS[1:]:
            sums = np.array([transform_layers(t, gamma, t_ref).sum() for t in layers])
            fit = _fit_sums(sums, m)
            if fit["loo_error"] < best["loo_error"] - 1e-12:
                best = {**fit, "gamma": gamma, "t_ref_ms": t_ref}
    loo = best["loo_error"]
    return {"gamma": 1.0, "t_ref_ms": None, **best, "loo_error": float(loo) if np.isfinite(loo) else None,
            "sum_over_measured": float(np.mean(s / m))}


def transform_layers(t: np.ndarray, gamma: float, t_ref: float | None) -> np.ndarray:
    """``t_ref ** (1 - gamma) * t ** gamma`` elementwise (identity for ``gamma = 1``)."""
    if gamma == 1.0 or t_ref is None:
        return t
    return t_ref ** (1.0 - gamma) * np.power(np.maximum(t, 0.0), gamma)


def contrast_design(sums: np.ndarray, concave: np.ndarray, n: int) -> list[int]:
    """Indices of ``n`` samples that span ``sums`` and contrast the layer mix within it.

    The samples are cut into ``ceil(n / 2)`` bins of equal count along ``sums`` (plain
    layer sums); each bin gives the two samples whose ``concave / sums`` ratio (the sums
    of :func:`transform_layers` with ``gamma < 1``) is highest and lowest, net of the
    ratio's trend with the sum (residuals of a line in log-log). This is the design of
    :meth:`hardware.LatencyTable.spanning_archs`.

    Returns:
        ``min(n, len(sums))`` distinct indices, in increasing order of ``sums``.
    """
    order = np.argsort(sums, kind="stable")
    if n >= len(order):
        return order.tolist()
    x = np.log(np.maximum(sums, 1e-12))
    y = np.log(np.maximum(concave, 1e-12)) - x
    residual = y - np.polyval(np.polyfit(x, y, 1), x) if np.ptp(x) > 0 else y
    picks: list[int] = []
    for members in np.array_split(order, (n + 1) // 2):
        ranked = members[np.argsort(residual[members], kind="stable")]
        for i in (ranked[-1], ranked[0]):
            if len(picks) < n and int(i) not in picks:
                picks.append(int(i))
    rest = [int(i) for i in order if int(i) not in picks]  # bins of one sample leave a gap
    picks += rest[: n - len(picks)]
    return sorted(picks, key=lambda i: sums[i])


def _fit_sums(s: np.ndarray, m: np.ndarray) -> dict[str, Any]:
    """Ratio or line on one set of sums, with its leave-one-out error."""
    result = {"model": "ratio", "a": float(np.median(m / s)), "b": 0.0}
    if s.size >= 3 and np.ptp(s) > 0:
        linear = _linear_fit(s, m)
        if linear is not None and _loo_error(s, m, _linear_fit) < _loo_error(s, m, _ratio_fit):
            result = {"model": "linear", "a": linear[0], "b": linear[1]}
    loo = _loo_error(s, m, _linear_fit if result["model"] == "linear" else _ratio_fit) if s.size >= 3 else np.inf
    return {**result, "n_networks": int(s.size), "loo_error": loo}


def _ratio_fit(s: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    return float(np.median(m / s)), 0.0


def _linear_fit(s: np.ndarray, m: np.ndarray) -> tuple[float, float] | None:
    """Least squares on relative residuals; None when the line is not usable."""
    if np.ptp(s) <= 0:
        return None
    design = np.stack([s / m, 1.0 / m], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
    if a > 0 and a * s.min() + b > 0:
        return float(a), float(b)
    return None


def _loo_error(s: np.ndarray, m: np.ndarray, fit) -> float:
    """Mean relative error of each network predicted by a fit on the others."""
    errors = []
    for i in range(s.size):
        keep = np.arange(s.size) != i
        params = fit(s[keep], m[keep]) if keep.sum() >= 2 else None
        if params is None:
            params = _ratio_fit(s[keep], m[keep])
        a, b = params
        errors.append(abs(a * s[i] + b - m[i]) / m[i])
    return float(np.mean(errors))
