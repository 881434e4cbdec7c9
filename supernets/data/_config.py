"""The ``data:`` section of an experiment, the splits it loads to, and their shared rules."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import Dataset

__all__ = ["DATASETS", "DataConfig", "DataError", "DataSplits"]

DATASETS = ("digits", "digits_aug", "cifar10", "image_folder", "npz")

#: Data sets held in memory as tensors (all but the streamed ``image_folder``).
IN_MEMORY = ("digits", "digits_aug", "cifar10", "npz")

#: Per-data-set normalisation (mean, std) per channel, where one is known in advance.
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "image_folder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet's
}


#: ``image_folder``'s settings and their defaults (``None`` in a ``DataConfig`` of any other data set).
_IMAGE_FOLDER_DEFAULTS = {"image_size": 224, "crop_scale": (0.08, 1.0), "crop_fraction": 0.875}


class DataError(ValueError):
    """A data set cannot be loaded (unknown name, bad settings, missing or malformed files)."""


@dataclass(frozen=True)
class DataConfig:
    """The data set of an experiment (its ``data:`` section); the split seed is the experiment's.

    Args:
        name: one of ``DATASETS``. ``digits`` and ``digits_aug`` are embedded; ``cifar10``
            reads the python batches under ``root``; ``image_folder`` streams JPEG/PNG
            files from ``root`` (``root/<class>/*`` or ``root/train/<class>/*`` with an
            optional ``root/val/<class>/*``); ``npz`` reads the arrays ``x``, ``y`` (and
            optional ``x_test``, ``y_test``) of the file ``root``.
        root: a local folder (or the ``.npz`` file), relative to the experiment file.
        image_size: side of the square images ``image_folder`` yields (train and eval;
            default 224). ``image_size``, ``crop_scale`` and ``crop_fraction`` apply to
            ``image_folder`` only, ``pad`` to the in-memory data sets only: set for
            another data set, they are refused.
        val_fraction: share of the training images held out for validation.
        test_fraction: share held out for testing where the data set has no test split
            of its own (``cifar10``'s ``test_batch``, ``image_folder``'s ``val/`` and
            ``npz``'s ``x_test`` are used as they are, and this is then ignored).
        augment: augment the training split (``None``: on for ``cifar10`` and
            ``image_folder``, off for ``digits``, ``digits_aug`` and ``npz``). In-memory
            data sets get pad-and-crop plus flip, ``image_folder`` a random-resized crop
            plus flip. Validation and test items are never augmented.
        pad: pixels of zero padding before the random crop (``None``: image side // 8,
            i.e. 4 for 32x32).
        crop_scale: area range (of the image) of ``image_folder``'s random-resized crop
            (default 0.08 to 1).
        crop_fraction: evaluation resizes the shorter side to ``image_size / crop_fraction``
            and takes the centre ``image_size`` square (``image_folder``; default 0.875).
        flip: random horizontal flips in training augmentation.
        mean, std: per-channel normalisation after scaling pixels to [0, 1] (``None``:
            CIFAR-10's for ``cifar10``, ImageNet's for ``image_folder``, computed on the
            training split for ``npz``). ``digits``/``digits_aug`` are fixed to [-1, 1].
        copies: distorted copies per image of ``digits_aug``.
        num_workers: loader worker processes (``None``: 0 for in-memory data sets, up to
            8 for ``image_folder``).
        pin_memory: page-locked batches for faster copies to a GPU (``None``: when CUDA
            is used).
    """

    name: str = "digits"
    root: str | None = field(default=None, metadata={"path": "file"})
    image_size: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    augment: bool | None = None
    pad: int | None = None
    crop_scale: tuple[float, float] | None = None
    crop_fraction: float | None = None
    flip: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    copies: int = 3
    num_workers: int | None = None
    pin_memory: bool | None = None

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise DataError(f"name: unknown data set {self.name!r}; valid: {', '.join(DATASETS)}")
        self._check_applies()
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            _check(0.0 <= value < 1.0, f"{key}: must be in [0, 1), got {value}")
        _check(self.val_fraction + self.test_fraction < 1.0,
               f"val_fraction: val_fraction + test_fraction must be < 1, got "
               f"{self.val_fraction} + {self.test_fraction}")
        _check(self.pad is None or self.pad >= 0, f"pad: must be >= 0, got {self.pad}")
        self._check_stats()
        _check(isinstance(self.copies, int) and self.copies >= 1,
               f"copies: must be a positive integer, got {self.copies!r}")
        _check(self.num_workers is None or self.num_workers >= 0,
               f"num_workers: must be >= 0, got {self.num_workers}")

    def _check_applies(self) -> None:
        """Settings of one kind of data set are refused for the others (never ignored);
        ``image_folder``'s unset settings take their defaults here."""
        embedded = self.name in ("digits", "digits_aug")
        _check(self.root is None or not embedded, f"root: {self.name} is embedded and reads no files")
        _check(self.root is not None or embedded,
               f"root: data set {self.name!r} needs a local path (data.root); nothing is downloaded")
        _check(self.copies == 3 or self.name == "digits_aug",
               f"copies: copies={self.copies} applies only to digits_aug, not to {self.name!r}")
        for key, default in _IMAGE_FOLDER_DEFAULTS.items():
            if self.name != "image_folder":
                _check(getattr(self, key) is None, f"{key}: applies only to image_folder, not to {self.name!r}")
            elif getattr(self, key) is None:
                object.__setattr__(self, key, default)
        if self.name != "image_folder":
            return
        _check(self.pad is None, "pad: applies to in-memory data sets; image_folder crops by crop_scale")
        _check(self.image_size >= 1, f"image_size: must be >= 1, got {self.image_size}")
        scale = tuple(self.crop_scale)
        _check(len(scale) == 2 and 0.0 < scale[0] <= scale[1] <= 1.0,
               f"crop_scale: must be [low, high] with 0 < low <= high <= 1, got {list(scale)}")
        _check(0.0 < self.crop_fraction <= 1.0, f"crop_fraction: must be in (0, 1], got {self.crop_fraction}")

    def _check_stats(self) -> None:
        if self.mean is None and self.std is None:
            return
        _check(self.name not in ("digits", "digits_aug"),
               f"mean: {self.name} is fixed to [-1, 1]; mean and std apply to cifar10, image_folder, npz")
        _check(self.mean is not None and self.std is not None, "mean: give both mean and std, or neither")
        _check(len(self.mean) == len(self.std) and len(self.mean) >= 1,
               f"std: needs one value per channel, like mean ({len(self.mean)}), got {len(self.std)}")
        _check(all(s > 0 for s in self.std), f"std: every value must be > 0, got {list(self.std)}")

    @property
    def augments(self) -> bool:
        """Whether the training split is augmented (``augment`` or the data set's default)."""
        return self.augment if self.augment is not None else self.name in ("cifar10", "image_folder")

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the items, where the settings alone decide it (``None`` for ``npz``,
        whose file decides), so an experiment can be checked against its space before
        any data is read."""
        return {"digits": (1, 8, 8), "digits_aug": (1, 16, 16), "cifar10": (3, 32, 32),
                "image_folder": (3, self.image_size, self.image_size)}.get(self.name)

    def loader_options(self, cuda: bool) -> dict[str, Any]:
        """``num_workers`` and ``pin_memory`` for :func:`make_loader`, defaults resolved.

        Args:
            cuda: whether the batches go to a CUDA device.
        """
        workers = self.num_workers
        if workers is None:
            workers = 0 if self.name in IN_MEMORY else min(8, max(1, (os.cpu_count() or 2) - 1))
        pin = cuda if self.pin_memory is None else self.pin_memory
        return {"num_workers": workers, "pin_memory": pin}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


@dataclass(frozen=True)
class DataSplits:
    """Train / validation / test splits of one data set.

    Each split is a map-style ``torch.utils.data.Dataset`` of ``(x, y)``: ``x`` float32
    ``input_shape`` (C x H x W, normalised), ``y`` an int64 scalar. In-memory splits
    that are not augmented are ``TensorDataset``s; an augmented training split draws a
    new augmentation per item and epoch (see :func:`make_loader`).
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    input_shape: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...] = ()
    config: DataConfig | None = None

    def settings(self) -> dict[str, Any]:
        """The data settings as plain JSON data (``{}`` when not loaded from a config):
        ``DataConfig(**settings)`` loads the same data again."""
        if self.config is None:
            return {}
        return json.loads(json.dumps(dataclasses.asdict(self.config)))


def split_indices(n: int, seed: int, val_fraction: float, test_fraction: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) indices of ``n`` items: one seeded permutation, test then val first."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(n * test_fraction), int(n * val_fraction)
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]
