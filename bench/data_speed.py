"""Images per second that ``supernets.data`` delivers to a training loop.

* ``image_folder``: photo-sized JPEGs (3000 x 2000 by default, written to a temporary
  folder) decoded with Pillow and cropped by the training augmentation (random-resized
  crop + flip) to ``--size``, read through ``make_loader`` with 0 and 2 workers, and
  with the reduced-scale JPEG decoding switched off (full decode) for comparison;
* in memory (CIFAR-10-shaped 3 x 32 x 32 batches, written as the python batches):
  pad-and-crop + flip augmentation against the plain ``TensorDataset``.

One torch thread per process. Run it on a quiet machine for absolute figures; the
ratios are measured within one run.

    python bench/data_speed.py
    python bench/data_speed.py --quick

Last line: ``data_speed: <image_folder training images/s, 2 workers>``.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import BenchRun  # noqa: E402

from supernets.data import load_dataset, make_loader  # noqa: E402


def write_jpegs(root: Path, per_class: int, width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):  # smooth random content, like a photo's low frequencies
            small = rng.integers(0, 256, (height // 32, width // 32, 3), dtype=np.uint8)
            Image.fromarray(small).resize((width, height), Image.BICUBIC).save(root / name / f"{i}.jpg", quality=90)


def write_cifar(root: Path, per_batch: int) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def rate(dataset, batch_size: int, workers: int) -> float:
    """Images per second over one epoch (worker start-up included)."""
    start = time.perf_counter()
    n = sum(len(x) for x, _ in make_loader(dataset, batch_size, seed=0, num_workers=workers))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few images")
    parser.add_argument("--size", type=int, default=128, help="training crop side (default 128)")
    parser.add_argument("--photo", type=int, nargs=2, default=(3000, 2000), metavar=("W", "H"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = BenchRun("data_speed", quick=args.quick)
    per_class = 8 if args.quick else 48
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp) / "jpg", per_class, *args.photo)
        train = load_dataset("image_folder", root=Path(tmp) / "jpg", image_size=args.size,
                             val_frac=0.0, test_frac=0.0).train
        one, two = rate(train, 16, 0), rate(train, 16, 2)
        train.base.min_side = 0  # decode every JPEG at full size
        full = rate(train, 16, 0)
        write_cifar(Path(tmp) / "cifar", 1000 if args.quick else 10000)
        cifar = load_dataset("cifar10", root=Path(tmp) / "cifar")
        plain = load_dataset("cifar10", root=Path(tmp) / "cifar", augment=False)
        augmented, tensors = rate(cifar.train, 128, 0), rate(plain.train, 128, 0)
    w, h = args.photo
    run.note(f"image_folder: {2 * per_class} JPEGs of {w}x{h}, training crops of {args.size}px, batch 16")
    run.figure("image_folder_0_workers", round(one, 1), "images/s", show=True)
    run.figure("image_folder_full_decode_0_workers", round(full, 1), "images/s")
    run.figure("reduced_scale_decode_speedup", round(one / full, 2), "x", show=True)
    run.figure("two_workers_speedup", round(two / one, 2), "x", show=True)
    run.figure("cifar10_augmented_0_workers", round(augmented), "images/s", show=True)
    run.figure("cifar10_plain_0_workers", round(tensors), "images/s")
    run.figure("data_speed", round(two, 1), "images/s", headline=True,
               note="image_folder training images/s, 2 workers")
    run.finish()


if __name__ == "__main__":
    main()
