"""Non-dominated sort, crowding distance and hypervolume against hand-computed cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.search import crowding_distance, dominates, hypervolume, non_dominated_sort, pareto_mask


def test_non_dominated_sort_hand_case():
    # (1,5),(2,3),(4,1) are mutually non-dominated; (3,4) is dominated by (2,3);
    # (5,5) by (3,4) too, so it sits on the third front.
    f = np.array([[1, 5], [2, 3], [4, 1], [3, 4], [5, 5]])
    assert non_dominated_sort(f).tolist() == [0, 0, 0, 1, 2]
    assert pareto_mask(f).tolist() == [True, True, True, False, False]


def test_non_dominated_sort_stops_after_enough_are_ranked():
    f = np.array([[1, 5], [2, 3], [4, 1], [3, 4], [5, 5], [6, 6]])
    assert non_dominated_sort(f, stop_after=3).tolist() == [0, 0, 0, 1, 1, 1]
    assert non_dominated_sort(f, stop_after=4).tolist() == [0, 0, 0, 1, 2, 2]
    assert non_dominated_sort(f, stop_after=6).tolist() == non_dominated_sort(f).tolist()


def test_duplicates_share_a_front():
    f = np.array([[1, 1], [1, 1], [2, 2]])
    assert non_dominated_sort(f).tolist() == [0, 0, 1]


def test_constraint_domination():
    f = np.array([[1, 1], [5, 5], [0, 0], [0, 0]])
    v = np.array([0.0, 0.0, 0.5, 0.2])
    # Feasible points first (Pareto among them), then infeasible by violation.
    assert non_dominated_sort(f, v).tolist() == [0, 1, 3, 2]
    d = dominates(f, v)
    assert d[1, 3] and not d[3, 1] and d[3, 2]
    # Infeasible points are never on the front, even when they dominate in value.
    assert pareto_mask(f, v).tolist() == [True, False, False, False]
    assert not pareto_mask(f, np.ones(4)).any()


def test_crowding_distance_hand_case():
    f = np.array([[0.0, 4.0], [1.0, 2.0], [2.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(f)
    assert np.isinf(d[0]) and np.isinf(d[3])
    # Point 1: (2-0)/4 + (4-1)/4 = 1.25; point 2: (4-1)/4 + (2-0)/4 = 1.25.
    assert d[1] == pytest.approx(1.25) and d[2] == pytest.approx(1.25)


def test_hypervolume_2d_hand_case():
    f = np.array([[1, 3], [2, 2], [3, 1], [3, 3]])
    # Staircase with reference (4, 4): 1*3 + 1*2 + 1*1... = 3 + 2 + 1 = 6.
    assert hypervolume(f, [4, 4]) == pytest.approx(6.0)
    assert hypervolume(f, [1, 1]) == 0.0  # nothing better than the reference
    assert hypervolume(np.array([[0.5, 0.5]]), [1, 1]) == pytest.approx(0.25)


def test_hypervolume_3d_hand_case():
    f = np.array([[0, 0, 1], [1, 1, 0]])
    # Union of boxes [0,2]^2x[1,2] (4) and [1,2]^2x[0,2] (2) overlapping in [1,2]^2x[1,2] (1).
    assert hypervolume(f, [2, 2, 2]) == pytest.approx(5.0)


def test_hypervolume_matches_monte_carlo_free_grid_count():
    rng = np.random.default_rng(0)
    pts = rng.integers(0, 6, size=(8, 3))
    ref = np.array([6, 6, 6])
    # Count unit cells of the 6^3 grid dominated by some point: exact for integer points.
    cells = sum(1 for c in itertools.product(range(6), repeat=3)
                if any(np.all(p <= np.array(c)) for p in pts))
    assert hypervolume(pts, ref) == pytest.approx(cells)


def test_hypervolume_reference_shape_checked():
    with pytest.raises(ValueError, match="reference point needs 2"):
        hypervolume(np.zeros((2, 2)), [1.0])


@pytest.mark.parametrize("m", [2, 3])
def test_pareto_mask_matches_brute_force(m):
    rng = np.random.default_rng(m)
    for _ in range(100):
        f = rng.integers(0, 5, size=(30, m)).astype(float)  # many ties and duplicates
        v = rng.choice([0.0, 0.0, 0.0, 1.0], size=30)
        want = np.zeros(30, dtype=bool)
        feasible = np.flatnonzero(v <= 0)
        for i in feasible:
            others = f[feasible]
            want[i] = not np.any(np.all(others <= f[i], axis=1) & np.any(others < f[i], axis=1))
        np.testing.assert_array_equal(pareto_mask(f, v), want)
