"""Small real image data for the data tests: PNG/JPEG class folders and npz files from digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

CLASSES = ("one", "three", "zero")  # folder names; labels follow their sorted order


def digit_images(digit: int, count: int) -> list[np.ndarray]:
    """``count`` 8x8 images of ``digit`` as uint8 (0-255)."""
    bunch = load_digits()
    images = bunch.images[bunch.target == digit][:count]
    return [(img * 255 / 16).astype(np.uint8) for img in images]


def write_folder(root: Path, per_class: int = 4, offset: int = 0) -> list[Path]:
    """``root/<class>/<i>.png|jpg`` for the digits 1, 3 and 0, upsampled to mixed sizes,
    grayscale and RGB, PNG and JPEG; returns the files written."""
    written = []
    for digit, name in zip((1, 3, 0), CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, pixels in enumerate(digit_images(digit, offset + per_class)[offset:]):
            img = Image.fromarray(pixels, "L").resize((24 + 8 * (i % 3), 32 + 4 * (i % 2)), Image.BILINEAR)
            if i % 2:  # RGB with a tint, so channels differ
                img = Image.merge("RGB", (img, img.point(lambda v: v // 2), img.point(lambda v: 255 - v)))
            path = folder / f"{offset + i}.{'jpg' if i % 4 == 3 else 'png'}"
            img.save(path)
            written.append(path)
    return written


def write_npz(path: Path, layout: str = "nhwc", n: int = 60, test: int = 0, dtype: str = "uint8") -> Path:
    """``n`` digits (and ``test`` more as ``x_test``/``y_test``) at 8x8 in ``layout``
    (``nhw``, ``nchw`` with 3 channels, or ``nhwc`` with 3 channels)."""
    bunch = load_digits()
    x = (bunch.images[: n + test] * 255 / 16).astype(np.uint8)  # N x 8 x 8
    y = bunch.target[: n + test].astype(np.int64)
    if layout == "nchw":
        x = np.stack([x, x // 2, 255 - x], axis=1)
    elif layout == "nhwc":
        x = np.stack([x, x // 2, 255 - x], axis=3)
    if dtype != "uint8":
        x = x.astype(dtype) / 255.0
    arrays = {"x": x[:n], "y": y[:n]}
    if test:
        arrays.update(x_test=x[n:], y_test=y[n:])
    np.savez(path, **arrays)
    return path
