"""Acquisition functions of the predictor-guided engine, vectorised over candidates.

Everything is in *minimisation* form on normalised objectives (the front and the
reference point already scaled so that the reference is a point worse than every
point of interest).

* :func:`expected_hv_improvement_2d`: the exact expected hypervolume improvement
  (EHVI) of candidates with two objectives of which at most one is uncertain
  (Gaussian mean and std), the other known exactly: the usual hardware-aware case,
  accuracy from a predictor and latency from a table. The improvement of a point
  ``(x, Y)`` over a staircase front is a sum over the front's steps right of ``x`` of
  ``width * max(0, step_height - Y)``, so its expectation is a sum of Gaussian
  expected improvements: closed form, ``O(candidates x front)`` numpy.
* :func:`optimistic_hv_improvement`: the hypervolume improvement of the optimistic
  point (mean - ``beta`` x std in every uncertain objective), for any number of
  objectives (exact hypervolume); used where the closed form does not apply.
* :func:`expected_improvement`: one objective.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from nas.search._pareto import hypervolume, pareto_mask

__all__ = ["expected_hv_improvement_2d", "expected_improvement", "optimistic_hv_improvement",
           "probability_below"]

_INV_SQRT_2PI = 0.3989422804014327


def _expected_shortfall(level: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``E[max(0, level - Y)]`` for ``Y ~ N(mean, std)``, elementwise (std 0: exact)."""
    safe = np.where(std > 0, std, 1.0)
    z = (level - mean) / safe
    gaussian = (level - mean) * ndtr(z) + safe * _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return np.where(std > 0, gaussian, np.maximum(level - mean, 0.0))


def expected_improvement(best: float, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Expected improvement below ``best`` of Gaussian predictions (one objective)."""
    return _expected_shortfall(np.asarray(best, float), np.asarray(mean, float), np.asarray(std, float))


def probability_below(bound: float, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``P(Y <= bound)`` for ``Y ~ N(mean, std)`` (std 0: 0 or 1)."""
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    safe = np.where(std > 0, std, 1.0)
    return np.where(std > 0, ndtr((bound - mean) / safe), (mean <= bound).astype(float))


def expected_hv_improvement_2d(front: np.ndarray, reference: np.ndarray, known: np.ndarray,
                               mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Exact EHVI of candidates ``(known[i], Y_i ~ N(mean[i], std[i]))`` over a 2-D front.

    Args:
        front: (k, 2) minimised points (any; dominated ones are dropped), column 0 the
            exactly known objective, column 1 the uncertain one.
        reference: the reference point (2,).
        known: (n,) candidates' exact first objective.
        mean, std: (n,) the Gaussian prediction of their second objective.

    Returns:
        (n,) expected hypervolume improvements (0 for a candidate beyond the reference).
    """
    ref_x, ref_y = float(reference[0]), float(reference[1])
    pts = np.asarray(front, float).reshape(-1, 2)
    pts = pts[np.all(pts < reference, axis=1)]
    if len(pts):
        pts = np.unique(pts[pareto_mask(pts)], axis=0)  # x ascending, y descending
    # steps of the staircase g(t) = best y among points with x <= t, for t in [start, end)
    starts = np.concatenate([[-np.inf], pts[:, 0]])
    ends = np.concatenate([pts[:, 0], [ref_x]])
    heights = np.concatenate([[ref_y], pts[:, 1]])
    known = np.asarray(known, float)[:, None]
    widths = np.maximum(ends[None, :] - np.maximum(starts[None, :], known), 0.0)  # (n, k+1)
    gain = _expected_shortfall(heights[None, :], np.asarray(mean, float)[:, None],
                               np.asarray(std, float)[:, None])
    return np.sum(widths * gain, axis=1)


def optimistic_hv_improvement(front: np.ndarray, reference: np.ndarray,
                              optimistic: np.ndarray) -> np.ndarray:
    """Hypervolume improvement of each optimistic candidate point over ``front``.

    Candidates dominated by the front gain 0 without a hypervolume computation; the
    others are computed exactly (a front of tens of points: milliseconds each).
    """
    pts = np.asarray(front, float)
    cand = np.asarray(optimistic, float)
    ref = np.asarray(reference, float)
    out = np.zeros(len(cand))
    if len(pts):
        pts = pts[pareto_mask(pts)]
    base = hypervolume(pts, ref) if len(pts) else 0.0
    inside = np.all(cand < ref, axis=1)
    if len(pts):
        weakly = np.all(pts[None, :, :] <= cand[:, None, :], axis=2).any(axis=1)
        inside &= ~weakly
    for i in np.flatnonzero(inside):
        out[i] = hypervolume(np.vstack([pts, cand[i:i + 1]]) if len(pts) else cand[i:i + 1], ref) - base
    return out
