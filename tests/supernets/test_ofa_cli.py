"""``nas supernet train|eval|extract`` end to end on a tiny experiment."""

from __future__ import annotations

import json

import pytest
import torch

from nas.cli import main
from nas.export import load_exported
from search_spaces import get_space

CONFIG = """
space:
  name: mobilenetv3_ofa
  options: {width_mult: 0.25, resolutions: [16], kernels: [3, 5], expands: [2, 3], depths: [1, 2]}
supernet:
  train:
    batch_size: 16
    calib_images: 32
    weight_decay: 3e-5          # exponent notation: a number, not a string
    phases:
      - {name: full, steps: 2, lr: 1e-1}
      - {name: all, elastic: [kernel, depth, width, resolution], steps: 1, n_random: 0}
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_train_eval_extract(tmp_path, capsys) -> None:
    cfg = tmp_path / "ofa.yaml"
    cfg.write_text(CONFIG)
    run = tmp_path / "run"
    assert main(["supernet", "train", str(cfg), "--run-dir", str(run)]) == 0
    assert "finished after 3 steps" in capsys.readouterr().out
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["command"] == ["nas", "supernet", "train", str(cfg), "--run-dir", str(run)]
    assert manifest["experiment"]["supernet"]["train"]["batch_size"] == 16
    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16], kernels=[3, 5],
                      expands=[2, 3], depths=[1, 2])
    arch = space.sample(7)
    (tmp_path / "arch.json").write_text(arch.to_json())
    assert main(["supernet", "eval", str(run), "--arch", str(tmp_path / "arch.json"),
                 "--calib-images", "32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["arch_key"] == arch.key and 0.0 <= result["accuracy"] <= 1.0
    out = tmp_path / "model"
    assert main(["supernet", "extract", str(run / "supernet.pt"), "--arch", "smallest",
                 "-o", str(out), "--calib-images", "32"]) == 0
    model = torch.jit.load(str(out / "model.torchscript.pt"))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    restored = load_exported(out / "model.pt")  # the space is rebuilt from the recorded options
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(restored(x), model(x), atol=1e-5)
    assert (out / "model.onnx").is_file() and json.loads((out / "arch.json").read_text())


def test_extract_without_recalibration_is_refused(tmp_path, capsys) -> None:
    cfg = tmp_path / "ofa.yaml"
    cfg.write_text(CONFIG)
    assert main(["supernet", "train", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["supernet", "extract", str(tmp_path / "run"), "--arch", "smallest", "-o",
                 str(tmp_path / "m"), "--calib-images", "0", "--format", "state_dict"]) == 2
    err = capsys.readouterr().err
    assert "batch-norm statistics were not recalibrated" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m" / "model.pt").exists()


def test_errors_are_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("space: {name: mobilenetv3_ofa}\nsupernet: {train: {learning_rate: 0.1}}\n")
    assert main(["supernet", "train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "supernet.train.learning_rate: unknown key; valid keys: phases" in err and "Traceback" not in err
    cfg.write_text("space: {name: mobilenetv3_ofa}\nsupernet: {train: {phases: [{name: a, lr: -1e-3}]}}\n")
    assert main(["supernet", "train", str(cfg)]) == 2
    assert "supernet.train.phases[0].lr: must be > 0, got -0.001" in capsys.readouterr().err
    cfg.write_text("space: {name: nb201}\n")  # a cell space: no elastic decisions for OFA
    assert main(["supernet", "train", str(cfg), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "supernet.type: an OFA supernet cannot serve space 'nb201'" in err
    assert not (tmp_path / "r").exists()
    assert main(["supernet", "eval", str(tmp_path), "--arch", "largest"]) == 2
    assert "not a supernet checkpoint" in capsys.readouterr().err
