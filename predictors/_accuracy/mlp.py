"""MLP ensemble with optional FBNetV3-style pretraining on free statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from predictors._accuracy.base import AccuracyPredictor, register_predictor
from predictors._features import free_statistics
from predictors.errors import PredictorError

__all__ = ["MLPEnsemble"]


class _Member(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int, outputs: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.trunk = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 1)
        self.stats_head = nn.Linear(width, outputs)  # used only while pretraining

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, d) -> (N,)
        return self.head(self.trunk(x)).squeeze(-1)


@register_predictor("mlp_ensemble")
class MLPEnsemble(AccuracyPredictor):
    """An ensemble of small MLPs; the uncertainty is the spread of the members.

    FBNetV3-style pretraining (:meth:`pretrain`) first trains each member's trunk
    to predict free statistics (log FLOPs, log params, optionally table latency)
    of many unlabelled archs; :meth:`fit` then fine-tunes from those weights on
    the few measured values instead of starting from random weights.

    Args:
        members: ensemble size.
        hidden: hidden width.
        layers: hidden layers.
        epochs: full-batch Adam steps of ``fit``.
        lr: learning rate of ``fit``.
        weight_decay: L2 penalty (AdamW).
        pretrain_epochs: steps of :meth:`pretrain`.
        **kwargs: see :class:`AccuracyPredictor`.
    """

    def __init__(self, space, *, members: int = 5, hidden: int = 64, layers: int = 2,
                 epochs: int = 300, lr: float = 3e-3, weight_decay: float = 1e-3,
                 pretrain_epochs: int = 300, **kwargs: Any) -> None:
        super().__init__(space, **kwargs)
        if members < 1 or hidden < 1 or layers < 1:
            raise PredictorError(f"members, hidden and layers must be >= 1, got {members}, {hidden}, {layers}")
        self.members, self.hidden, self.layers = int(members), int(hidden), int(layers)
        self.epochs, self.lr, self.weight_decay = int(epochs), float(lr), float(weight_decay)
        self.pretrain_epochs = int(pretrain_epochs)
        self._nets: list[_Member] | None = None
        self._pretrained: list[dict[str, torch.Tensor]] | None = None
        self._pre_scale: tuple[np.ndarray, np.ndarray] | None = None

    def hparams(self) -> dict[str, Any]:
        return {"members": self.members, "hidden": self.hidden, "layers": self.layers,
                "epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
                "pretrain_epochs": self.pretrain_epochs}

    def _new_nets(self, outputs: int = 1) -> list[_Member]:
        dim = self.featurizer.size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return [_Member(dim, self.hidden, self.layers, outputs).double() for _ in range(self.members)]

    def _train(self, net: _Member, x: torch.Tensor, y: torch.Tensor, epochs: int,
               lr: float, stats: bool) -> None:
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=self.weight_decay)
        for _ in range(epochs):
            opt.zero_grad()
            out = net.stats_head(net.trunk(x)) if stats else net(x)
            loss = torch.mean((out - y) ** 2)
            loss.backward()
            opt.step()

    # FBNetV3 pretraining --------------------------------------------------------------------
    def pretrain(self, archs: Sequence[Any], stats: np.ndarray | None = None,
                 latency: Any = None) -> MLPEnsemble:
        """Pretrain the members on free statistics of (many, unlabelled) archs.

        Args:
            archs: architectures (no measured accuracy needed).
            stats: ``(n, k)`` statistics; default :func:`free_statistics` of the
                space (log FLOPs, log params, plus log latency if ``latency``).
            latency: object with ``predict(archs) -> ms`` (e.g. a latency table).

        Returns:
            ``self``; the next :meth:`fit` starts from the pretrained weights.
        """
        archs = list(archs)
        if stats is None:
            stats, _ = free_statistics(self.space, archs, self.featurizer.input_shape,
                                       self.featurizer.num_classes, latency)
        stats = np.asarray(stats, float).reshape(len(archs), -1)
        x = self.features(archs).astype(np.float64)
        x_mean, x_std = x.mean(0), np.where(x.std(0) > 1e-8, x.std(0), 1.0)
        s = (stats - stats.mean(0)) / np.where(stats.std(0) > 1e-12, stats.std(0), 1.0)
        xt, st = torch.from_numpy((x - x_mean) / x_std), torch.from_numpy(s)
        nets = self._new_nets(outputs=s.shape[1])
        for net in nets:
            self._train(net, xt, st, self.pretrain_epochs, self.lr, stats=True)
        self._pretrained = [{k: v.detach().clone() for k, v in net.trunk.state_dict().items()}
                            for net in nets]
        self._pre_scale = (x_mean, x_std)
        return self

    # AccuracyPredictor hooks ------------------------------------------------------------------
    def _feature_scaling(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # a pretrained trunk must see features scaled as during pretraining
        return self._pre_scale if self._pretrained is not None else super()._feature_scaling(x)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        nets = self._new_nets()
        xt = torch.from_numpy(x)
        yt = torch.from_numpy(y)
        for k, net in enumerate(nets):
            if self._pretrained is not None:
                net.trunk.load_state_dict(self._pretrained[k])
            self._train(net, xt, yt, self.epochs, self.lr, stats=False)
        self._nets = nets

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = torch.from_numpy(x)
        with torch.no_grad():
            preds = torch.stack([net(xt) for net in self._nets]).numpy()  # (members, N)
        return preds.mean(0), preds.std(0)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"{k}.{name}": t.detach().numpy() for k, net in enumerate(self._nets)
                for name, t in net.state_dict().items() if not name.startswith("stats_head")}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        nets = self._new_nets()
        for k, net in enumerate(nets):
            state = {name[len(f"{k}."):]: torch.from_numpy(np.array(v)) for name, v in arrays.items()
                     if name.startswith(f"{k}.")}
            net.load_state_dict(state, strict=False)
        self._nets = nets
