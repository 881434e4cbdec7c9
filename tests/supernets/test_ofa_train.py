"""OFA training: loss goes down, resume equals uninterrupted, configs and checkpoints."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from search_spaces import NUM_CLASSES, Grammar, Op, Repeat, SearchSpace, Seq, Value, get_space
from supernets import (
    OFATrainConfig,
    PhaseConfig,
    SupernetError,
    evaluate_subnet,
    load_supernet,
    train_supernet,
)
from supernets.data import load_dataset


def tiny_space() -> SearchSpace:
    net = Seq(
        stem=Op("conv_bn_act", out=Value([8, 12]), kernel=3),
        stage=Repeat(Op("mbconv", out=16, kernel=Value([3, 5]), expand=Value([2, 3])), depth=[1, 2],
                     first=Op("mbconv", out=16, kernel=Value([3, 5]), expand=Value([2, 3]), stride=2)),
        head=Op("classifier", out=NUM_CLASSES),
    )
    return SearchSpace(Grammar({"net": net}), name="tiny", input_shape=(1, 8, 8), num_classes=10)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def config(steps: int = 3, **kw) -> OFATrainConfig:
    phases = (PhaseConfig("full", (), steps=steps, lr=0.1),
              PhaseConfig("kernel", ("kernel",), steps=steps, lr=0.05, n_random=1),
              PhaseConfig("width", ("kernel", "depth", "width"), steps=steps, lr=0.05, n_random=1,
                          eps_ramp_steps=2))
    return OFATrainConfig(space="tiny", phases=phases, batch_size=32, checkpoint_every=2,
                          calib_images=64, **kw)


def test_training_reduces_loss(digits, tmp_path) -> None:
    cfg = OFATrainConfig(space="tiny", phases=(PhaseConfig("full", (), steps=40, lr=0.1),),
                         batch_size=32, checkpoint_every=100, calib_images=128)
    result = train_supernet(tiny_space(), cfg, digits, tmp_path, progress=False)
    losses = [float(r["loss"]) for r in result.metrics if r.get("loss")]
    assert result.finished and result.steps == 40
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    acc = evaluate_subnet(result.supernet, result.supernet.largest_arch, digits, calib_images=128)
    assert acc > 0.5  # 10 classes: chance is 0.1
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 41 and rows[-1]["val_acc_largest"]


def test_resume_equals_uninterrupted(digits, tmp_path) -> None:
    space, cfg = tiny_space(), config()
    whole = train_supernet(space, cfg, digits, tmp_path / "a", progress=False)
    for stop in (4, 6):  # mid-phase (optimiser state restored) and at a phase boundary
        part = train_supernet(space, cfg, digits, tmp_path / f"b{stop}", max_steps=stop, progress=False)
        assert not part.finished and part.steps == stop
        meta = json.loads((tmp_path / f"b{stop}" / "supernet.json").read_text())
        assert meta["step"] == stop and meta["fingerprint"] == space.fingerprint
        resumed = train_supernet(space, cfg, digits, tmp_path / f"b{stop}", progress=False)
        assert resumed.finished and resumed.steps == 9
        a, b = whole.supernet.state_dict(), resumed.supernet.state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), stop
    rows = list(csv.DictReader(open(tmp_path / "b4" / "metrics.csv")))
    assert [int(r["step"]) for r in rows if r["loss"]] == list(range(1, 10))
    with pytest.raises(SupernetError, match="another config"):
        train_supernet(space, config(steps=4), digits, tmp_path / "a", progress=False)


def test_checkpoint_refuses_another_space(digits, tmp_path) -> None:
    train_supernet(tiny_space(), config(steps=1), digits, tmp_path, max_steps=1, progress=False)
    net, meta = load_supernet(tmp_path, tiny_space())
    assert meta["space"] == "tiny" and not net.training
    with pytest.raises(SupernetError, match="fingerprint"):
        load_supernet(tmp_path, get_space("mobilenetv3_ofa", width_mult=0.25))


def test_config_from_yaml(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("space: mobilenetv3_ofa\nspace_options: {width_mult: 0.25}\n"
                    "phases:\n  - {name: full, epochs: 2}\n  - {name: k, elastic: [kernel], lr: 0.01}\n")
    cfg = OFATrainConfig.from_yaml(path)
    assert cfg.phases[1].elastic == ("kernel",) and cfg.phases[0].epochs == 2
    assert OFATrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    path.write_text("space: mobilenetv3_ofa\nbatchsize: 3\n")
    with pytest.raises(SupernetError, match=r"unknown key\(s\) \['batchsize'\]; valid keys: .*batch_size"):
        OFATrainConfig.from_yaml(path)
    path.write_text("phases:\n  - {name: full, elastic: [colour]}\n")
    with pytest.raises(SupernetError, match="colour"):
        OFATrainConfig.from_yaml(path)
    path.write_text("phases:\n  - {name: full, epoch: 1}\n")
    with pytest.raises(SupernetError, match=r"phases\[0\].*valid keys"):
        OFATrainConfig.from_yaml(path)
