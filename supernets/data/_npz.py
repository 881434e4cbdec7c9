"""``npz``: images and labels from a user's ``.npz`` file (``np.savez``), held in memory.

Arrays: ``x`` (N x H x W, N x C x H x W or N x H x W x C with 1-4 channels; uint8 pixels
are scaled to [0, 1], floats are taken as they are) and ``y`` (N integer labels), and
optionally ``x_test`` / ``y_test`` as the test split. Nothing is unpickled: object
(ragged) arrays are refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from supernets.data._augment import augment_in_memory
from supernets.data._config import DataConfig, DataError, DataSplits, split_indices


def _array(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as exc:  # object arrays need pickle, which is off
        raise DataError(f"npz file {path}: array {name!r} cannot be read as a numeric array "
                        f"(ragged or holding objects?): {exc}") from None


def _images(x: np.ndarray, path: Path, name: str) -> np.ndarray:
    """float32 N x C x H x W from one of the accepted layouts."""
    where = f"npz file {path}: array {name!r}"
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] > 4 and x.shape[3] <= 4:
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    elif x.ndim != 4 or x.shape[1] > 4:
        raise DataError(f"{where} has shape {x.shape}; expected N x H x W, N x C x H x W or "
                        "N x H x W x C with 1 to 4 channels")
    if len(x) == 0:
        raise DataError(f"{where} holds no images")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x, dtype=np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{where} has dtype {x.dtype}; expected uint8 (0-255) or float pixels")
    if not np.isfinite(x).all():
        raise DataError(f"{where} holds NaN or infinite values")
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(y: np.ndarray, n: int, path: Path, name: str) -> np.ndarray:
    where = f"npz file {path}: array {name!r}"
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{where} has shape {y.shape}; expected ({n},), one label per image")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where} has dtype {y.dtype}; expected integer class labels")
    if (y < 0).any():
        raise DataError(f"{where} holds negative labels (classes are 0 .. K-1)")
    return y.astype(np.int64)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"npz file {path}: not a readable .npz file: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"npz file {path}: holds one array, not named arrays (write it with np.savez)")
    with archive:
        names = set(archive.files)
        for need in ("x", "y"):
            if need not in names:
                raise DataError(f"npz file {path}: no array {need!r}; it has {sorted(names)}")
        if ("x_test" in names) != ("y_test" in names):
            raise DataError(f"npz file {path}: give both x_test and y_test, or neither")
        x = _images(_array(archive, "x", path), path, "x")
        y = _labels(_array(archive, "y", path), len(x), path, "y")
        if "x_test" not in names:
            return x, y, None, None
        xt = _images(_array(archive, "x_test", path), path, "x_test")
        if xt.shape[1:] != x.shape[1:]:
            raise DataError(f"npz file {path}: array 'x_test' images are {xt.shape[1:]}, "
                            f"but 'x' images are {x.shape[1:]}")
        return x, y, xt, _labels(_array(archive, "y_test", path), len(xt), path, "y_test")


def load_npz(config: DataConfig, seed: int) -> DataSplits:
    """``npz``: the arrays of the file ``config.root``, normalised per channel with
    ``config.mean``/``std`` or, by default, the training split's own statistics."""
    path = Path(config.root or "")
    x, y, xt, yt = _read(path)
    test_fraction = config.test_fraction if xt is None else 0.0
    train_idx, val_idx, test_idx = split_indices(len(x), seed, config.val_fraction, test_fraction)
    channels = x.shape[1]
    if config.mean is not None:
        if len(config.mean) != channels:
            raise DataError(f"data.mean: {len(config.mean)} values for {channels}-channel images in {path}")
        mean, std = np.array(config.mean, np.float32), np.array(config.std, np.float32)
    else:  # the training split's statistics (never the held-out images')
        pixels = x[train_idx]
        mean, std = pixels.mean(axis=(0, 2, 3), dtype=np.float64), pixels.std(axis=(0, 2, 3), dtype=np.float64)
        mean, std = mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
    m, s = mean[:, None, None], std[:, None, None]

    def tensors(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy((images - m) / s), torch.from_numpy(labels))

    train = augment_in_memory(tensors(x[train_idx], y[train_idx]), config.augments, config.pad, config.flip)
    test = tensors(xt, yt) if xt is not None else tensors(x[test_idx], y[test_idx])
    num_classes = int(max(y.max(), yt.max() if yt is not None else 0)) + 1
    return DataSplits("npz", train, tensors(x[val_idx], y[val_idx]), test,
                      tuple(x.shape[1:]), num_classes)
