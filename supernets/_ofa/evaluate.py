"""Evaluate a subnet of an OFA supernet with inherited weights (after BN recalibration)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import TensorDataset

from supernets._ofa.supernet import OFASupernet
from supernets.data import DataSplits
from supernets.errors import SupernetError

__all__ = ["accuracy", "calibration_batches", "evaluate_subnet"]


def calibration_batches(dataset: TensorDataset, images: int, batch_size: int = 128,
                        seed: int = 0) -> list[torch.Tensor]:
    """``images`` training images in a seeded random order, in batches of nearly equal
    size (at most ``batch_size``; never a short last batch)."""
    x = dataset.tensors[0]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:images]
    count = -(-len(order) // batch_size)
    return [x[part] for part in torch.tensor_split(order, count)] if count else []


@torch.no_grad()
def accuracy(module: torch.nn.Module, dataset: TensorDataset, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``module`` (in eval mode) on a dataset."""
    module.eval()
    x, y = dataset.tensors[:2]
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += (module(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / max(1, len(x))


def evaluate_subnet(supernet: OFASupernet, arch: Mapping[str, Any], data: DataSplits | TensorDataset,
                    split: str | TensorDataset = "val", calib_images: int = 256, batch_size: int = 256,
                    seed: int = 0) -> float:
    """Accuracy of subnet ``arch`` with inherited weights.

    Activates ``arch``, recalibrates batch-norm statistics on ``calib_images``
    training images (``data.train``, or ``data`` itself when it is one data set),
    and measures top-1 accuracy on ``split`` (a split name of ``data``, or a data set). The supernet is left in eval mode with
    the recalibrated statistics.
    """
    if isinstance(data, DataSplits) and isinstance(split, TensorDataset):
        calib, target = data.train, split
    elif isinstance(data, DataSplits):
        if split not in ("train", "val", "test"):
            raise SupernetError(f"split {split!r} unknown; valid: train, val, test")
        calib, target = data.train, getattr(data, split)
    else:
        calib = target = data
    supernet.set_active(arch)
    if calib_images > 0:
        supernet.recalibrate_bn(calibration_batches(calib, calib_images, seed=seed))
    return accuracy(supernet.eval(), target, batch_size)
