"""``nas supernet train|eval|extract`` end to end on a tiny config."""

from __future__ import annotations

import json

import pytest
import torch

from nas.cli import main
from search_spaces import get_space

CONFIG = """
space: mobilenetv3_ofa
space_options: {width_mult: 0.25, resolutions: [16], kernels: [3, 5], expands: [2, 3], depths: [1, 2]}
batch_size: 16
calib_images: 32
phases:
  - {name: full, steps: 2}
  - {name: all, elastic: [kernel, depth, width, resolution], steps: 1, n_random: 0}
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_train_eval_extract(tmp_path, capsys) -> None:
    cfg = tmp_path / "ofa.yaml"
    cfg.write_text(CONFIG)
    run = tmp_path / "run"
    assert main(["supernet", "train", str(cfg), "--run-dir", str(run)]) == 0
    assert "finished after 3 steps" in capsys.readouterr().out
    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16], kernels=[3, 5],
                      expands=[2, 3], depths=[1, 2])
    arch = space.sample(7)
    (tmp_path / "arch.json").write_text(arch.to_json())
    assert main(["supernet", "eval", str(run), "--arch", str(tmp_path / "arch.json"),
                 "--calib-images", "32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["arch_key"] == arch.key and 0.0 <= result["accuracy"] <= 1.0
    out = tmp_path / "model.pt"
    assert main(["supernet", "extract", str(run / "supernet.pt"), "--arch", "smallest",
                 "-o", str(out), "--calib-images", "32"]) == 0
    model = torch.jit.load(str(out))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["fingerprint"] == space.fingerprint and side["space"] == "mobilenetv3_ofa"


def test_errors_are_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("space: mobilenetv3_ofa\nlearning_rate: 0.1\n")
    assert main(["supernet", "train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) ['learning_rate']; valid keys:" in err and "Traceback" not in err
    assert main(["supernet", "eval", str(tmp_path), "--arch", "largest"]) == 2
    assert "not a supernet checkpoint" in capsys.readouterr().err
