"""Small, deterministic training loops shared by the search and standalone evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from search_spaces import Architecture, SearchSpace
from supernets.data import make_loader
from supernets.runtime import ComputeConfig, Runtime

__all__ = ["StandaloneResult", "batches", "evaluate", "train_standalone"]


def batches(data: Dataset, batch_size: int, generator: torch.Generator | None = None, *,
            rank: int = 0, world_size: int = 1, num_workers: int = 0
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of a data set of ``(x, y)`` items, on the CPU (the last may be short).

    Shuffled when ``generator`` is given: it draws the seed of the pass, so a
    checkpointed generator continues the same sequence of passes. Under data
    parallelism each rank gets its share (``batch_size`` is then per rank) of the pass
    one process would make with ``world_size * batch_size`` (see
    :func:`supernets.data.make_loader`).
    """
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) if generator is not None else 0
    loader = make_loader(data, batch_size, shuffle=generator is not None, seed=seed, rank=rank,
                         world_size=world_size, drop_last=False, num_workers=num_workers)
    yield from loader


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int = 512,
             device: torch.device | None = None) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` in eval mode, run on ``device`` (default: the CPU)."""
    was = model.training
    model.eval()
    loss = correct = 0.0
    n = 0
    for x, y in batches(data, batch_size):
        if device is not None:
            x, y = x.to(device), y.to(device)
        out = model(x).float()
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
                     seed: int = 0, compute: ComputeConfig | None = None) -> StandaloneResult:
    """Train ``space.build(arch)`` from scratch on ``data.train`` (SGD, cosine), report val/test.

    Args:
        data: a ``DataSplits`` (train, val, test, input_shape, num_classes).
        seed: weight initialisation and data order (the global RNG is left untouched).
        compute: device, precision and channels-last (one process; default: the CPU in
            fp32). The returned model is on the CPU.
    """
    rt = Runtime(compute or ComputeConfig(device="cpu"), data_parallel=False,
                 set_threads=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = space.build(arch, num_classes=data.num_classes, input_shape=data.input_shape)
    model = rt.prepare(model)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps = epochs * ((len(data.train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    params = list(model.parameters())
    model.train()
    for _ in range(epochs):
        for x, y in batches(data.train, batch_size, gen):
            x, y = rt.batch((x, y))
            opt.zero_grad(set_to_none=True)
            with rt.autocast():
                loss = F.cross_entropy(model(x), y)
            rt.backward(loss)
            rt.optimizer_step(opt, params, clip=5.0)
            sched.step()
    _, val_acc = evaluate(model, data.val, device=rt.device)
    _, test_acc = evaluate(model, data.test, device=rt.device)
    return StandaloneResult(arch, val_acc, test_acc, sum(p.numel() for p in model.parameters()),
                            model.cpu().eval())
