"""Data sets for training and evaluation, all read locally: nothing downloads.

``digits`` (scikit-learn's bundled 8x8 handwritten digits) is the embedded default and
``digits_aug`` a larger, harder data set made from it. ``cifar10`` reads the standard
python batches from a local folder, ``npz`` a user's arrays, and ``image_folder`` streams
a user's JPEG/PNG images (a folder per class) from disk with ImageNet-style
augmentation. Every split is a map-style ``torch.utils.data.Dataset`` of normalised
float32 ``C x H x W`` images and int64 labels; :func:`make_loader` reads one through a
``DataLoader`` the same way on every data-parallel rank.

Example:
    >>> from supernets.data import DataConfig, load_data, make_loader     # doctest: +SKIP
    >>> data = load_data(DataConfig("image_folder", root="my_images", image_size=64), seed=0)
    >>> for x, y in make_loader(data.train, 32, seed=0, epoch=0, num_workers=4):
    ...     ...                                                   # x: 32 x 3 x 64 x 64
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supernets.data._cifar import load_cifar10
from supernets.data._config import DATASETS, DataConfig, DataError, DataSplits
from supernets.data._embedded import load_digits, load_digits_aug
from supernets.data._folder import load_image_folder
from supernets.data._loader import make_loader
from supernets.data._npz import load_npz

__all__ = ["DATASETS", "DataConfig", "DataError", "DataSplits", "load_data", "load_dataset", "make_loader"]

_LOADERS: dict[str, Callable[[DataConfig, int], DataSplits]] = {
    "digits": load_digits,
    "digits_aug": load_digits_aug,
    "cifar10": load_cifar10,
    "image_folder": load_image_folder,
    "npz": load_npz,
}


def load_data(config: DataConfig, seed: int = 0) -> DataSplits:
    """The train / val / test splits of the data set ``config`` describes.

    Args:
        config: the experiment's ``data:`` section.
        seed: split seed (the experiment's ``seed``); the same seed gives the same splits.

    Raises:
        DataError: missing or malformed files, naming the file or folder (an image that
            cannot be decoded is reported when it is read, naming the file).
    """
    return dataclasses.replace(_LOADERS[config.name](config, seed), config=config)


def load_dataset(name: str = "digits", root: str | Path | None = None, seed: int = 0,
                 val_frac: float = 0.15, test_frac: float = 0.15, copies: int = 3,
                 **options: Any) -> DataSplits:
    """:func:`load_data` with the settings as arguments (the same defaults).

    Args:
        name: one of ``DATASETS``.
        root: local folder (or ``.npz`` file) for data sets that are not embedded.
        seed: split seed.
        val_frac, test_frac: split fractions (``DataConfig.val_fraction`` and
            ``test_fraction``; a data set's own test split takes precedence).
        copies: distorted copies per image for ``"digits_aug"``.
        **options: any other ``DataConfig`` field (``image_size``, ``augment``, ...).
    """
    valid = [f.name for f in dataclasses.fields(DataConfig)
             if f.name not in ("name", "root", "val_fraction", "test_fraction", "copies")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DataError(f"unknown data option(s) {unknown}; valid: {', '.join(valid)}")
    config = DataConfig(name=name, root=None if root is None else str(root), val_fraction=val_frac,
                        test_fraction=test_frac, copies=copies, **options)
    return load_data(config, seed)
