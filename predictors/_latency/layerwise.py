"""A latency predictor learned from layer features, for spaces/devices without a table.

The latency of an architecture is modelled as a sum over its layers
(``space.layers(arch)``) of a learned per-layer cost plus a constant overhead:

* ``kind="linear"``: per op type, a non-negative combination of (1, FLOPs,
  params, input + output elements), fitted by non-negative least squares on
  relative error. Data-efficient and interpretable.
* ``kind="mlp"``: a small MLP on :class:`LayerFeaturizer` vectors with a softplus
  output, summed per architecture and trained on log latency.

It learns from end-to-end latencies of architectures (:meth:`fit`) or from
per-layer latencies such as a latency table's rows (:meth:`fit_layers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls
from torch import nn

from predictors._latency.features import LayerFeaturizer
from predictors.errors import PredictorError
from search_spaces import LayerSpec

__all__ = ["LayerwiseLatencyPredictor"]

KINDS = ("linear", "mlp")


class LayerwiseLatencyPredictor:
    """Sum-over-layers latency model learned from measurements.

    Args:
        space: search space (its ``layers`` gives each architecture's layers).
        input_shape: input shape of the measured networks (default: the space's).
        num_classes: classes of the measured networks (default: the space's).
        kind: ``"linear"`` or ``"mlp"``.
        seed: seed of the MLP initialisation.
        epochs: MLP training steps.
    """

    def __init__(self, space: Any, input_shape: Sequence[int] | None = None,
                 num_classes: int | None = None, kind: str = "linear", seed: int = 0,
                 epochs: int = 800) -> None:
        if kind not in KINDS:
            raise PredictorError(f"unknown layerwise model kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        self.space, self.kind, self.seed, self.epochs = space, kind, int(seed), int(epochs)
        self.input_shape = tuple(input_shape) if input_shape is not None else tuple(space.input_shape)
        self.num_classes = int(num_classes or space.num_classes)
        self.featurizer = LayerFeaturizer()
        self.coef_: np.ndarray | None = None
        self.net_: nn.Module | None = None
        self.overhead_ms_ = 0.0

    # layer design ----------------------------------------------------------------------------
    def _layers(self, arch: Any) -> list[LayerSpec]:
        return self.space.layers(arch, self.input_shape, self.num_classes)

    def _linear_row(self, specs: Sequence[LayerSpec]) -> np.ndarray:
        """Summed per-op-type (count, MFLOPs, Mparams, M elements) of some layers."""
        n_ops = len(self.featurizer.op_vocab)
        row = np.zeros(4 * n_ops)
        for spec in specs:
            i = self.featurizer.op_vocab.index(spec.op) if spec.op in self.featurizer.op_vocab else None
            if i is None:
                raise PredictorError(f"layer op {spec.op!r} is not in the op vocabulary")
            flops, params, n_in, n_out = LayerFeaturizer.raw(spec)
            row[4 * i:4 * i + 4] += (1.0, flops / 1e6, params / 1e6, (n_in + n_out) / 1e6)
        return row

    # fitting -----------------------------------------------------------------------------------
    def fit(self, archs: Sequence[Any], latency_ms: Any) -> LayerwiseLatencyPredictor:
        """Fit on end-to-end latencies (ms) of architectures."""
        archs = list(archs)
        y = self._targets(latency_ms, len(archs))
        groups = [self._layers(a) for a in archs]
        return self._fit_groups(groups, y, overhead=True)

    def fit_layers(self, specs: Sequence[LayerSpec], latency_ms: Any) -> LayerwiseLatencyPredictor:
        """Fit on per-layer latencies (ms), e.g. the rows of a latency table."""
        specs = list(specs)
        y = self._targets(latency_ms, len(specs))
        return self._fit_groups([[s] for s in specs], y, overhead=False)

    @staticmethod
    def _targets(latency_ms: Any, n: int) -> np.ndarray:
        y = np.asarray(latency_ms, float).ravel()
        if y.size != n or n < 2:
            raise PredictorError(f"need >= 2 measurements, one per item; got {y.size} for {n} items")
        if not np.all(np.isfinite(y) & (y > 0)):
            raise PredictorError("latencies must be finite and positive (milliseconds)")
        return y

    def _fit_groups(self, groups: list[list[LayerSpec]], y: np.ndarray,
                    overhead: bool) -> LayerwiseLatencyPredictor:
        if self.kind == "linear":
            design = np.stack([self._linear_row(g) for g in groups])
            if overhead:
                design = np.hstack([design, np.ones((len(groups), 1))])
            # relative error: divide each row and target by the target
            scale = np.where(design.std(0) > 0, design.std(0) + np.abs(design.mean(0)), 1.0)
            coef, _ = nnls(design / scale / y[:, None], np.ones_like(y), maxiter=50 * design.shape[1])
            coef = coef / scale
            self.overhead_ms_ = float(coef[-1]) if overhead else 0.0
            self.coef_ = coef[:-1] if overhead else coef
        else:
            self._fit_mlp(groups, y, overhead)
        return self

    def _fit_mlp(self, groups: list[list[LayerSpec]], y: np.ndarray, overhead: bool) -> None:
        feats = [np.stack([self.featurizer.layer(s) for s in g]) for g in groups]
        allf = np.concatenate(feats)
        self.f_mean_, self.f_std_ = allf.mean(0), np.where(allf.std(0) > 1e-8, allf.std(0), 1.0)
        x = torch.from_numpy((allf - self.f_mean_) / self.f_std_)
        owner = torch.from_numpy(np.repeat(np.arange(len(groups)), [len(f) for f in feats]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                nn.Linear(64, 1)).double()
        self.log_scale_ = float(np.log(np.median(y) / np.mean([len(g) for g in groups])))
        log_overhead = torch.tensor(np.log(0.05 * np.median(y)), requires_grad=overhead,
                                    dtype=torch.float64)
        params = list(net.parameters()) + ([log_overhead] if overhead else [])
        opt = torch.optim.Adam(params, lr=3e-3)
        target = torch.from_numpy(np.log(y))
        for _ in range(self.epochs):
            opt.zero_grad()
            per_layer = torch.nn.functional.softplus(net(x).squeeze(-1)) * np.exp(self.log_scale_)
            total = torch.zeros(len(groups), dtype=torch.float64).index_add(0, owner, per_layer)
            if overhead:
                total = total + log_overhead.exp()
            loss = torch.mean((torch.log(total) - target) ** 2)
            loss.backward()
            opt.step()
        self.net_ = net
        self.overhead_ms_ = float(log_overhead.detach().exp()) if overhead else 0.0

    # prediction ------------------------------------------------------------------------------------
    def predict_layers(self, specs: Sequence[LayerSpec]) -> np.ndarray:
        """Predicted latency (ms) of each layer."""
        if self.coef_ is None and self.net_ is None:
            raise PredictorError("LayerwiseLatencyPredictor is not fitted; call fit first")
        specs = list(specs)
        if self.kind == "linear":
            return np.array([self._linear_row([s]) @ self.coef_ for s in specs])
        x = torch.from_numpy((np.stack([self.featurizer.layer(s) for s in specs]) - self.f_mean_) / self.f_std_)
        with torch.no_grad():
            out = torch.nn.functional.softplus(self.net_(x).squeeze(-1)) * np.exp(self.log_scale_)
        return out.numpy()

    def predict(self, archs: Sequence[Any]) -> np.ndarray:
        """Predicted end-to-end latency (ms) of each architecture."""
        return np.array([self.predict_layers(self._layers(a)).sum() + self.overhead_ms_
                         for a in archs])

    # state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Fitted state as plain data (JSON-able lists)."""
        if self.coef_ is None and self.net_ is None:
            raise PredictorError("LayerwiseLatencyPredictor is not fitted")
        state: dict[str, Any] = {"kind": self.kind, "op_vocab": self.featurizer.op_vocab,
                                 "overhead_ms": self.overhead_ms_}
        if self.kind == "linear":
            state["coef"] = self.coef_.tolist()
        else:
            state.update(net={k: v.tolist() for k, v in self.net_.state_dict().items()},
                         f_mean=self.f_mean_.tolist(), f_std=self.f_std_.tolist(),
                         log_scale=self.log_scale_)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the model kind must match."""
        if state["kind"] != self.kind:
            raise PredictorError(f"state is for a {state['kind']!r} model, this one is {self.kind!r}")
        self.featurizer = LayerFeaturizer(state["op_vocab"])
        self.overhead_ms_ = float(state["overhead_ms"])
        if self.kind == "linear":
            self.coef_ = np.asarray(state["coef"], float)
            return
        self.f_mean_, self.f_std_ = np.asarray(state["f_mean"]), np.asarray(state["f_std"])
        self.log_scale_ = float(state["log_scale"])
        dim = len(self.f_mean_)
        net = nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                            nn.Linear(64, 1)).double()
        net.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in state["net"].items()})
        self.net_ = net
