"""Rank and error metrics used to report predictor quality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from predictors.errors import PredictorError

__all__ = ["kendall_tau", "spearman", "mae", "mape", "evaluate_predictor", "split_half_reliability"]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=float).ravel()
    b = np.asarray(y_pred, dtype=float).ravel()
    if a.shape != b.shape:
        raise PredictorError(f"y_true has {a.size} values but y_pred has {b.size}")
    return a, b


def _nan_last(b: np.ndarray) -> np.ndarray:
    """Non-finite predictions become worse than every finite one (ties among themselves)."""
    finite = np.isfinite(b)
    if finite.all():
        return b
    floor = b[finite].min() - 1.0 if finite.any() else 0.0
    return np.where(finite, b, floor)


def kendall_tau(y_true: Any, y_pred: Any) -> float:
    """Kendall's tau-b; NaN predictions rank last; 0.0 when either side is constant."""
    a, b = _pair(y_true, y_pred)
    b = _nan_last(b)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.kendalltau(a, b).statistic)


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman's rho; 0.0 when either side is constant."""
    a, b = _pair(y_true, y_pred)
    b = _nan_last(b)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.spearmanr(a, b).statistic)


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error (in percent) against ``y_true``."""
    a, b = _pair(y_true, y_pred)
    if np.any(a == 0):
        raise PredictorError("MAPE is undefined when a true value is 0")
    return float(np.mean(np.abs(a - b) / np.abs(a)) * 100.0)


def evaluate_predictor(predictor: Any, archs: Sequence[Any], y: Any) -> dict[str, float]:
    """Quality of a fitted predictor on held-out archs.

    Args:
        predictor: anything with ``predict(archs)`` returning means, or ``(mean, std)``.
        archs: held-out architectures.
        y: their true values.

    Returns:
        ``{"kendall_tau", "spearman", "mae"}``.
    """
    out = predictor.predict(list(archs))
    mean = out[0] if isinstance(out, tuple) else out
    return {"kendall_tau": kendall_tau(y, mean), "spearman": spearman(y, mean), "mae": mae(y, mean)}


def split_half_reliability(half_a: Any, half_b: Any) -> dict[str, float]:
    """How well one noisy measurement of a set of archs can be ranked at all.

    ``half_a`` and ``half_b`` are two independent measurements of the same archs,
    each with half the budget of the full measurement (e.g. accuracy on two disjoint
    halves of the held-out images, each after its own BN-calibration draw). Their
    Pearson correlation ``r`` is the reliability of one half; the Spearman-Brown
    formula ``2r / (1 + r)`` extrapolates it to the full measurement (both halves
    pooled). Under a bivariate normal model, Kendall's tau is ``2/pi * asin(corr)``:
    the tau between two independent full measurements (test-retest) follows from
    the full reliability, and the tau of a perfect predictor (the noise-free value)
    against one full measurement from its square root. No predictor can be expected
    to beat that ``tau_ceiling`` on this ground truth.

    Returns:
        ``{"tau_halves", "r_halves", "r_full", "tau_retest", "tau_ceiling"}``.
    """
    a, b = _pair(half_a, half_b)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        raise PredictorError("split_half_reliability needs >= 3 archs with varying values")
    r = float(np.corrcoef(a, b)[0, 1])
    r_full = max(0.0, 2 * r / (1 + r)) if r > -1 else 0.0
    return {"tau_halves": kendall_tau(a, b), "r_halves": r, "r_full": r_full,
            "tau_retest": float(2 / np.pi * np.arcsin(r_full)),
            "tau_ceiling": float(2 / np.pi * np.arcsin(np.sqrt(r_full)))}
