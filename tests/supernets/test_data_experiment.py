"""The experiment file's data section: parsed by the one config parser, paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _data_helpers import CLASSES, write_folder

from nas.errors import ConfigError
from nas.experiment import load_experiment
from supernets.data import load_data

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _write(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "exp", "seed": 4, "data": data}))
    return path


def test_image_folder_root_is_relative_to_the_experiment_file(tmp_path):
    write_folder(tmp_path / "cfg" / "imgs", per_class=4)
    exp = load_experiment(_write(tmp_path / "cfg", {"name": "image_folder", "root": "imgs", "image_size": 32}))
    assert exp.data.root == str((tmp_path / "cfg" / "imgs").resolve())
    data = load_data(exp.data, exp.seed)
    assert data.classes == CLASSES and data.input_shape == (3, 32, 32) == exp.data.input_shape
    assert len(data.train) + len(data.val) + len(data.test) == 12
    assert data.train[0][0].shape == (3, 32, 32)


@pytest.mark.parametrize("data, message", [
    ({"name": "image_folder", "root": "imgs", "val_fraction": 1.5}, r"^data\.val_fraction: must be in \[0, 1\)"),
    ({"name": "image_folder", "root": "imgs", "image_sise": 32}, r"^data\.image_sise: unknown key \(did you mean 'image_size'\?\)"),
    ({"name": "npz"}, r"^data\.root: data set 'npz' needs a local path"),
    ({"name": "npz", "root": "a.npz", "mean": [0.5]}, r"^data\.mean: give both mean and std"),
    ({"name": "mnist"}, r"^data\.name: unknown data set 'mnist'; valid: digits, digits_aug, cifar10, image_folder, npz$"),
])
def test_bad_data_sections_are_one_line_naming_the_key(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(_write(tmp_path, data))


def test_the_image_folder_example_validates_with_its_folder_beside_it():
    exp = load_experiment(EXPERIMENTS / "image_folder.yaml", "run")
    assert exp.data.name == "image_folder" and exp.data.augments
    assert exp.data.root == str((EXPERIMENTS / "data" / "my_images").resolve())
    assert exp.data.input_shape == tuple(exp.space.options["input_shape"])
