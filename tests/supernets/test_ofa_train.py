"""OFA training: loss goes down, resume equals uninterrupted, configs and checkpoints."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from search_spaces import NUM_CLASSES, Grammar, Op, Repeat, SearchSpace, Seq, Value, get_space
from supernets import (
    OFASupernet,
    OFATrainConfig,
    PhaseConfig,
    SupernetError,
    evaluate_subnet,
    load_supernet,
    progressive_shrinking,
    sandwich_schedule,
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
    return OFATrainConfig(phases=phases, batch_size=32, checkpoint_every=2, calib_images=64, **kw)


def test_training_reduces_loss(digits, tmp_path) -> None:
    cfg = OFATrainConfig(phases=(PhaseConfig("full", (), steps=40, lr=0.1),),
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
    train_supernet(tiny_space(), config(steps=1), digits, tmp_path, max_steps=1, progress=False,
                   space_options={"depth": 2})
    net, state = load_supernet(tmp_path, tiny_space())
    assert state.space == "tiny" and state.space_options == {"depth": 2} and not net.training
    assert state.step == 1 and not state.finished and state.data == "digits"
    assert state.input_shape == (1, 8, 8) and state.seed == 0
    with pytest.raises(SupernetError, match="fingerprint"):
        load_supernet(tmp_path, get_space("mobilenetv3_ofa", width_mult=0.25))


def test_config_is_parsed_by_nas_config_with_key_paths() -> None:
    from nas.config import parse, to_dict
    from nas.errors import ConfigError

    data = {"phases": [{"name": "full", "epochs": 2}, {"name": "k", "elastic": ["kernel"],
                                                       "lr": "1e-2"}], "weight_decay": "5e-5"}
    cfg = parse(OFATrainConfig, data, "supernet.train")
    assert cfg.phases[1].elastic == ("kernel",) and cfg.phases[1].lr == 0.01
    assert cfg.weight_decay == 5e-5 and cfg.phases[0].epochs == 2
    assert parse(OFATrainConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg
    assert cfg.to_dict() == to_dict(cfg)
    for bad, message in [
        ({"batchsize": 3}, r"^supernet.train.batchsize: unknown key \(did you mean 'batch_size'\?\); valid keys: phases, batch_size"),
        ({"phases": [{"name": "full", "elastic": ["colour"]}]}, r"^supernet.train.phases\[0\].elastic: unknown elastic kind\(s\) \['colour'\] \(phase 'full'\)"),
        ({"phases": [{"name": "full", "epoch": 1}]}, r"^supernet.train.phases\[0\].epoch: unknown key .*valid keys"),
        ({"phases": [{"name": "full", "lr": -1e-3}]}, r"^supernet.train.phases\[0\].lr: must be > 0, got -0.001 \(phase 'full'\)$"),
        ({"batch_size": 1}, r"^supernet.train.batch_size: must be >= 2, got 1$"),
        ({"phases": []}, r"^supernet.train.phases: the schedule needs at least one phase$"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse(OFATrainConfig, bad, "supernet.train")


def test_default_schedule_trains_every_subnet_from_the_first_step() -> None:
    (phase,) = OFATrainConfig().phases
    assert set(phase.elastic) == {"resolution", "kernel", "depth", "width"}
    assert phase.n_random >= 1 and phase.warmup_steps > 0 and phase.schedule == "cosine"
    ps = progressive_shrinking(2, lr=0.1)
    assert [p.name for p in ps] == ["full", "kernel", "depth", "width"]
    assert ps[0].elastic == ("resolution",) and all(p.warmup_steps > 0 for p in ps[1:])
    assert ps[1].lr == 0.1  # elastic phases default to the full phase's rate (warmed up)


def _subnet_accuracies(result, digits) -> list[float]:
    net = result.supernet
    rng = np.random.default_rng(3)
    archs = [net.largest_arch, net.smallest()] + [net.sample(rng) for _ in range(3)]
    return [evaluate_subnet(net, a, digits, calib_images=256) for a in archs]


def test_sandwich_schedule_beats_a_late_start_of_the_small_subnets(digits, tmp_path) -> None:
    # Regression for the old default (a long full phase, then short low-lr elastic phases):
    # at an equal budget, the small subnets trained from the first step are far better.
    space, steps = tiny_space(), 40
    sandwich = OFATrainConfig(phases=sandwich_schedule(1, lr=0.1, n_random=1),
                              batch_size=32, checkpoint_every=1000)
    sandwich = dataclasses.replace(sandwich, phases=(dataclasses.replace(
        sandwich.phases[0], steps=steps),))
    late = dataclasses.replace(sandwich, phases=(
        PhaseConfig("full", (), steps=steps // 2, lr=0.1),
        PhaseConfig("all", ("kernel", "depth", "width"), steps=steps // 2, lr=0.005, n_random=1)))
    accs = {}
    for name, cfg in (("sandwich", sandwich), ("late", late)):
        accs[name] = _subnet_accuracies(train_supernet(space, cfg, digits, tmp_path / name,
                                                       progress=False), digits)
    assert min(accs["sandwich"]) > 0.6, accs
    assert np.mean(accs["sandwich"][1:]) > np.mean(accs["late"][1:]) + 0.05, accs


def _sandwich_resolutions(mode: str, steps: int = 12) -> list[tuple[int, int]]:
    """(largest, smallest) input resolution of each of ``steps`` training steps."""
    from supernets import sandwich_step

    space = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[8, 12, 16], input_shape=(1, 8, 8))
    net = OFASupernet.from_space(space, 10, (1, 8, 8), seed=0)
    phase = PhaseConfig("s", ("resolution", "kernel", "width", "depth"), steps=steps, n_random=1,
                        sandwich_resolution=mode)
    seen: list[int] = []
    activate = net.set_active
    net.set_active = lambda arch: seen.append(arch["resolution.size"]) or activate(arch)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    rng = np.random.default_rng(0)
    x, y = torch.randn(4, 1, 8, 8), torch.arange(4)
    for i in range(steps):
        sandwich_step(net, opt, x, y, phase, OFATrainConfig(), rng, i)
    return [(seen[3 * i], seen[3 * i + 1]) for i in range(steps)]  # largest, smallest, 1 random


def test_sandwich_resolution_extremes_and_random() -> None:
    assert set(_sandwich_resolutions("extremes")) == {(16, 8)}
    pairs = _sandwich_resolutions("random")
    assert all(large == small for large, small in pairs)  # one draw shared by both
    assert {large for large, _ in pairs} == {8, 12, 16}  # 12 draws from 3 values: all seen


def test_sandwich_resolution_config() -> None:
    with pytest.raises(SupernetError, match="sandwich_resolution: 'middle' unknown .*; valid: extremes, random"):
        PhaseConfig("s", ("resolution",), sandwich_resolution="middle")
    old = OFATrainConfig(phases=sandwich_schedule(2, sandwich_resolution="extremes")).to_dict()
    assert old["phases"][0]["sandwich_resolution"] == "extremes"
    assert PhaseConfig("p").sandwich_resolution == "random"  # one default: the unbiased pairing
    assert progressive_shrinking()[0].sandwich_resolution == "extremes"  # full net at both ends
    rand = OFATrainConfig()  # the default schedule draws the resolution
    assert rand.to_dict()["phases"][0]["sandwich_resolution"] == "random"
