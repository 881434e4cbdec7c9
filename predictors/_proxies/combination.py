"""A learned weighted combination of zero-cost proxies (RoBoT-style, fitted on few labels).

Each proxy score is made comparable by a monotone transform (signed log, then
z-scored on the fitting set), so ranking by one transformed proxy equals ranking
by the raw proxy. The combined score is ``transformed_scores @ weights``.

Weights are chosen among candidate procedures by k-fold cross-validated Kendall
tau on the labelled archs:

* ``single:<proxy>`` (and ``single:-<proxy>``): one proxy alone, weight +-1;
* ``ridge``: least squares of the targets' ranks on the transformed scores;
* ``search``: seeded random search over weights in [-1, 1]^k maximising the
  training fold's Kendall tau (RoBoT optimises the same objective with BO).

Because every single proxy is a candidate, the choice can only beat the best
single proxy by doing better under cross-validation; the bench checks the
held-out result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from predictors._metrics import kendall_tau
from predictors.errors import PredictorError

__all__ = ["ProxyCombination"]


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _pair_tau(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-a of each column of ``scores`` (n, m) against ``y``: (m,)."""
    i, j = np.triu_indices(y.size, 1)
    truth = np.sign(y[i] - y[j])  # (pairs,)
    pred = np.sign(scores[i] - scores[j])  # (pairs, m)
    return (truth[:, None] * pred).sum(0) / max(i.size, 1)


class ProxyCombination:
    """Weighted sum of transformed proxy scores, weights fitted on labelled archs.

    Args:
        names: proxy names, in the column order of the score matrices.
        folds: cross-validation folds used to choose the procedure.
        search_draws: random weight vectors tried by the ``search`` procedure.
        seed: seed of folds and random search.
    """

    def __init__(self, names: Sequence[str], folds: int = 5, search_draws: int = 2000,
                 seed: int = 0) -> None:
        self.names = list(names)
        self.folds, self.search_draws, self.seed = int(folds), int(search_draws), int(seed)
        self.weights_: np.ndarray | None = None
        self.procedure_: str | None = None
        self.cv_scores_: dict[str, float] = {}

    # transform -------------------------------------------------------------------------
    def _fit_transform(self, raw: np.ndarray) -> None:
        t = _signed_log(np.where(np.isfinite(raw), raw, np.nan))
        self.mean_ = np.nan_to_num(np.nanmean(t, axis=0))
        std = np.nan_to_num(np.nanstd(t, axis=0))
        self.std_ = np.where(std > 1e-12, std, 1.0)

    def transform(self, raw: Any) -> np.ndarray:
        """Transformed scores; a non-finite score becomes the worst value (-4 sigma)."""
        raw = self._matrix(raw)
        with np.errstate(all="ignore"):
            z = (_signed_log(raw) - self.mean_) / self.std_
        return np.where(np.isfinite(z), z, -4.0)

    def _matrix(self, raw: Any) -> np.ndarray:
        if isinstance(raw, dict):
            raw = [raw]
        if len(raw) and isinstance(raw[0], dict):
            raw = [[row[n] for n in self.names] for row in raw]
        raw = np.asarray(raw, dtype=float)
        if raw.ndim != 2 or raw.shape[1] != len(self.names):
            raise PredictorError(f"expected scores of shape (n, {len(self.names)}) for proxies "
                                 f"{self.names}, got {raw.shape}")
        return raw

    # procedures --------------------------------------------------------------------------
    def _procedures(self) -> list[str]:
        singles = [f"single:{s}{n}" for n in self.names for s in ("", "-")]
        return [*singles, "ridge", "search"]

    def _weights_for(self, procedure: str, z: np.ndarray, y: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
        k = len(self.names)
        if procedure.startswith("single:"):
            name = procedure[len("single:"):]
            w = np.zeros(k)
            w[self.names.index(name.lstrip("-"))] = -1.0 if name.startswith("-") else 1.0
            return w
        if procedure == "ridge":
            ranks = np.argsort(np.argsort(y)).astype(float)
            ranks = (ranks - ranks.mean()) / (ranks.std() or 1.0)
            return np.linalg.solve(z.T @ z + 1.0 * np.eye(k), z.T @ ranks)
        if procedure == "search":
            draws = rng.uniform(-1.0, 1.0, size=(self.search_draws, k))
            taus = _pair_tau(z @ draws.T, y)
            return draws[int(np.argmax(taus))]
        raise PredictorError(f"unknown procedure {procedure!r}")

    def fit(self, scores: Any, y: Any) -> ProxyCombination:
        """Choose a procedure by cross-validation, then fit its weights on all labelled archs.

        Args:
            scores: ``(n, k)`` raw proxy scores (or a list of ``{name: score}``).
            y: ``(n,)`` measured accuracies.
        """
        raw = self._matrix(scores)
        y = np.asarray(y, float).ravel()
        if raw.shape[0] != y.size or y.size < 4:
            raise PredictorError(f"fit needs >= 4 archs with one target each, got {raw.shape[0]} "
                                 f"score rows and {y.size} targets")
        rng = np.random.default_rng(self.seed)
        folds = np.array_split(rng.permutation(y.size), min(self.folds, y.size // 2))
        cv = {p: [] for p in self._procedures()}
        for f, test in enumerate(folds):
            train = np.setdiff1d(np.arange(y.size), test)
            self._fit_transform(raw[train])
            z_train, z_test = self.transform(raw[train]), self.transform(raw[test])
            for p in cv:
                w = self._weights_for(p, z_train, y[train], np.random.default_rng([self.seed, f]))
                cv[p].append(kendall_tau(y[test], z_test @ w))
        self.cv_scores_ = {p: float(np.mean(v)) for p, v in cv.items()}
        self.procedure_ = max(self.cv_scores_, key=self.cv_scores_.get)
        self._fit_transform(raw)
        self.weights_ = self._weights_for(self.procedure_, self.transform(raw), y,
                                          np.random.default_rng([self.seed, len(folds)]))
        return self

    def predict(self, scores: Any) -> np.ndarray:
        """Combined score of each row (higher predicts more accurate)."""
        if self.weights_ is None:
            raise PredictorError("ProxyCombination is not fitted; call fit(scores, y) first")
        return self.transform(scores) @ self.weights_

    def state_dict(self) -> dict[str, Any]:
        """JSON-able fitted state."""
        if self.weights_ is None:
            raise PredictorError("ProxyCombination is not fitted")
        return {"names": self.names, "weights": self.weights_.tolist(), "mean": self.mean_.tolist(),
                "std": self.std_.tolist(), "procedure": self.procedure_}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the proxy names must match."""
        if list(state["names"]) != self.names:
            raise PredictorError(f"state is for proxies {state['names']}, not {self.names}")
        self.weights_ = np.asarray(state["weights"], float)
        self.mean_, self.std_ = np.asarray(state["mean"], float), np.asarray(state["std"], float)
        self.procedure_ = state["procedure"]
