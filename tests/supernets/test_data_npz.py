"""npz: a user's arrays x, y (and x_test, y_test) in NHW, NCHW or NHWC, uint8 or float."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _data_helpers import write_npz
from torch.utils.data import TensorDataset

from supernets.data import DataError, load_dataset


@pytest.mark.parametrize("layout, dtype, channels", [("nhwc", "uint8", 3), ("nchw", "float32", 3),
                                                      ("nhw", "uint8", 1)])
def test_layouts_give_channels_first_images(tmp_path, layout, dtype, channels):
    path = write_npz(tmp_path / "d.npz", layout=layout, n=100, dtype=dtype)
    data = load_dataset("npz", root=path, seed=2, val_frac=0.2, test_frac=0.1)
    assert data.input_shape == (channels, 8, 8) and data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (70, 20, 10)
    assert all(isinstance(s, TensorDataset) for s in (data.train, data.val, data.test))  # augment off
    x, y = data.train[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and y.shape == ()
    # the split is seeded and complete: the labels of all splits are the file's labels
    labels = torch.cat([s.tensors[1] for s in (data.train, data.val, data.test)])
    assert sorted(labels.tolist()) == sorted(np.load(path)["y"].tolist())
    again = load_dataset("npz", root=path, seed=2, val_frac=0.2, test_frac=0.1)
    assert torch.equal(again.test.tensors[0], data.test.tensors[0])


def test_nhwc_and_nchw_files_of_the_same_images_load_equal(tmp_path):
    a = load_dataset("npz", root=write_npz(tmp_path / "a.npz", layout="nhwc"))
    b = load_dataset("npz", root=write_npz(tmp_path / "b.npz", layout="nchw"))
    assert torch.allclose(a.train.tensors[0], b.train.tensors[0], atol=1e-6)
    # the 2nd channel is the 1st halved: it is a real channel, not a copy
    assert not torch.allclose(a.train.tensors[0][:, 0], a.train.tensors[0][:, 1])


def test_default_normalisation_uses_the_training_split_statistics(tmp_path):
    data = load_dataset("npz", root=write_npz(tmp_path / "d.npz", n=200))
    x = data.train.tensors[0]
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)
    assert data.val.tensors[0].mean().abs() > 1e-4  # held-out images are not re-centred on themselves
    fixed = load_dataset("npz", root=tmp_path / "d.npz", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    raw = np.load(tmp_path / "d.npz")["x"].astype(np.float32) / 255.0  # N x 8 x 8 x 3
    assert fixed.train.tensors[0].min() >= -1.0 and fixed.train.tensors[0].max() <= 1.0
    assert np.isclose(fixed.train.tensors[0].mean().item() * 0.5 + 0.5, raw.mean(), atol=0.02)


def test_test_arrays_are_the_test_split_and_augment_is_optional(tmp_path):
    path = write_npz(tmp_path / "d.npz", n=80, test=20)
    data = load_dataset("npz", root=path, val_frac=0.25, augment=True)
    assert (len(data.train), len(data.val), len(data.test)) == (60, 20, 20)
    assert torch.equal(data.test.tensors[1], torch.from_numpy(np.load(path)["y_test"]))
    assert not isinstance(data.train, TensorDataset) and data.train[0][0].shape == (3, 8, 8)


def _save(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


X = np.zeros((6, 8, 8), np.uint8)
Y = np.arange(6) % 2


@pytest.mark.parametrize("arrays, message", [
    ({"x": X}, r"no array 'y'; it has \['x'\]"),
    ({"x": np.array([np.zeros((8, 8)), np.zeros((4, 4))], dtype=object), "y": Y[:2]},
     "array 'x' cannot be read as a numeric array"),
    ({"x": np.zeros((6, 8)), "y": Y}, r"array 'x' has shape \(6, 8\)"),
    ({"x": np.zeros((6, 8, 8, 8, 8)), "y": Y}, "array 'x' has shape"),
    ({"x": X.astype(np.int32), "y": Y}, "array 'x' has dtype int32"),
    ({"x": X.astype(np.float32) * np.nan, "y": Y}, "array 'x' holds NaN"),
    ({"x": X, "y": Y.astype(np.float32)}, "array 'y' has dtype float32; expected integer"),
    ({"x": X, "y": Y[:5]}, r"array 'y' has shape \(5,\); expected \(6,\)"),
    ({"x": X, "y": -Y}, "array 'y' holds negative labels"),
    ({"x": X, "y": Y, "x_test": X}, "give both x_test and y_test"),
    ({"x": X, "y": Y, "x_test": np.zeros((2, 4, 4), np.uint8), "y_test": Y[:2]},
     r"'x_test' images are \(1, 4, 4\), but 'x' images are \(1, 8, 8\)"),
])
def test_bad_arrays_give_one_error_naming_the_file_and_array(tmp_path, arrays, message):
    path = _save(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("npz", root=path)
    assert str(info.value).startswith(f"npz file {path}") and "\n" not in str(info.value)


def test_missing_or_unreadable_files_and_wrong_statistics(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("npz", root=tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match="text.npz: not a readable .npz file"):
        load_dataset("npz", root=tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", X)
    with pytest.raises(DataError, match="holds one array"):
        load_dataset("npz", root=tmp_path / "one.npy")
    with pytest.raises(DataError, match="data.mean: 3 values for 1-channel images"):
        load_dataset("npz", root=_save(tmp_path, x=X, y=Y), mean=(0.1, 0.2, 0.3), std=(1, 1, 1))
    with pytest.raises(DataError, match="root: data set 'npz' needs a local path"):
        load_dataset("npz")
