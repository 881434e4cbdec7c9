"""Ridge regression baseline with a Bayesian-linear-regression uncertainty."""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors._accuracy.base import AccuracyPredictor, register_predictor

__all__ = ["RidgePredictor"]


@register_predictor("ridge")
class RidgePredictor(AccuracyPredictor):
    """Linear model on standardised features; the penalty is picked by leave-one-out error.

    Args:
        alphas: candidate penalties (searched by exact leave-one-out error).
        **kwargs: see :class:`AccuracyPredictor`.
    """

    def __init__(self, space, *, alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
                 **kwargs: Any) -> None:
        super().__init__(space, **kwargs)
        self.alphas = tuple(float(a) for a in alphas)

    def hparams(self) -> dict[str, Any]:
        return {"alphas": list(self.alphas)}

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        n, d = x.shape
        best = None
        for alpha in self.alphas:
            gram_inv = np.linalg.inv(x.T @ x + alpha * np.eye(d))
            hat_diag = np.einsum("ij,jk,ik->i", x, gram_inv, x)
            weights = gram_inv @ (x.T @ y)
            resid = y - x @ weights
            loo = np.mean((resid / np.maximum(1.0 - hat_diag, 1e-6)) ** 2)
            if best is None or loo < best[0]:
                noise = float(resid @ resid / max(n - hat_diag.sum(), 1.0))
                best = (loo, alpha, weights, gram_inv, noise)
        _, self.alpha_, self.weights_, self.cov_, self.noise_ = best

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = x @ self.weights_
        var = self.noise_ * (1.0 + np.einsum("ij,jk,ik->i", x, self.cov_, x))
        return mean, np.sqrt(np.maximum(var, 0.0))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "cov": self.cov_,
                "scalars": np.array([self.alpha_, self.noise_])}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_, self.cov_ = arrays["weights"], arrays["cov"]
        self.alpha_, self.noise_ = (float(v) for v in arrays["scalars"])
