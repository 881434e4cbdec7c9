"""image_folder: class folders of PNG/JPEG files of mixed sizes, read lazily with Pillow."""

from __future__ import annotations

import shutil
import sys

import pytest
import torch
from _data_helpers import CLASSES, write_folder
from PIL import Image

from supernets.data import DataError, load_dataset, make_loader


def _files(split) -> list[str]:
    """The image paths behind a split (train, val or test)."""
    return [path for path, _ in split.base.items]


def test_one_folder_splits_are_seeded_disjoint_and_complete(tmp_path):
    written = write_folder(tmp_path / "imgs", per_class=8)  # 24 images
    data = load_dataset("image_folder", root=tmp_path / "imgs", seed=1, image_size=32,
                        val_frac=0.25, test_frac=0.25)
    assert data.classes == CLASSES and data.num_classes == 3 and data.input_shape == (3, 32, 32)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 6, 6)
    parts = [set(_files(s)) for s in (data.train, data.val, data.test)]
    assert set.union(*parts) == {str(p) for p in written} and sum(map(len, parts)) == 24
    again = load_dataset("image_folder", root=tmp_path / "imgs", seed=1, image_size=32,
                         val_frac=0.25, test_frac=0.25)
    other = load_dataset("image_folder", root=tmp_path / "imgs", seed=2, image_size=32,
                         val_frac=0.25, test_frac=0.25)
    assert _files(again.test) == _files(data.test) and _files(other.test) != _files(data.test)
    x, y = data.val[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.shape == ()
    label = CLASSES.index(_files(data.val)[0].split("/")[-2])
    assert int(y) == label


def test_train_and_val_folders_make_val_the_test_split(tmp_path):
    write_folder(tmp_path / "imgs" / "train", per_class=8)
    held = write_folder(tmp_path / "imgs" / "val", per_class=2, offset=8)
    data = load_dataset("image_folder", root=tmp_path / "imgs", image_size=16, val_frac=0.25)
    assert sorted(_files(data.test)) == sorted(str(p) for p in held)
    assert (len(data.train), len(data.val)) == (18, 6)  # test_fraction does not apply
    assert not set(_files(data.val)) & set(_files(data.train))
    assert data.test[0][0].shape == (3, 16, 16)


def test_images_are_read_lazily_and_a_bad_file_fails_when_read(tmp_path):
    write_folder(tmp_path / "imgs")
    data = load_dataset("image_folder", root=tmp_path / "imgs", image_size=16, val_frac=0.25,
                        test_frac=0.25, augment=False)
    gone, corrupt = _files(data.train)[0], _files(data.train)[1]
    # after loading, removing one file and corrupting another break only their own items
    (tmp_path / gone).unlink()
    (tmp_path / corrupt).write_bytes(b"not an image at all")
    for i in range(2, len(data.train)):
        assert data.train[i][0].shape == (3, 16, 16)
    with pytest.raises(DataError, match=f"cannot read image {gone}"):
        data.train[0]
    with pytest.raises(DataError, match=f"cannot read image {corrupt}"):
        data.train[1]


@pytest.mark.slow  # torch takes ~5 s to shut down a worker that raised
def test_a_bad_image_in_a_loader_worker_is_one_line_naming_the_file(tmp_path):
    write_folder(tmp_path / "imgs", per_class=2)
    data = load_dataset("image_folder", root=tmp_path / "imgs", image_size=8, val_frac=0.0, test_frac=0.0)
    bad = _files(data.train)[3]
    (tmp_path / bad).write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError) as info:
        list(make_loader(data.train, 2, shuffle=False, num_workers=1))
    message = str(info.value)
    assert message.startswith(f"image_folder: cannot read image {bad}") and "\n" not in message


def test_a_worker_data_error_keeps_its_one_line_message(tmp_path):
    """torch re-raises a worker's error with its traceback in the message; the loader
    strips it back to the error's own line (the real worker path is the slow test above)."""
    from torch._utils import ExceptionWrapper

    class Failing(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            try:
                raise DataError(f"image_folder: cannot read image /x/{i}.png: broken")
            except DataError:
                ExceptionWrapper(sys.exc_info(), where="in DataLoader worker process 0").reraise()

    with pytest.raises(DataError) as info:
        list(make_loader(Failing(), 2, shuffle=False))
    assert str(info.value) == "image_folder: cannot read image /x/0.png: broken"


def test_grayscale_becomes_rgb_and_eval_is_normalised_centre_crop(tmp_path):
    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    img = Image.new("L", (40, 20), 0)
    img.paste(255, (10, 0, 30, 20))  # a white centre square 20 x 20 on black
    img.save(folder / "0.png")
    Image.new("RGB", (9, 13), (255, 255, 255)).save(folder / "1.png")
    data = load_dataset("image_folder", root=tmp_path / "imgs", image_size=8, val_frac=0.0,
                        test_frac=0.0, augment=False, crop_fraction=1.0)
    by_name = dict(zip((p.split("/")[-1] for p in _files(data.train)), range(2)))
    gray, _ = data.train[by_name["0.png"]]
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    # the centre crop is the white square: all ones after undoing ImageNet's normalisation
    assert torch.allclose(gray * std + mean, torch.ones(3, 8, 8), atol=1e-5)
    white, _ = data.train[by_name["1.png"]]
    assert torch.allclose(white, (1 - mean) / std.expand(3, 8, 8), atol=1e-5)


def test_training_crops_change_every_epoch_and_evaluation_does_not(tmp_path):
    write_folder(tmp_path / "imgs", per_class=4)
    data = load_dataset("image_folder", root=tmp_path / "imgs", image_size=24, val_frac=0.25,
                        test_frac=0.0, crop_scale=(0.3, 1.0))

    def first(split, epoch, workers=0):
        return next(iter(make_loader(split, 3, shuffle=False, seed=5, epoch=epoch, num_workers=workers)))[0]

    assert first(data.train, 0).shape == (3, 3, 24, 24)
    assert not torch.allclose(first(data.train, 0), first(data.train, 1))
    assert torch.equal(first(data.train, 0), first(data.train, 0, workers=2))  # seeded per item
    assert torch.equal(first(data.val, 0), first(data.val, 1))


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "does not exist or is not a folder"),
    (lambda root: root.mkdir(), "no class folders"),
    (lambda root: (write_folder(root), (root / "empty").mkdir(), (root / "empty" / "notes.txt").write_text("x")),
     "class folder .*empty holds no JPEG or PNG images"),
    (lambda root: (write_folder(root / "train"), write_folder(root / "val"),
                   shutil.rmtree(root / "val" / "zero")),
     r"train/ and val/ have different classes: only in train/: \['zero'\]"),
    (lambda root: (write_folder(root / "train"), write_folder(root / "extra")),
     r"has train/ and also the folders \['extra'\]"),
])
def test_bad_folders_give_one_clear_error(tmp_path, make, message):
    root = tmp_path / "imgs"
    make(root)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("image_folder", root=root)
    assert str(root) in str(info.value) and "\n" not in str(info.value)


def test_large_jpegs_decode_at_a_reduced_scale_with_the_same_result(tmp_path):
    from supernets.data._augment import CenterCrop
    from supernets.data._folder import _decode

    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    ramp = torch.linspace(0, 255, 800).to(torch.uint8).expand(600, 800)
    Image.fromarray(torch.stack([ramp, ramp.flip(1), ramp // 2], 2).numpy(), "RGB").save(folder / "big.jpg")
    Image.fromarray(ramp.numpy(), "L").save(folder / "big.png")
    assert _decode(str(folder / "big.jpg"), 100).shape == (3, 150, 200)  # 1/4: shorter side >= 100
    assert _decode(str(folder / "big.jpg")).shape == (3, 600, 800)
    assert _decode(str(folder / "big.png"), 100).shape == (3, 600, 800)  # PNG has no reduced scales
    data = load_dataset("image_folder", root=tmp_path / "imgs", image_size=16, val_frac=0.0,
                        test_frac=0.0, augment=False)
    full = CenterCrop(16, 0.875, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(
        _decode(str(folder / "big.jpg")), None)
    jpeg = _files(data.train).index(str(folder / "big.jpg"))
    assert torch.allclose(data.train[jpeg][0], full, atol=0.1)
