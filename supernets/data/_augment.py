"""Training augmentation and evaluation transforms in plain torch, seeded per item.

A random transform draws from a ``random.Random`` seeded by (seed, epoch, index), so
an item's augmentation depends on neither the number of loader workers nor the order
in which they read: a run is reproducible and resumes mid-epoch with the same batches.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from supernets.data._config import DataError

__all__ = ["CenterCrop", "PadCropFlip", "RandomResizedCrop", "TransformedDataset", "item_generator"]

#: ``transform(x, rng) -> x``; deterministic transforms ignore ``rng``. The transforms
#: below are picklable objects (not closures) so that loader workers started by
#: ``spawn`` (macOS, Windows) receive them.
Transform = Callable[[torch.Tensor, random.Random], torch.Tensor]

_MASK = (1 << 64) - 1


def item_generator(seed: int, epoch: int, index: int) -> random.Random:
    """A random stream of (seed, epoch, index) alone: one distinct integer key per triple.

    Python's ``random.Random`` is used rather than a ``torch.Generator`` because an item
    needs only a few draws: creating and drawing from it costs about a tenth.
    """
    return random.Random(((seed & _MASK) << 128) | ((epoch & _MASK) << 64) | (index & _MASK))


class TransformedDataset(Dataset):
    """The items ``(x, y)`` of ``base`` with ``transform`` applied to ``x``.

    A random transform (``augments=True``) draws from the stream of ``(seed, epoch,
    index)`` (:func:`item_generator`); :func:`make_loader` hands each epoch its own
    view through :meth:`at_epoch`, leaving this object unchanged.
    """

    def __init__(self, base: Dataset, transform: Transform, *, augments: bool,
                 seed: int = 0, epoch: int = 0) -> None:
        self.base, self.transform, self.augments = base, transform, augments
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base[index]
        rng = item_generator(self.seed, self.epoch, int(index)) if self.augments else _FIXED
        return self.transform(x, rng), y

    def at_epoch(self, seed: int, epoch: int) -> TransformedDataset:
        """A view of this data set whose random transforms are those of ``(seed, epoch)``."""
        view = copy.copy(self)
        view.seed, view.epoch = seed, epoch
        return view


_FIXED = random.Random(0)  # never drawn from: deterministic transforms only


def _flip(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    return x.flip(-1) if rng.random() < 0.5 else x


@dataclass(frozen=True)
class PadCropFlip:
    """Zero-pad ``pad`` pixels per side, crop the original size at random, maybe flip."""

    pad: int
    flip: bool

    def __call__(self, x: torch.Tensor, rng: random.Random) -> torch.Tensor:
        p = self.pad
        if p:  # the window (dy, dx) of the zero-padded image, written without padding it
            _, h, w = x.shape
            dy, dx = rng.randint(-p, p), rng.randint(-p, p)
            out = torch.zeros_like(x)
            out[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
                x[:, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
            x = out
        return _flip(x, rng) if self.flip else x


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """A uint8 or float C x h x w crop to float32 C x size x size in [0, 1] (antialiased)."""
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)[0]
    return x


def _normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (x - m) / s


def _centre_box(h: int, w: int, fraction: float) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centre square of side ``fraction`` x the shorter side."""
    side = max(1, round(min(h, w) * fraction))
    return (h - side) // 2, (w - side) // 2, side, side


_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))


@dataclass(frozen=True)
class RandomResizedCrop:
    """ImageNet-style training crop: a random box of ``scale`` of the area with aspect
    ratio 3/4..4/3, resized to ``size`` x ``size``, maybe flipped, then normalised."""

    size: int
    scale: tuple[float, float]
    flip: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, x: torch.Tensor, rng: random.Random) -> torch.Tensor:
        _, h, w = x.shape
        top, left, bh, bw = _centre_box(h, w, 1.0)  # when no draw fits
        for _ in range(10):
            area = h * w * rng.uniform(*self.scale)
            ratio = math.exp(rng.uniform(*_LOG_RATIO))
            cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                top, left, bh, bw = rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw
                break
        out = _resize(x[:, top:top + bh, left:left + bw], self.size)
        return _normalize(_flip(out, rng) if self.flip else out, self.mean, self.std)


@dataclass(frozen=True)
class CenterCrop:
    """Evaluation: the centre square of ``crop_fraction`` x the shorter side resized to
    ``size`` (the same as resizing the shorter side to ``size / crop_fraction`` and
    cutting the centre ``size`` square), normalised. Deterministic."""

    size: int
    crop_fraction: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, x: torch.Tensor, rng: random.Random) -> torch.Tensor:
        top, left, h, w = _centre_box(x.shape[1], x.shape[2], self.crop_fraction)
        return _normalize(_resize(x[:, top:top + h, left:left + w], self.size), self.mean, self.std)


def augment_in_memory(train: TensorDataset, augment: bool, pad: int | None, flip: bool) -> Dataset:
    """The training split of an in-memory data set, wrapped in pad-and-crop plus flip when
    ``augment`` (``pad`` ``None``: the image side // 8, at least 1)."""
    if not augment:
        return train
    side = min(train.tensors[0].shape[-2:])
    pad = max(1, side // 8) if pad is None else pad
    if pad >= side:
        raise DataError(f"data.pad: {pad} pixels of padding for {side}-pixel images; it must be smaller")
    return TransformedDataset(train, PadCropFlip(pad, flip), augments=True)
