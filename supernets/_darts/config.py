"""`DartsConfig`: the settings of a DARTS search, a frozen dataclass built from plain data."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supernets._config import check_keys
from supernets.errors import SupernetError

__all__ = ["DartsConfig"]

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class DartsConfig:
    """Settings of :func:`search_darts`.

    Attributes:
        epochs: search epochs (one pass over the training split each).
        batch_size: batch of both the weight and the architecture steps.
        order: 1 (first-order) or 2 (second-order: unrolled step with a finite-difference
            Hessian-vector product).
        partial_channels: K of PC-DARTS (1: plain DARTS).
        edge_normalization: None (on when K > 1), True or False.
        warmup_epochs: first epochs update the weights only.
        w_optimizer, w_lr, w_lr_min, w_momentum, w_weight_decay: the weight optimiser
            (cosine schedule from ``w_lr`` to ``w_lr_min``).
        a_optimizer, a_lr, a_weight_decay: the architecture optimiser (Adam betas 0.5, 0.999).
        grad_clip: max gradient norm of the weights (0: none).
        derive: ``"argmax"`` or ``"perturbation"``.
        tune_steps: weight steps after each perturbation-based discretisation.
        eval_batches: validation batches perturbation-based selection scores on.
        seed: everything random (initialisation, data order).
    """

    epochs: int = 10
    batch_size: int = 64
    order: int = 1
    partial_channels: int = 1
    edge_normalization: bool | None = None
    warmup_epochs: int = 0
    w_optimizer: str = "sgd"
    w_lr: float = 0.05
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    a_optimizer: str = "adam"
    a_lr: float = 3e-3
    a_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    derive: str = "argmax"
    tune_steps: int = 0
    eval_batches: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs >= 1"), (self.batch_size >= 1, "batch_size >= 1"),
            (self.order in (1, 2), "order in (1, 2)"), (self.partial_channels >= 1, "partial_channels >= 1"),
            (0 <= self.warmup_epochs <= self.epochs, "0 <= warmup_epochs <= epochs"),
            (self.w_optimizer in OPTIMIZERS, f"w_optimizer in {OPTIMIZERS}"),
            (self.a_optimizer in OPTIMIZERS, f"a_optimizer in {OPTIMIZERS}"),
            (self.w_lr > 0 and self.a_lr > 0, "w_lr > 0 and a_lr > 0"),
            (self.derive in ("argmax", "perturbation"), "derive in ('argmax', 'perturbation')"),
            (self.tune_steps >= 0, "tune_steps >= 0"), (self.eval_batches >= 1, "eval_batches >= 1"),
        ]
        for ok, rule in checks:
            if not ok:
                raise SupernetError(f"DartsConfig: `{rule}` must hold, but got {self}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "search") -> DartsConfig:
        """Build from plain data (e.g. a YAML section); unknown keys list the valid ones."""
        return cls(**check_keys(data or {}, cls, where))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
