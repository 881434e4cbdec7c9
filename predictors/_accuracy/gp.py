"""Gaussian-process regression (scikit-learn) with a safe, array-only saved state."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from predictors._accuracy.base import AccuracyPredictor, register_predictor

__all__ = ["GPPredictor"]


@register_predictor("gp")
class GPPredictor(AccuracyPredictor):
    """GP with a Matern-5/2 kernel plus noise; hyper-parameters by marginal likelihood.

    Saving stores the training features, targets and fitted kernel
    hyper-parameters; loading refits the GP with the optimiser off, which
    reproduces the same posterior without unpickling anything.

    Args:
        restarts: optimiser restarts of the kernel hyper-parameters.
        **kwargs: see :class:`AccuracyPredictor`.
    """

    def __init__(self, space, *, restarts: int = 2, **kwargs: Any) -> None:
        super().__init__(space, **kwargs)
        self.restarts = int(restarts)

    def hparams(self) -> dict[str, Any]:
        return {"restarts": self.restarts}

    @staticmethod
    def _kernel(dim: int):
        return (ConstantKernel(1.0, (1e-2, 1e2))
                * Matern(length_scale=np.sqrt(dim), length_scale_bounds=(1e-1, 1e3), nu=2.5)
                + WhiteKernel(0.1, (1e-5, 1e1)))

    def _gp(self, kernel, optimise: bool) -> GaussianProcessRegressor:
        return GaussianProcessRegressor(
            kernel, normalize_y=False, random_state=self.seed,
            optimizer="fmin_l_bfgs_b" if optimise else None,
            n_restarts_optimizer=self.restarts if optimise else 0)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp_ = self._gp(self._kernel(x.shape[1]), True).fit(x, y)
        self.x_train_, self.y_train_ = x, y

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.gp_.predict(x, return_std=True)
        return mean, std

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"x": self.x_train_, "y": self.y_train_, "theta": self.gp_.kernel_.theta}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.x_train_, self.y_train_ = arrays["x"], arrays["y"]
        kernel = self._kernel(self.x_train_.shape[1]).clone_with_theta(arrays["theta"])
        self.gp_ = self._gp(kernel, False).fit(self.x_train_, self.y_train_)
