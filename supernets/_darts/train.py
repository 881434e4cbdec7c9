"""Small, deterministic training loops shared by the search and standalone evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from search_spaces import Architecture, SearchSpace

__all__ = ["StandaloneResult", "batches", "evaluate", "train_standalone"]


def batches(data: TensorDataset, batch_size: int, generator: torch.Generator | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of a tensor data set; shuffled by ``generator`` when given (last batch may be short)."""
    x, y = data.tensors
    order = torch.randperm(len(x), generator=generator) if generator is not None else torch.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset, batch_size: int = 512) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` in eval mode."""
    was = model.training
    model.eval()
    loss = correct = 0.0
    n = 0
    for x, y in batches(data, batch_size):
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += float((out.argmax(1) == y).sum())
        n += len(y)
    model.train(was)
    return loss / max(n, 1), correct / max(n, 1)


@dataclass(frozen=True)
class StandaloneResult:
    """An architecture trained from scratch: its accuracies and the trained model (eval mode)."""

    arch: Architecture
    val_accuracy: float
    test_accuracy: float
    params: int
    model: nn.Module | None = field(default=None, compare=False, repr=False)


def train_standalone(space: SearchSpace, arch: Architecture, data, epochs: int = 10,
                     batch_size: int = 64, lr: float = 0.05, weight_decay: float = 3e-4,
                     seed: int = 0) -> StandaloneResult:
    """Train ``space.build(arch)`` from scratch on ``data.train`` (SGD, cosine), report val/test.

    Args:
        data: a ``DataSplits`` (train, val, test, input_shape, num_classes).
        seed: weight initialisation and data order (the global RNG is left untouched).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = space.build(arch, num_classes=data.num_classes, input_shape=data.input_shape)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps = epochs * ((len(data.train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    model.train()
    for _ in range(epochs):
        for x, y in batches(data.train, batch_size, gen):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
    _, val_acc = evaluate(model, data.val)
    _, test_acc = evaluate(model, data.test)
    return StandaloneResult(arch, val_acc, test_acc, sum(p.numel() for p in model.parameters()),
                            model.eval())
