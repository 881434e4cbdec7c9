"""Embedded data sets: digits and its distorted, larger variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from supernets.data import DataError, load_dataset


def test_digits_aug_is_deterministic_larger_and_split_by_source_image():
    base = load_dataset("digits", seed=3)
    aug = load_dataset("digits_aug", seed=3)
    again = load_dataset("digits_aug", seed=3)
    assert aug.input_shape == (1, 16, 16) and aug.num_classes == 10
    for b, a, a2 in zip((base.train, base.val, base.test), (aug.train, aug.val, aug.test),
                        (again.train, again.val, again.test)):
        assert len(a) == 3 * len(b)
        assert torch.equal(a.tensors[0], a2.tensors[0])
        # copy k of image i sits at k * n + i: labels repeat the source split's labels
        assert torch.equal(a.tensors[1], b.tensors[1].repeat(3))
    # the copies are distorted, not identical
    n = len(base.test)
    x = aug.test.tensors[0]
    assert (x[:n] - x[n:2 * n]).abs().mean() > 0.1
    # a different seed gives a different split and different distortions
    other = load_dataset("digits_aug", seed=4)
    assert not torch.equal(other.test.tensors[0], x)


def test_digits_aug_copies_resemble_their_source_digit():
    """Each distorted copy is closer to its own upsampled source than to a random other image."""
    base, aug = load_dataset("digits"), load_dataset("digits_aug")
    src = torch.nn.functional.interpolate(base.test.tensors[0], size=(16, 16), mode="bilinear",
                                          align_corners=False)
    copy = aug.test.tensors[0][: len(src)]
    own = torch.nn.functional.cosine_similarity(copy.flatten(1), src.flatten(1)).mean()
    shifted = torch.nn.functional.cosine_similarity(copy.flatten(1), src.roll(1, 0).flatten(1)).mean()
    assert own > shifted + 0.1


def test_unknown_data_set_lists_valid_names():
    with pytest.raises(DataError, match="digits_aug"):
        load_dataset("mnist")


def test_digits_aug_more_copies_keep_the_source_split():
    """More copies enlarge every split with the same source images (no digit leaks)."""
    base, three, ten = load_dataset("digits"), load_dataset("digits_aug"), load_dataset("digits_aug", copies=10)
    for b, a3, a10 in zip((base.train, base.val, base.test), (three.train, three.val, three.test),
                          (ten.train, ten.val, ten.test)):
        assert len(a10) == 10 * len(b)
        assert torch.equal(a10.tensors[1], b.tensors[1].repeat(10))
        assert torch.equal(a10.tensors[1][: len(a3)], a3.tensors[1])
    with pytest.raises(DataError, match="copies"):
        load_dataset("digits_aug", copies=0)
    with pytest.raises(DataError, match="only to digits_aug"):
        load_dataset("digits", copies=5)


def _cifar_folder(tmp_path, n: int = 20):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def test_cifar10_reads_local_batches(tmp_path) -> None:
    _cifar_folder(tmp_path)
    data = load_dataset("cifar10", root=tmp_path)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert len(data.train) + len(data.val) == 100 and len(data.test) == 20


def test_cifar10_refuses_a_pickle_with_other_globals(tmp_path) -> None:
    import pickle

    folder = _cifar_folder(tmp_path)

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Payload()}))
    with pytest.raises(DataError, match=r"data_batch_3: refused to load global builtins\.print"):
        load_dataset("cifar10", root=tmp_path)
