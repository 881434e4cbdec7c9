from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from predictors import (
    DEFAULT_PROXIES,
    PredictorError,
    ProxyCombination,
    compute_proxies,
    kendall_tau,
    list_proxies,
    proxy_matrix,
    register_proxy,
)
from search_spaces import get_space

SPACES = {  # small instances of every built-in space, with a matching batch
    "mobilenetv3_ofa": (dict(width_mult=0.5, resolutions=[8], depths=[2], input_shape=[1, 8, 8]), (1, 8, 8)),
    "nb201": (dict(channels=8, cells_per_stage=1), (3, 16, 16)),
    "darts": (dict(channels=4, layers=3), (3, 16, 16)),
    "transformer": (dict(dims=[32], depths=[2], heads=[2]), (3, 16, 16)),
    "einspace_lite": (dict(channels=32, max_depth=6), (3, 16, 16)),
}


def batch(shape, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g), torch.randint(0, 10, (n,), generator=g)


def test_registry_has_the_issue_proxies():
    assert set(DEFAULT_PROXIES) <= set(list_proxies())
    with pytest.raises(PredictorError, match="valid proxies: flops, grad_norm"):
        compute_proxies(nn.Linear(2, 2), torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), ["zen"])


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_each_proxy_is_finite_and_deterministic_on_each_builtin_space(space_name):
    options, shape = SPACES[space_name]
    space = get_space(space_name, **options)
    arch = space.sample(np.random.default_rng(1))
    model = space.build(arch, 10, shape)
    x, y = batch(shape)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = compute_proxies(model, x, y, seed=0)
    assert not [w for w in caught if "proxy" in str(w.message)]  # none failed or was non-finite
    assert list(first) == list(DEFAULT_PROXIES)
    assert all(np.isfinite(v) for v in first.values()), first
    assert compute_proxies(model, x, y, seed=0) == first
    other_seed = compute_proxies(model, x, y, names=["snip"], seed=1)
    assert other_seed["snip"] != first["snip"]
    for k, v in model.state_dict().items():  # the caller's module is untouched
        assert torch.equal(v, before[k])


class Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) * float("inf")


def test_non_finite_networks_are_reported_not_raised():
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
    with pytest.warns(UserWarning, match="not finite"):
        scores = compute_proxies(Exploding(), x, y, names=["synflow", "snip", "jacov", "params"])
    assert not np.isfinite(scores["synflow"]) and not np.isfinite(scores["snip"])
    assert scores["params"] == 15.0


def test_a_failing_proxy_becomes_nan_with_a_warning():
    name = "always_fails_for_test"
    if name not in list_proxies():
        @register_proxy(name)
        def _fails(model, x, y):
            raise RuntimeError("boom")
    with pytest.warns(UserWarning, match="failed: RuntimeError: boom"):
        scores = compute_proxies(nn.Linear(4, 3), torch.randn(4, 4), torch.zeros(4, dtype=torch.long),
                                 names=[name, "params"])
    assert np.isnan(scores[name]) and scores["params"] == 15.0


def test_proxy_matrix_rows_follow_archs():
    options, shape = SPACES["nb201"]
    space = get_space("nb201", **options)
    archs = [space.sample(np.random.default_rng(s)) for s in range(3)]
    x, y = batch(shape)
    m = proxy_matrix(space, archs, x, y, names=["params", "naswot"])
    assert m.shape == (3, 2)
    single = proxy_matrix(space, archs[1:2], x, y, names=["params", "naswot"])
    np.testing.assert_array_equal(m[1], single[0])


def test_combination_beats_each_single_proxy_when_signals_are_complementary():
    rng = np.random.default_rng(0)
    n = 200
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = a + b  # each proxy sees half of the signal
    scores = np.stack([np.exp(a), -b, rng.normal(size=n)], axis=1)  # monotone, flipped, noise
    combo = ProxyCombination(["pa", "pb", "noise"], seed=0).fit(scores[:30], y[:30])
    held = combo.predict(scores[30:])
    best_single = max(abs(kendall_tau(y[30:], scores[30:, k])) for k in range(3))
    assert kendall_tau(y[30:], held) > best_single + 0.1
    restored = ProxyCombination(["pa", "pb", "noise"])
    restored.load_state_dict(combo.state_dict())
    np.testing.assert_allclose(restored.predict(scores[30:]), held)


def test_combination_falls_back_to_the_single_proxy_when_it_is_all_there_is():
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    scores = np.stack([y + 0.01 * rng.normal(size=40), rng.normal(size=40)], axis=1)
    combo = ProxyCombination(["good", "noise"]).fit(scores[:20], y[:20])
    assert kendall_tau(y[20:], combo.predict(scores[20:])) >= kendall_tau(y[20:], scores[20:, 0]) - 0.05


def test_combination_handles_nan_scores_and_bad_shapes():
    rng = np.random.default_rng(2)
    y = rng.normal(size=20)
    scores = np.stack([y, rng.normal(size=20)], axis=1)
    scores[3, 0] = np.nan
    combo = ProxyCombination(["a", "b"]).fit(scores, y)
    assert np.all(np.isfinite(combo.predict(scores)))
    with pytest.raises(PredictorError, match=r"shape \(n, 2\)"):
        combo.predict(np.zeros((3, 3)))


def _noisy_copies(seed, n=220):
    """Two noisy monotone copies of the target (one flipped) and four noise proxies."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    cols = [np.exp(y + rng.normal(size=n)), -(y + rng.normal(size=n))]
    cols += [rng.normal(size=n) for _ in range(4)]
    return np.stack(cols, axis=1), y


def _picked_single_tau(scores, y, fit, test):
    taus = [kendall_tau(y[fit], scores[fit, k]) for k in range(scores.shape[1])]
    k = int(np.argmax(np.abs(taus)))
    return np.sign(taus[k]) * kendall_tau(y[test], scores[test, k])


def test_combination_beats_the_picked_single_proxy_on_noisy_copies_of_the_target():
    # the single proxy picked on 20 labels is one noisy copy; averaging both ranks better
    names = [f"p{k}" for k in range(6)]
    diffs = []
    for seed in range(10):
        scores, y = _noisy_copies(seed)
        fit, test = np.arange(20), np.arange(20, y.size)
        combo = ProxyCombination(names, seed=seed).fit(scores[fit], y[fit])
        diffs.append(kendall_tau(y[test], combo.predict(scores[test]))
                     - _picked_single_tau(scores, y, fit, test))
    assert np.mean(diffs) > 0.03, diffs


def test_combination_is_never_far_below_a_perfect_proxy():
    for seed in range(6):
        rng = np.random.default_rng(seed)
        y = rng.normal(size=150)
        scores = np.stack([y ** 3, y + 2.0 * rng.normal(size=150), rng.normal(size=150),
                           -rng.normal(size=150)], axis=1)
        for n_fit in (10, 20):
            combo = ProxyCombination(["perfect", "weak", "n1", "n2"], seed=seed).fit(
                scores[:n_fit], y[:n_fit])
            assert kendall_tau(y[n_fit:], combo.predict(scores[n_fit:])) >= 0.98, (seed, n_fit)


def test_combination_ranks_a_non_finite_score_last_whatever_the_proxy_sign():
    rng = np.random.default_rng(3)
    y = rng.normal(size=30)
    for sign in (1.0, -1.0):
        scores = np.stack([sign * y + 0.1 * rng.normal(size=30), rng.normal(size=30)], axis=1)
        combo = ProxyCombination(["a", "b"]).fit(scores, y)
        assert combo.weights_[0] * sign > 0
        test = scores[:5].copy()
        test[2, 0] = np.nan if sign > 0 else np.inf
        pred = combo.predict(test)
        assert np.all(np.isfinite(pred)) and int(np.argmin(pred)) == 2
    with pytest.raises(PredictorError, match="not fitted"):
        ProxyCombination(["a", "b"]).predict(scores)
