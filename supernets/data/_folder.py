"""``image_folder``: JPEG/PNG images of any size in a folder per class, decoded lazily.

Layouts (class names are folder names, sorted; labels are their positions)::

    root/<class>/<image>                one folder: val and test are seeded fractions
    root/train/<class>/<image>          train/ alone: the same, from train/
    root/train/<class>/... + root/val/<class>/...
                                        val/ is the test split, val_fraction of train/
                                        the validation split

Only the file list is read when the data set loads; each item is decoded with Pillow
when it is read (as RGB), then cropped and resized to ``image_size`` (random-resized
crop and flip for training, a centre crop for evaluation), so images of mixed sizes
are fine and no image is ever held in memory for longer than a batch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from supernets.data._augment import CenterCrop, RandomResizedCrop, TransformedDataset
from supernets.data._config import STATS, DataConfig, DataError, DataSplits, split_indices

EXTENSIONS = (".jpg", ".jpeg", ".png")


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _classes(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files, for every class folder of ``folder``."""
    dirs = [p for p in _visible(folder) if p.is_dir()]
    if not dirs:
        raise DataError(f"image_folder {folder}: no class folders (expects {folder}/<class>/<image>.png or .jpg)")
    out = {}
    for d in dirs:
        files = [p for p in _visible(d) if p.is_file() and p.suffix.lower() in EXTENSIONS]
        if not files:
            raise DataError(f"image_folder: class folder {d} holds no JPEG or PNG images")
        out[d.name] = files
    return out


def _decode(path: str, min_side: int = 0) -> torch.Tensor:
    """The image at ``path`` as a uint8 3 x H x W RGB tensor.

    ``min_side``: a JPEG is decoded at the smallest of its 1/2, 1/4, 1/8 scales whose
    shorter side is still at least this (a 12-megapixel photo for 128-pixel training
    crops decodes several times faster); other formats decode at full size.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with the project's dependencies
        raise DataError("image_folder needs Pillow to decode images: pip install pillow") from None
    try:
        with Image.open(path) as img:
            if min_side and img.format == "JPEG":
                ratio = min(1.0, min_side / max(1, min(img.size)))
                img.draft(img.mode, (math.ceil(img.size[0] * ratio), math.ceil(img.size[1] * ratio)))
            pixels = np.array(img.convert("RGB"))  # H x W x 3 uint8; convert() decodes
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"image_folder: cannot read image {path}: {exc}") from None
    return torch.from_numpy(pixels).permute(2, 0, 1)


class ImageFiles(Dataset):
    """Items ``(uint8 3 x H x W image, int64 label)`` decoded from their files when read
    (JPEGs at a reduced scale whose shorter side is at least ``min_side``)."""

    def __init__(self, items: list[tuple[str, int]], min_side: int = 0) -> None:
        self.items, self.min_side = items, min_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.items[index]
        return _decode(path, self.min_side), torch.tensor(label, dtype=torch.int64)


def _layout(root: Path) -> tuple[dict[str, list[Path]], dict[str, list[Path]] | None]:
    """(training classes, test classes or None) of the folder ``root``."""
    if not root.is_dir():
        raise DataError(f"image_folder root {root} does not exist or is not a folder")
    if not (root / "train").is_dir():
        return _classes(root), None
    others = [p.name for p in _visible(root) if p.is_dir() and p.name not in ("train", "val")]
    if others:
        raise DataError(f"image_folder {root}: has train/ and also the folders {others}; use "
                        "either train/ (and val/) or one folder per class")
    train = _classes(root / "train")
    if not (root / "val").is_dir():
        return train, None
    test = _classes(root / "val")
    if set(train) != set(test):
        raise DataError(f"image_folder {root}: train/ and val/ have different classes: only in "
                        f"train/: {sorted(set(train) - set(test))}, only in val/: {sorted(set(test) - set(train))}")
    return train, test


def _items(classes: dict[str, list[Path]], names: list[str]) -> list[tuple[str, int]]:
    return [(str(path), label) for label, name in enumerate(names) for path in classes[name]]


def load_image_folder(config: DataConfig, seed: int) -> DataSplits:
    """``image_folder``: 3 x ``image_size`` x ``image_size`` RGB items, read lazily."""
    root = Path(config.root or "")
    train_classes, test_classes = _layout(root)
    names = sorted(train_classes)
    items = _items(train_classes, names)
    test_fraction = config.test_fraction if test_classes is None else 0.0
    train_idx, val_idx, test_idx = split_indices(len(items), seed, config.val_fraction, test_fraction)
    if len(train_idx) == 0:
        raise DataError(f"image_folder {root}: {len(items)} images leave none for training")
    mean, std = (config.mean, config.std) if config.mean is not None else STATS["image_folder"]
    if len(mean) != 3:
        raise DataError(f"data.mean: image_folder images are RGB (3 channels), got {len(mean)} values")
    evaluate = CenterCrop(config.image_size, config.crop_fraction, tuple(mean), tuple(std))
    # shorter sides to decode at (JPEG): enough that the smallest crop keeps full detail
    eval_side = math.ceil(config.image_size / config.crop_fraction)
    train_side = math.ceil(config.image_size / math.sqrt(config.crop_scale[0] * 3 / 4))
    train_items = [items[i] for i in train_idx]
    if config.augments:
        train = TransformedDataset(ImageFiles(train_items, train_side), RandomResizedCrop(
            config.image_size, tuple(config.crop_scale), config.flip, tuple(mean), tuple(std)), augments=True)
    else:
        train = TransformedDataset(ImageFiles(train_items, eval_side), evaluate, augments=False)
    test_items = _items(test_classes, names) if test_classes is not None else [items[i] for i in test_idx]
    val = TransformedDataset(ImageFiles([items[i] for i in val_idx], eval_side), evaluate, augments=False)
    test = TransformedDataset(ImageFiles(test_items, eval_side), evaluate, augments=False)
    size = config.image_size
    return DataSplits("image_folder", train, val, test, (3, size, size), len(names), tuple(names))
