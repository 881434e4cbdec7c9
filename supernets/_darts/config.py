"""`DartsConfig`: the settings of a DARTS search, a frozen dataclass validated on construction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from supernets.errors import SupernetError

__all__ = ["DartsConfig"]

OPTIMIZERS = ("sgd", "adam")
DERIVATIONS = ("argmax", "perturbation")


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
            ("epochs", self.epochs >= 1, "epochs >= 1"),
            ("batch_size", self.batch_size >= 1, "batch_size >= 1"),
            ("order", self.order in (1, 2), "order in (1, 2)"),
            ("partial_channels", self.partial_channels >= 1, "partial_channels >= 1"),
            ("warmup_epochs", 0 <= self.warmup_epochs <= self.epochs, "0 <= warmup_epochs <= epochs"),
            ("w_optimizer", self.w_optimizer in OPTIMIZERS, f"w_optimizer in {OPTIMIZERS}"),
            ("a_optimizer", self.a_optimizer in OPTIMIZERS, f"a_optimizer in {OPTIMIZERS}"),
            ("w_lr", self.w_lr > 0, "w_lr > 0"),
            ("a_lr", self.a_lr > 0, "a_lr > 0"),
            ("derive", self.derive in DERIVATIONS, f"derive in {DERIVATIONS}"),
            ("tune_steps", self.tune_steps >= 0, "tune_steps >= 0"),
            ("eval_batches", self.eval_batches >= 1, "eval_batches >= 1"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise SupernetError(f"{name}: `{rule}` must hold, but got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: what a checkpoint records."""
        return dataclasses.asdict(self)
