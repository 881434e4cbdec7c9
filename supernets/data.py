"""Data sets for training and evaluation, all local: no downloads.

``digits`` (scikit-learn's bundled 8x8 handwritten digits) is the embedded
default. ``digits_aug`` is a harder, larger data set made from it
deterministically (seeded affine distortions and pixel noise at 16x16, several
copies per image, split by source image so no digit leaks between splits); it
widens the accuracy spread between architectures and shrinks evaluation noise,
which ranking benchmarks need. ``cifar10`` reads the standard python-pickle batches from a local
folder a user already has (``data_batch_1`` ... ``test_batch``), without
torchvision and without downloading.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, TensorDataset

__all__ = ["DATASETS", "DataConfig", "DataError", "DataSplits", "load_dataset", "make_loader"]

DATASETS = ("digits", "digits_aug", "cifar10")


class DataError(ValueError):
    """A data set cannot be loaded (unknown name, missing or malformed local files)."""


@dataclass(frozen=True)
class DataConfig:
    """The data set of an experiment (its ``data:`` section).

    ``digits`` and ``digits_aug`` are embedded; ``cifar10`` reads the standard python
    batches from ``root`` (a local folder, relative to the experiment file). The split
    seed is the experiment's ``seed``.
    """

    name: str = "digits"
    root: str | None = field(default=None, metadata={"path": "file"})

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise DataError(f"name: unknown data set {self.name!r}; valid: {', '.join(DATASETS)}")


@dataclass(frozen=True)
class DataSplits:
    """Train / validation / test tensors of one data set (images N x C x H x W, float32)."""

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    input_shape: tuple[int, int, int]
    num_classes: int


def _split(x: np.ndarray, y: np.ndarray, seed: int, val_frac: float, test_frac: float):
    order = np.random.default_rng(seed).permutation(len(x))
    n_test, n_val = int(len(x) * test_frac), int(len(x) * val_frac)
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]

    def ds(idx: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy(x[idx]).float(), torch.from_numpy(y[idx]).long())

    return ds(train), ds(val), ds(test)


def _digits(seed: int, val_frac: float, test_frac: float) -> DataSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0 - 0.5) / 0.5  # (N, 8, 8) in [-1, 1]
    x = x[:, None]  # (N, 1, 8, 8)
    train, val, test = _split(x, bunch.target.astype(np.int64), seed, val_frac, test_frac)
    return DataSplits("digits", train, val, test, (1, 8, 8), 10)


def _distort(x: torch.Tensor, copies: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``copies`` randomly distorted versions of every image of ``x`` (N, 1, 8, 8), at ``size``."""
    import torch.nn.functional as F

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


def _digits_aug(seed: int, val_frac: float, test_frac: float, copies: int = 3,
                size: int = 16) -> DataSplits:
    base = _digits(seed, val_frac, test_frac)
    splits = []
    for offset, part in enumerate((base.train, base.val, base.test)):
        x, y = part.tensors
        gen = torch.Generator().manual_seed(10_007 * seed + offset)
        splits.append(TensorDataset(_distort(x, copies, size, gen), y.repeat(copies)))
    return DataSplits("digits_aug", *splits, (1, size, size), 10)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays and builtin containers only (no other globals)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("numpy", "ndarray"), ("numpy", "dtype"),
                ("_codecs", "encode")}  # how protocol-2 pickles written by Python 3 store bytes

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name} (only numpy arrays are allowed)")


def _cifar10(root: str | Path | None, seed: int, val_frac: float) -> DataSplits:
    if root is None:
        raise DataError("data set 'cifar10' needs a local path (data.root); nothing is downloaded")
    folder = Path(root)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"cifar10 folder {folder} lacks {missing} (expects the python-pickle batches)")

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as fh:
            try:  # pickles by format: only numpy arrays and plain containers are let through
                batch = _ArrayUnpickler(fh, encoding="bytes").load()
            except (pickle.UnpicklingError, EOFError, ValueError) as exc:
                raise DataError(f"cifar10 batch {folder / name}: {exc}") from None
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            return data, np.asarray(batch[b"labels"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"cifar10 batch {folder / name}: not a CIFAR-10 batch "
                            f"(needs b'data' N x 3072 uint8 and b'labels'): {exc}") from None

    mean = np.array([0.4914, 0.4822, 0.4465], np.float32)[:, None, None]
    std = np.array([0.2470, 0.2435, 0.2616], np.float32)[:, None, None]
    parts = [read(n) for n in names[:5]]
    x = (np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0 - mean) / std
    y = np.concatenate([p[1] for p in parts])
    xt, yt = read("test_batch")
    xt = (xt.astype(np.float32) / 255.0 - mean) / std
    train, val, _ = _split(x, y, seed, val_frac, 0.0)
    test = TensorDataset(torch.from_numpy(xt), torch.from_numpy(yt))
    return DataSplits("cifar10", train, val, test, (3, 32, 32), 10)


def load_dataset(name: str = "digits", root: str | Path | None = None, seed: int = 0,
                 val_frac: float = 0.15, test_frac: float = 0.15, copies: int = 3) -> DataSplits:
    """Load a data set split into train / val / test with a seeded permutation.

    Args:
        name: ``"digits"`` (embedded), ``"digits_aug"`` (embedded, 3 distorted
            16x16 copies per image, split by source image) or ``"cifar10"``
            (needs ``root``).
        root: local folder for data sets that are not embedded.
        seed: split seed.
        val_frac, test_frac: split fractions (CIFAR-10 keeps its own test set).
        copies: distorted copies per image for ``"digits_aug"``. The split by source
            image does not depend on it, so a larger held-out set with more copies
            (for less noisy accuracy measurements) shares no digit with the train
            split of any other number of copies.
    """
    if not isinstance(copies, int) or copies < 1:
        raise DataError(f"copies must be a positive integer, got {copies!r}")
    if copies != 3 and name != "digits_aug":
        raise DataError(f"copies={copies} applies only to digits_aug, not to {name!r}")
    if name == "digits":
        return _digits(seed, val_frac, test_frac)
    if name == "digits_aug":
        return _digits_aug(seed, val_frac, test_frac, copies=copies)
    if name == "cifar10":
        return _cifar10(root, seed, val_frac)
    raise DataError(f"unknown data set {name!r}; valid data sets: {', '.join(DATASETS)}")


class _Skip(Sampler[int]):
    """The indices of ``sampler`` after the first ``skip`` (nothing skipped is read)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return iter(list(self.sampler)[self.skip:])

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)  # type: ignore[arg-type]


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                epoch: int = 0, start_batch: int = 0, rank: int = 0, world_size: int = 1,
                drop_last: bool = True, num_workers: int = 0, pin_memory: bool = False
                ) -> DataLoader:
    """A ``DataLoader`` over ``dataset`` for one epoch, the same on every process.

    The order is torch's ``DistributedSampler`` with ``seed`` and ``epoch``: every rank
    draws the same permutation and takes every ``world_size``-th index from ``rank``, so
    ``world_size`` processes with ``batch_size`` each see, step for step, the samples
    that one process with ``world_size * batch_size`` sees. ``start_batch`` skips the
    epoch's first batches without reading them (resume mid-epoch).

    Args:
        batch_size: samples per batch of this process.
        shuffle: a seeded permutation per epoch (False: the data set's order).
        drop_last: drop the epoch's last incomplete batch (and the samples that do not
            divide evenly among the ranks).
        num_workers, pin_memory: as ``torch.utils.data.DataLoader``; with workers they
            persist across the epoch's iterations.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    sampler: Sampler[int] = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                               shuffle=shuffle, seed=seed, drop_last=drop_last)
    sampler.set_epoch(epoch)
    if start_batch:
        sampler = _Skip(sampler, start_batch * batch_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0)
