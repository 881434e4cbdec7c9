"""Training augmentation: per-data-set defaults, seeded per (seed, epoch, index), train only."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_data import _cifar_folder
from torch.utils.data import TensorDataset

from supernets.data import DataConfig, DataError, load_dataset, make_loader
from supernets.data._augment import CenterCrop, PadCropFlip, RandomResizedCrop, item_generator


def _batch(split, epoch, **kwargs):
    return next(iter(make_loader(split, 8, shuffle=False, seed=1, epoch=epoch, **kwargs)))[0]


def test_cifar10_trains_on_augmented_items_and_evaluates_on_fixed_ones(tmp_path):
    _cifar_folder(tmp_path)
    data = load_dataset("cifar10", root=tmp_path)
    assert not isinstance(data.train, TensorDataset)
    assert isinstance(data.val, TensorDataset) and isinstance(data.test, TensorDataset)
    assert data.train[0][0].shape == (3, 32, 32) and data.train[0][1].dtype == torch.int64
    assert not torch.equal(_batch(data.train, 0), _batch(data.train, 1))
    assert torch.equal(_batch(data.train, 2), _batch(data.train, 2))
    assert torch.equal(_batch(data.val, 0), _batch(data.val, 1))
    plain = load_dataset("cifar10", root=tmp_path, augment=False)
    assert isinstance(plain.train, TensorDataset)
    # the augmented items are the plain ones, shifted by at most 4 pixels and maybe flipped
    assert torch.equal(data.train.base.tensors[0], plain.train.tensors[0])


def test_augmentation_is_the_same_for_any_workers_ranks_and_resume_point(tmp_path):
    _cifar_folder(tmp_path)
    train = load_dataset("cifar10", root=tmp_path).train
    one = list(make_loader(train, 8, seed=3, epoch=1))
    assert torch.equal(torch.cat([x for x, _ in one]),
                       torch.cat([x for x, _ in make_loader(train, 8, seed=3, epoch=1, num_workers=2)]))
    ranks = [list(make_loader(train, 4, seed=3, epoch=1, rank=r, world_size=2)) for r in range(2)]
    for k, (x, _) in enumerate(one):  # rank r holds every 2nd sample of the doubled batch
        assert torch.equal(x[0::2], ranks[0][k][0]) and torch.equal(x[1::2], ranks[1][k][0])
    resumed = list(make_loader(train, 8, seed=3, epoch=1, start_batch=2))
    assert torch.equal(resumed[0][0], one[2][0])


def test_pad_crop_flip_shifts_and_mirrors_the_image():
    x = torch.arange(2 * 6 * 6, dtype=torch.float32).reshape(2, 6, 6) + 1
    padded = F.pad(x, (2, 2, 2, 2))
    seen = set()
    for i in range(40):
        out = PadCropFlip(pad=2, flip=True)(x, item_generator(0, 0, i))
        shifts = [(t, left, flip) for t in range(5) for left in range(5) for flip in (False, True)
                  if torch.equal(out, (lambda c: c.flip(-1) if flip else c)(padded[:, t:t + 6, left:left + 6]))]
        assert shifts, "the output is a crop of the padded image, maybe mirrored"
        seen.add(shifts[0])
    assert len(seen) > 10 and {s[2] for s in seen} == {False, True}
    assert torch.equal(PadCropFlip(pad=0, flip=False)(x, item_generator(0, 0, 0)), x)


def test_random_resized_crop_and_centre_crop_give_the_square_size():
    image = torch.randint(0, 256, (3, 30, 50), dtype=torch.uint8)
    crop = RandomResizedCrop(16, (0.08, 1.0), True, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    outs = [crop(image, item_generator(0, e, 0)) for e in range(5)]
    assert all(o.shape == (3, 16, 16) and o.dtype == torch.float32 for o in outs)
    assert all(0.0 <= o.min() and o.max() <= 1.0 for o in outs)
    assert len({o.sum().item() for o in outs}) == 5  # a new crop each epoch
    framed = torch.zeros(3, 30, 50, dtype=torch.uint8)
    framed[:, :, 10:40] = 255  # a white 30 x 30 centre square between black bars
    centre = CenterCrop(10, 1.0, (0.5,) * 3, (0.5,) * 3)(framed, item_generator(0, 0, 0))
    assert centre.shape == (3, 10, 10) and torch.allclose(centre, torch.ones(3, 10, 10))
    wider = CenterCrop(10, 0.5, (0.5,) * 3, (0.5,) * 3)(framed, item_generator(0, 0, 0))
    assert torch.allclose(wider, torch.ones(3, 10, 10))  # a smaller centre square: white too
    full = RandomResizedCrop(10, (1.0, 1.0), False, (0.5,) * 3, (0.5,) * 3)
    # a box of the whole area does not fit 30 x 50 at ratios 3/4..4/3, so it takes the centre square
    assert torch.allclose(full(framed, item_generator(0, 0, 0)), torch.ones(3, 10, 10))


def test_embedded_digits_are_not_augmented_unless_asked():
    assert isinstance(load_dataset("digits").train, TensorDataset)
    data = load_dataset("digits", augment=True, flip=False)
    assert data.train[0][0].shape == (1, 8, 8)
    assert data.train.transform == PadCropFlip(pad=1, flip=False)  # 8 // 8
    assert isinstance(data.val, TensorDataset)
    with pytest.raises(DataError, match="data.pad: 8 pixels of padding for 8-pixel images"):
        load_dataset("digits", augment=True, pad=8)


@pytest.mark.parametrize("options, message", [
    ({"val_fraction": 1.0}, r"val_fraction: must be in \[0, 1\)"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "val_fraction: val_fraction \\+ test_fraction must be < 1"),
    ({"name": "image_folder", "crop_scale": (0.5, 0.2)}, "crop_scale: must be"),
    ({"name": "image_folder", "crop_fraction": 0.0}, "crop_fraction: must be in"),
    ({"name": "image_folder", "image_size": 0}, "image_size: must be >= 1"),
    ({"image_size": 32}, "image_size: applies only to image_folder, not to 'npz'"),
    ({"name": "cifar10", "crop_scale": (0.5, 1.0)}, "crop_scale: applies only to image_folder"),
    ({"name": "image_folder", "pad": 2}, "pad: applies to in-memory data sets"),
    ({"name": "digits", "root": "x"}, "root: digits is embedded and reads no files"),
    ({"name": "cifar10", "root": None}, "root: data set 'cifar10' needs a local path"),
    ({"mean": (0.5,)}, "mean: give both"),
    ({"mean": (0.5,), "std": (0.5, 0.5)}, "std: needs one value per channel"),
    ({"mean": (0.5,), "std": (0.0,)}, "std: every value must be > 0"),
    ({"name": "digits", "root": None, "mean": (0.5,), "std": (0.5,)}, "mean: digits is fixed to"),
    ({"num_workers": -1}, "num_workers: must be >= 0"),
])
def test_bad_settings_name_their_key(options, message):
    with pytest.raises(DataError, match=message):
        DataConfig(**{"name": "npz", "root": "x.npz", **options})


def test_defaults_resolve_per_data_set():
    assert DataConfig("cifar10", root="c").augments and DataConfig("image_folder", root="i").augments
    assert not DataConfig("digits").augments and not DataConfig("npz", root="x.npz").augments
    assert DataConfig("digits").loader_options(cuda=False) == {"num_workers": 0, "pin_memory": False}
    folder = DataConfig("image_folder", root="i", image_size=64, pin_memory=False)
    assert folder.loader_options(cuda=True)["num_workers"] >= 1 and not folder.loader_options(True)["pin_memory"]
    assert folder.input_shape == (3, 64, 64) and DataConfig("npz", root="x.npz").input_shape is None
    assert DataConfig("image_folder", root="i") == DataConfig("image_folder", root="i", image_size=224,
                                                              crop_scale=(0.08, 1.0), crop_fraction=0.875)
    with pytest.raises(DataError, match=r"unknown data option\(s\) \['image_sise'\]"):
        load_dataset("digits", image_sise=3)
