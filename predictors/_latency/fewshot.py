"""Few-shot latency prediction on a new device from reference devices (recalibration).

Choice: recalibration, not HELP's meta-learned network. HELP conditions a
meta-learned predictor on a device embedding made of the latencies of a few
reference architectures. With a handful of reference devices (CPU 1/2 threads,
ONNX Runtime, ...) there is too little to meta-train on, but each reference
device already has a full latency model (a table or a learned predictor). We
therefore regress the new device's log latency on the reference devices' log
latencies plus two free statistics (log FLOPs, log memory traffic):

    log t_new(a) = c + sum_r w_r log t_r(a) + v . s(a)

with a ridge penalty pulling ``w`` towards the reference average (``w_r = 1/R``)
and ``v`` towards 0. The penalty is chosen by exact leave-one-out error over a
grid, so with 5 samples the map stays close to "the reference average, rescaled"
and with 20 samples it can reweight references and correct for compute- versus
memory-bound behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from predictors._latency.features import LayerFeaturizer
from predictors.errors import PredictorError

__all__ = ["FewShotLatencyPredictor"]

ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


class FewShotLatencyPredictor:
    """Predict latency on a new device from <= ~20 measurements and reference devices.

    Args:
        references: ``{name: model}`` where each model has ``predict(archs) -> ms``
            (a ``hardware.LatencyTable``, a :class:`LayerwiseLatencyPredictor`, or other
            devices' measured latencies of the same architectures as a :class:`MeasuredLatency`,
            e.g. read from a benchmark table or a device farm's CSV).
        space: search space (for the free statistics); ``None`` uses references only.
        input_shape, num_classes: shapes for the free statistics.
        statistics: include log FLOPs and log memory traffic as extra features.
    """

    def __init__(self, references: Mapping[str, Any], space: Any = None,
                 input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 statistics: bool = True) -> None:
        if not references:
            raise PredictorError("FewShotLatencyPredictor needs at least one reference device")
        self.references = dict(references)
        self.space = space
        self.statistics = bool(statistics and space is not None)
        if space is not None:
            self.input_shape = tuple(input_shape) if input_shape is not None else tuple(space.input_shape)
            self.num_classes = int(num_classes or space.num_classes)
        self.coef_: np.ndarray | None = None
        self._stats: dict[str, tuple[float, float]] = {}  # arch key -> (log FLOPs, log traffic)

    def _statistics(self, arch: Any) -> tuple[float, float]:
        """log1p of FLOPs and of elements moved (memoised: the references are often lookups)."""
        key = getattr(arch, "key", None)
        if key is None or key not in self._stats:
            specs = self.space.layers(arch, self.input_shape, self.num_classes)
            raw = np.array([LayerFeaturizer.raw(s) for s in specs])
            value = (float(np.log1p(raw[:, 0].sum())), float(np.log1p(raw[:, 2].sum() + raw[:, 3].sum())))
            if key is None:
                return value
            self._stats[key] = value
        return self._stats[key]

    def _features(self, archs: Sequence[Any]) -> np.ndarray:
        cols = []
        for name, model in self.references.items():
            ms = np.asarray(model.predict(list(archs)), float).ravel()
            if ms.size != len(archs) or not np.all(ms > 0):
                raise PredictorError(f"reference {name!r} must predict one positive latency per arch")
            cols.append(np.log(ms))
        if self.statistics:
            stats = np.array([self._statistics(a) for a in archs]).reshape(len(archs), 2)
            cols += [stats[:, 0], stats[:, 1]]
        return np.stack(cols, axis=1)

    def fit(self, archs: Sequence[Any], latency_ms: Any) -> FewShotLatencyPredictor:
        """Fit the map from reference latencies to the new device's measured ones."""
        archs = list(archs)
        y = np.asarray(latency_ms, float).ravel()
        if y.size != len(archs) or y.size < 2:
            raise PredictorError(f"need >= 2 measurements, one per arch; got {y.size} for {len(archs)}")
        if not np.all(np.isfinite(y) & (y > 0)):
            raise PredictorError("latencies must be finite and positive (milliseconds)")
        x = self._features(archs)
        n_ref = len(self.references)
        prior = np.zeros(x.shape[1])
        prior[:n_ref] = 1.0 / n_ref
        # centre, so the free intercept absorbs the device's overall speed
        self.x_mean_, y_log = x.mean(0), np.log(y)
        self.x_scale_ = np.where(x.std(0) > 1e-8, x.std(0), 1.0)
        xc = (x - self.x_mean_) / self.x_scale_
        prior_scaled = prior * self.x_scale_
        target = y_log - y_log.mean() - xc @ prior_scaled  # residual after the prior map
        best = None
        for alpha in ALPHAS:
            gram_inv = np.linalg.inv(xc.T @ xc + alpha * y.size * np.eye(xc.shape[1]))
            delta = gram_inv @ xc.T @ target
            hat = np.einsum("ij,jk,ik->i", xc, gram_inv, xc) + 1.0 / y.size  # + intercept
            loo = np.mean(((target - xc @ delta) / np.maximum(1 - hat, 1e-6)) ** 2)
            if best is None or loo < best[0]:
                best = (loo, alpha, delta)
        _, self.alpha_, delta = best
        self.coef_ = prior_scaled + delta
        self.intercept_ = float(y_log.mean())
        return self

    def predict(self, archs: Sequence[Any]) -> np.ndarray:
        """Predicted latency (ms) on the new device."""
        if self.coef_ is None:
            raise PredictorError("FewShotLatencyPredictor is not fitted; call fit first")
        archs = list(archs)
        xc = (self._features(archs) - self.x_mean_) / self.x_scale_
        return np.exp(self.intercept_ + xc @ self.coef_)

    def state_dict(self) -> dict[str, Any]:
        """Fitted map as plain data (the reference models are not included)."""
        if self.coef_ is None:
            raise PredictorError("FewShotLatencyPredictor is not fitted")
        return {"references": list(self.references), "statistics": self.statistics,
                "coef": self.coef_.tolist(), "intercept": self.intercept_, "alpha": self.alpha_,
                "x_mean": self.x_mean_.tolist(), "x_scale": self.x_scale_.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; reference names and statistics must match."""
        if list(state["references"]) != list(self.references) or state["statistics"] != self.statistics:
            raise PredictorError(f"state is for references {state['references']} (statistics "
                                 f"{state['statistics']}), not {list(self.references)} ({self.statistics})")
        self.coef_ = np.asarray(state["coef"], float)
        self.intercept_, self.alpha_ = float(state["intercept"]), float(state["alpha"])
        self.x_mean_, self.x_scale_ = np.asarray(state["x_mean"]), np.asarray(state["x_scale"])
