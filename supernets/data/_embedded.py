"""The embedded data sets: scikit-learn's 8x8 ``digits`` and the larger ``digits_aug``.

``digits_aug`` is made from ``digits`` deterministically (seeded affine distortions and
pixel noise at 16x16, several copies per image, split by source image so no digit leaks
between splits); it widens the accuracy spread between architectures and shrinks
evaluation noise, which ranking benchmarks need. Pixels are in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from supernets.data._augment import augment_in_memory
from supernets.data._config import DataConfig, DataSplits, split_indices


def _tensors(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.from_numpy(x[idx]).float(), torch.from_numpy(y[idx]).long())


def _digits_tensors(config: DataConfig, seed: int) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0 - 0.5) / 0.5  # (N, 8, 8) in [-1, 1]
    x, y = x[:, None], bunch.target.astype(np.int64)  # (N, 1, 8, 8)
    train, val, test = split_indices(len(x), seed, config.val_fraction, config.test_fraction)
    return _tensors(x, y, train), _tensors(x, y, val), _tensors(x, y, test)


def load_digits(config: DataConfig, seed: int) -> DataSplits:
    """``digits``: 1 x 8 x 8 images of 10 classes."""
    train, val, test = _digits_tensors(config, seed)
    train = augment_in_memory(train, config.augments, config.pad, config.flip)
    return DataSplits("digits", train, val, test, (1, 8, 8), 10)


def _distort(x: torch.Tensor, copies: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``copies`` randomly distorted versions of every image of ``x`` (N, 1, 8, 8), at ``size``."""
    up = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    up = up.repeat(copies, 1, 1, 1)
    n = up.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    angle = uniform(-25.0, 25.0) * (torch.pi / 180.0)
    scale = uniform(0.8, 1.15)
    shear = uniform(-0.25, 0.25)
    tx, ty = uniform(-0.2, 0.2), uniform(-0.2, 0.2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(up.shape), align_corners=False)
    # Background is -1 (pixels are in [-1, 1]); shift so zero padding means background.
    out = F.grid_sample(up + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
    out = out + 0.3 * torch.randn(out.shape, generator=gen)
    return out.clamp_(-1.5, 1.5)


def load_digits_aug(config: DataConfig, seed: int, size: int = 16) -> DataSplits:
    """``digits_aug``: ``config.copies`` distorted 1 x 16 x 16 copies of every digit.

    The split by source image does not depend on ``copies``, so a larger held-out set
    with more copies shares no digit with the train split of any other number of copies.
    """
    splits = []
    for offset, part in enumerate(_digits_tensors(config, seed)):
        x, y = part.tensors
        gen = torch.Generator().manual_seed(10_007 * seed + offset)
        splits.append(TensorDataset(_distort(x, config.copies, size, gen), y.repeat(config.copies)))
    train = augment_in_memory(splits[0], config.augments, config.pad, config.flip)
    return DataSplits("digits_aug", train, splits[1], splits[2], (1, size, size), 10)
