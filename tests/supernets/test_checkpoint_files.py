"""Supernet checkpoint files: the weights/state pair is atomic, and a damaged or foreign
file is one clear line naming it."""

from __future__ import annotations

import pickle

import pytest
import torch

from nas.cli import main
from supernets import load_supernet
from supernets._ofa import checkpoint as ckpt_module  # the module under test

CONFIG = """
space:
  name: mobilenetv3_ofa
  options: {width_mult: 0.25, resolutions: [8], kernels: [3], expands: [2], depths: [1]}
supernet:
  train:
    batch_size: 16
    calib_images: 16
    checkpoint_every: 1
    phases:
      - {name: full, steps: 4, lr: 1e-1}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    cfg = tmp / "ofa.yaml"
    cfg.write_text(CONFIG)
    run = tmp / "run"
    assert main(["supernet", "train", str(cfg), "--run-dir", str(run), "--max-steps", "2"]) == 0
    return cfg, run


def test_a_crash_between_the_two_writes_resumes_at_the_weights_step(trained, tmp_path,
                                                                    monkeypatch):
    import shutil

    cfg, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    real_replace = ckpt_module.os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith("supernet.json"):
            raise KeyboardInterrupt("killed between the weights and the JSON")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt_module.os, "replace", crash_on_json)
    with pytest.raises(KeyboardInterrupt):  # step 3's checkpoint: weights written, JSON not
        from nas.experiment import load_experiment
        from nas.run import train_experiment_supernet

        train_experiment_supernet(load_experiment(cfg, "supernet"), copy, max_steps=3)
    monkeypatch.undo()
    net, state = load_supernet(copy)
    saved = torch.load(copy / "supernet.pt", map_location="cpu", weights_only=True)
    assert state.step == 3  # the JSON copy still says 2; the weights file decides
    assert all(torch.equal(v, saved["model"][k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: p.write_bytes(p.read_bytes()[:200]), "not a readable supernet checkpoint"),
    (lambda p: p.write_bytes(b""), "not a readable supernet checkpoint"),
    (lambda p: p.write_bytes(pickle.dumps({"model": print}, protocol=2)), "not a readable supernet checkpoint"),
    (lambda p: torch.save({"model": {"w": torch.zeros(1)}}, p), "supernet.pt"),
])
def test_damaged_weights_file_is_one_line(trained, tmp_path, capsys, damage, message):
    import shutil

    _, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    damage(copy / "supernet.pt")
    assert main(["supernet", "eval", str(copy), "--arch", "largest", "--calib-images", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(copy / "supernet.pt") in err and len(err.splitlines()) == 1, err


def test_malicious_pickle_is_refused_without_running(trained, tmp_path, capsys):
    import os
    import shutil

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    _, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "supernet.pt").write_bytes(pickle.dumps({"model": Payload()}, protocol=2))
    assert main(["supernet", "eval", str(copy), "--arch", "largest"]) == 2
    err = capsys.readouterr().err.strip()
    assert "refused: weights_only" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "pwned").exists()
