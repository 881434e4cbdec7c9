"""Evaluate a subnet of an OFA supernet with inherited weights (after BN recalibration),
and recalibrate the batch-norm statistics of any module on a few batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from supernets.data import DataSplits
from supernets.errors import SupernetError

if TYPE_CHECKING:  # supernet.py imports this module
    from supernets._ofa.supernet import OFASupernet

__all__ = ["BN_CALIBRATED", "accuracy", "batch_norms", "bn_signature", "calibration_batches",
           "evaluate_subnet", "recalibrate_bn", "subnet_norms"]

BN_CALIBRATED = "bn_calibrated"
"""Attribute that :meth:`OFASupernet.extract` sets on the module it returns: True when the
supernet's batch-norm statistics had been recalibrated for exactly that subnet (and not
changed since), False otherwise. :func:`recalibrate_bn` sets it to True."""


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def subnet_norms(supernet: OFASupernet) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch norms that serve the supernet's active subnet (its ops' templates are
    built now, so that their batch norms take part in recalibration too)."""
    norms = batch_norms(supernet)
    for op in supernet.dynamic_ops():
        if not op.is_full(op.spec):
            op.template(op.spec)
        norms += [m for t in op.templates() for m in batch_norms(t)]
    return norms


def bn_signature(norms: Sequence[nn.modules.batchnorm._BatchNorm]) -> tuple[float, ...]:
    """A cheap fingerprint of the running statistics of ``norms``: it changes whenever a
    training-mode forward or a state-dict load changes them."""
    out: list[float] = []
    for m in norms:
        if m.running_mean is None or m.running_mean.device.type == "meta":
            continue
        out += [float(m.num_batches_tracked), float(m.running_mean.double().sum()),
                float(m.running_var.double().sum())]
    return tuple(out)


@torch.no_grad()
def recalibrate_bn(module: nn.Module, batches: Iterable[torch.Tensor | Sequence[torch.Tensor]],
                   norms: Sequence[nn.modules.batchnorm._BatchNorm] | None = None) -> int:
    """Reset batch-norm statistics and re-estimate them on ``batches`` (tensors or (x, y)
    pairs); leaves ``module`` in eval mode.

    The estimate is the average of the batches' statistics weighted by their sizes
    (each batch's momentum is its share of the images seen so far). PyTorch's
    cumulative average (``momentum=None``) weights every batch alike, so a short last
    batch (3 images after 7 of 128) counted as much as a full one and, in layers with
    1x1 feature maps, wrecked the statistics (val accuracy 0.96 -> 0.73, measured).

    Args:
        module: any module (e.g. a subnet extracted from a supernet).
        batches: the calibration inputs (a few hundred training images suffice).
        norms: the batch-norm layers to recalibrate (default: every one of ``module``).

    Returns:
        The number of images seen; when it is > 0, ``module.bn_calibrated`` is set True
        (no batches: nothing is changed and 0 is returned).
    """
    batches = list(batches)
    if not batches:  # nothing to estimate from: the statistics stay as they are
        return 0
    norms = list(batch_norms(module) if norms is None else norms)
    saved = [m.momentum for m in norms]
    for m in norms:
        if m.running_mean is not None and m.running_mean.device.type != "meta":
            m.reset_running_stats()
    was_training = module.training
    module.train()
    seen = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            seen += len(x)
            for m in norms:
                m.momentum = len(x) / seen
            module(x)
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        module.train(was_training)
    module.eval()
    if seen:
        setattr(module, BN_CALIBRATED, True)
    return seen


def _first_device(module: nn.Module) -> torch.device:
    tensor = next(iter([*module.parameters(), *module.buffers()]), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def calibration_batches(dataset: Dataset, images: int, batch_size: int = 128,
                        seed: int = 0) -> list[torch.Tensor]:
    """``images`` training images in a seeded random order, in batches of nearly equal
    size (at most ``batch_size``; never a short last batch). Any data set of ``(x, y)``
    items; only the chosen items are read."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:images]
    count = -(-len(order) // batch_size)
    if not count:
        return []
    return [torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in part])
            for part in torch.tensor_split(order, count)]


@torch.no_grad()
def accuracy(module: torch.nn.Module, dataset: Dataset, batch_size: int = 256,
             device: str | torch.device | None = None, num_workers: int = 0) -> float:
    """Top-1 accuracy of ``module`` (in eval mode) on a data set of ``(x, y)`` items, run
    on ``device`` (default: where the module's weights are)."""
    from supernets.data import make_loader

    module.eval()
    device = torch.device(device) if device is not None else _first_device(module)
    loader = make_loader(dataset, batch_size, shuffle=False, drop_last=False,
                         num_workers=num_workers, pin_memory=device.type == "cuda")
    correct = 0
    for x, y in loader:
        out = module(x.to(device, non_blocking=True))
        correct += (out.argmax(1).cpu() == y).sum().item()
    return correct / max(1, len(dataset))


def evaluate_subnet(supernet: OFASupernet, arch: Mapping[str, Any], data: DataSplits | Dataset,
                    split: str | Dataset = "val", calib_images: int = 256, batch_size: int = 256,
                    seed: int = 0, device: str | torch.device | None = None) -> float:
    """Accuracy of subnet ``arch`` with inherited weights.

    Activates ``arch``, recalibrates batch-norm statistics on ``calib_images``
    training images (``data.train``, or ``data`` itself when it is one data set),
    and measures top-1 accuracy on ``split`` (a split name of ``data``, or a data set).
    The supernet is left in eval mode with the recalibrated statistics.

    Args:
        device: where to run (``"cpu"``, ``"cuda:0"``, a ``torch.device``; the supernet
            is moved there); default: where the supernet's weights are.
    """
    if isinstance(data, DataSplits) and not isinstance(split, str):
        calib, target = data.train, split
    elif isinstance(data, DataSplits):
        if split not in ("train", "val", "test"):
            raise SupernetError(f"split {split!r} unknown; valid: train, val, test")
        calib, target = data.train, getattr(data, split)
    else:
        calib = target = data
    if device is not None:
        supernet.to(device)
    device = _first_device(supernet)
    supernet.set_active(arch)
    if calib_images > 0:
        batches = [b.to(device) for b in calibration_batches(calib, calib_images, seed=seed)]
        supernet.recalibrate_bn(batches)
    return accuracy(supernet.eval(), target, batch_size, device)
