"""``cifar10``: the standard python batches (``data_batch_1`` ... ``test_batch``) from a
local folder a user already has; read without torchvision and without downloading."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from supernets.data._augment import augment_in_memory
from supernets.data._config import STATS, DataConfig, DataError, DataSplits, split_indices

_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


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


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N x 3 x 32 x 32, int64 N) of one batch file."""
    with open(path, "rb") as fh:
        try:  # pickles by format: only numpy arrays and plain containers are let through
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataError(f"cifar10 batch {path}: {exc}") from None
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return data, np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"cifar10 batch {path}: not a CIFAR-10 batch "
                        f"(needs b'data' N x 3072 uint8 and b'labels'): {exc}") from None


def load_cifar10(config: DataConfig, seed: int) -> DataSplits:
    """``cifar10``: 3 x 32 x 32 images of 10 classes; ``test_batch`` is the test split."""
    folder = Path(config.root or "")
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    missing = [n for n in _NAMES if not (folder / n).is_file()]
    if missing:
        raise DataError(f"cifar10 folder {folder} lacks {missing} (expects the python-pickle batches)")
    mean, std = (config.mean, config.std) if config.mean is not None else STATS["cifar10"]
    if len(mean) != 3:
        raise DataError(f"data.mean: cifar10 has 3 channels, got {len(mean)} values")
    m, s = np.array(mean, np.float32)[:, None, None], np.array(std, np.float32)[:, None, None]

    def tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy((x.astype(np.float32) / 255.0 - m) / s), torch.from_numpy(y))

    parts = [_read(folder / n) for n in _NAMES[:5]]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    train_idx, val_idx, _ = split_indices(len(x), seed, config.val_fraction, 0.0)
    train = augment_in_memory(tensors(x[train_idx], y[train_idx]), config.augments, config.pad, config.flip)
    test = tensors(*_read(folder / "test_batch"))
    return DataSplits("cifar10", train, tensors(x[val_idx], y[val_idx]), test, (3, 32, 32), 10)
