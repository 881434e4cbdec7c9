"""Pareto dominance, non-dominated sorting, crowding distance and hypervolume.

Every function works in *minimisation* form: a problem negates the objectives it
maximises before calling them (see :meth:`nas.search.Problem.to_minimization`).
Everything is vectorised with numpy over the (n, m) objective matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "crowding_distance",
    "dominates",
    "hypervolume",
    "non_dominated_sort",
    "pareto_mask",
]


def _matrix(values: np.ndarray | Sequence) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"objective values must be an (n, m) matrix, got shape {arr.shape}")
    return arr


def dominates(values: np.ndarray, violations: np.ndarray | None = None) -> np.ndarray:
    """The (n, n) boolean matrix ``D[i, j]``: candidate i constraint-dominates j.

    With ``violations`` (total constraint violation, 0 when feasible) the rule of
    Deb et al. (NSGA-II) applies: a feasible candidate dominates an infeasible one;
    of two infeasible ones the smaller violation dominates; of two feasible ones
    the usual Pareto dominance (no worse everywhere, better somewhere).
    """
    f = _matrix(values)
    le = np.ones((len(f), len(f)), dtype=bool)
    lt = np.zeros((len(f), len(f)), dtype=bool)
    for column in f.T:  # one (n, n) comparison per objective: no (n, n, m) temporaries
        le &= column[:, None] <= column[None, :]
        lt |= column[:, None] < column[None, :]
    dom = le & lt
    if violations is None:
        return dom
    v = np.asarray(violations, dtype=float)
    feasible = v <= 0
    both = feasible[:, None] & feasible[None, :]
    infeasible_pair = ~feasible[:, None] & ~feasible[None, :]
    return np.where(
        both, dom,
        np.where(infeasible_pair, v[:, None] < v[None, :], feasible[:, None] & ~feasible[None, :]),
    )


def non_dominated_sort(values: np.ndarray, violations: np.ndarray | None = None,
                       stop_after: int | None = None) -> np.ndarray:
    """Front index of each candidate (0 = non-dominated), by peeling fronts.

    Args:
        values: (n, m) minimised objective values.
        violations: total constraint violations (constraint-domination), optional.
        stop_after: stop peeling once this many candidates are ranked; the rest all
            get the next rank (NSGA-II survival needs no more).

    Returns:
        int array of shape (n,).
    """
    f = _matrix(values)
    n = len(f)
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    dom = dominates(f, violations)
    dominated_by = dom.sum(axis=0)  # how many candidates dominate each one
    front = np.flatnonzero(dominated_by == 0)
    rank = 0
    done = 0
    while front.size:
        ranks[front] = rank
        done += front.size
        if stop_after is not None and done >= stop_after:
            ranks[ranks < 0] = rank + 1
            break
        dominated_by = dominated_by - dom[front].sum(axis=0)
        dominated_by[ranks >= 0] = -1
        front = np.flatnonzero(dominated_by == 0)
        rank += 1
    return ranks


def pareto_mask(values: np.ndarray, violations: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the feasible, non-dominated candidates (duplicates all kept).

    Infeasible candidates are never on the front, even when nothing is feasible.
    Scales to large histories: candidates are visited in lexicographic order (no
    later one can dominate an earlier one) and compared with the front so far only,
    O(n x front size) time and O(front size) memory.
    """
    f = _matrix(values)
    mask = np.zeros(len(f), dtype=bool)
    if len(f) == 0:
        return mask
    feasible = np.ones(len(f), bool) if violations is None else np.asarray(violations) <= 0
    idx = np.flatnonzero(feasible)
    if idx.size == 0:
        return mask
    sub = f[idx]
    if sub.shape[1] == 2:  # sweep: unique points sorted by (x, y); strict new minimum of y
        points, inverse = np.unique(sub, axis=0, return_inverse=True)
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(points[:-1, 1])])
        mask[idx] = (points[:, 1] < best_before)[inverse.reshape(-1)]
        return mask
    order = np.lexsort(sub.T[::-1])
    front = np.empty_like(sub)
    size = 0
    for i in order:
        point = sub[i]
        if size:
            head = front[:size]
            if np.any(np.all(head <= point, axis=1) & np.any(head < point, axis=1)):
                continue
        front[size] = point
        size += 1
        mask[idx[i]] = True
    return mask


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each candidate within one front (inf at the edges)."""
    f = _matrix(values)
    n, m = f.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(f[:, k], kind="stable")
        col = f[order, k]
        span = col[-1] - col[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (col[2:] - col[:-2]) / span
    return distance


def _hv2d(points: np.ndarray, ref: np.ndarray) -> float:
    order = np.argsort(points[:, 0], kind="stable")
    pts = points[order]
    best_y = np.minimum.accumulate(pts[:, 1])
    # Each x-step contributes (next_x - x) * (ref_y - best y so far).
    xs = np.append(pts[:, 0], ref[0])
    return float(np.sum((xs[1:] - xs[:-1]) * (ref[1] - best_y)))


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    if points.shape[1] == 2:
        return _hv2d(points, ref)
    # Slice along the last objective: between consecutive levels the dominated
    # region is the (m-1)-D hypervolume of the points at or below that level.
    order = np.argsort(points[:, -1], kind="stable")
    pts = points[order]
    levels = np.append(pts[:, -1], ref[-1])
    total = 0.0
    for i in range(len(pts)):
        height = levels[i + 1] - levels[i]
        if height > 0:
            total += height * _hv(pts[: i + 1, :-1], ref[:-1])
    return total


def hypervolume(values: np.ndarray, reference: Sequence[float]) -> float:
    """Exact hypervolume dominated by ``values`` and bounded by ``reference`` (minimisation).

    Points not strictly better than the reference in every objective contribute
    nothing. Exact for any number of objectives: a sweep for 2-D, slicing along the
    last objective above that (O(n^2 log n) for 3-D; fine for fronts of hundreds).

    Args:
        values: (n, m) objective values, all minimised.
        reference: m numbers, a point worse than every point of interest.
    """
    f = _matrix(values)
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (f.shape[1],):
        raise ValueError(f"reference point needs {f.shape[1]} coordinates, got {ref.tolist()}")
    f = f[np.all(f < ref, axis=1)]
    if len(f) == 0:
        return 0.0
    return _hv(f[pareto_mask(f)], ref)
