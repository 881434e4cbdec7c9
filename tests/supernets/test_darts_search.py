"""search_darts: bilevel steps, files, bit-exact resume, latency-aware search, plots."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from _darts_helpers import FlopsTable, one_thread, same_state, tiny_digits, tiny_nb201  # noqa: F401

from supernets import DartsConfig, SupernetError, search_darts, table_latency
from supernets._darts import search as search_module


def _config(**kw) -> DartsConfig:
    return DartsConfig(**{"epochs": 2, "batch_size": 64, "seed": 0, **kw})


def test_search_writes_run_files_and_a_safe_checkpoint(tmp_path):
    space, data = tiny_nb201(), tiny_digits()
    result = search_darts(space, _config(), data, tmp_path, space_options={"channels": 4})
    assert space.validate(result.arch) == result.arch
    for name in ("checkpoint.pt", "checkpoint.json", "metrics.csv", "alphas.json", "alphas.csv", "derived.json"):
        assert (tmp_path / name).is_file(), name
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and "alpha.0" in state["model"]
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["space"] == "nb201" and meta["fingerprint"] == space.fingerprint
    assert meta["space_options"] == {"channels": 4} and meta["config"]["epochs"] == 2
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and 0 <= float(rows[-1]["val_acc"]) <= 1
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    first, last = result.history[0]["alphas"]["cell"], result.history[-1]["alphas"]["cell"]
    assert first != last  # the architecture parameters were trained
    derived = json.loads((tmp_path / "derived.json").read_text())
    assert derived["arch"] == result.arch.to_dict()


def test_resume_after_an_interruption_is_bit_exact(tmp_path, monkeypatch):
    space, data = tiny_nb201(), tiny_digits()
    straight = search_darts(space, _config(order=2), data, tmp_path / "a")

    real = search_module.DartsSearch.run_epoch
    calls = []

    def interrupted(self, bar):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, bar)

    monkeypatch.setattr(search_module.DartsSearch, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        search_darts(space, _config(order=2), data, tmp_path / "b")
    monkeypatch.setattr(search_module.DartsSearch, "run_epoch", real)
    resumed = search_darts(space, _config(order=2), data, tmp_path / "b")
    assert same_state(straight.supernet.state_dict(), resumed.supernet.state_dict())
    assert resumed.arch == straight.arch
    assert [m["val_loss"] for m in resumed.metrics] == [m["val_loss"] for m in straight.metrics]
    assert resumed.history == straight.history


def test_resume_refuses_a_different_configuration(tmp_path):
    space, data = tiny_nb201(), tiny_digits(n_train=64)
    search_darts(space, _config(epochs=1), data, tmp_path)
    with pytest.raises(SupernetError, match="different 'config'"):
        search_darts(space, _config(epochs=1, a_lr=0.1), data, tmp_path)
    search_darts(space, _config(epochs=1, a_lr=0.1), data, tmp_path, resume=False)  # starts over


def test_second_order_step_runs_and_differs_from_first_order():
    space, data = tiny_nb201(), tiny_digits()
    x, y = data.train.tensors[0][:32], data.train.tensors[1][:32]
    xv, yv = data.val.tensors[0][:32], data.val.tensors[1][:32]
    alphas = []
    for order in (1, 2):
        s = search_module.DartsSearch(space, _config(order=order, a_lr=0.01), data, None, 0.0)
        before = [p.detach().clone() for p in s.net.weight_parameters()]
        s.arch_step(x, y, xv, yv)
        after = s.net.weight_parameters()
        assert all(torch.equal(b, a) for b, a in zip(before, after, strict=True))  # weights restored
        alphas.append(s.net.alpha[0].detach().clone())
    assert torch.isfinite(alphas[1]).all()
    assert not torch.allclose(alphas[0], alphas[1])


def test_larger_latency_weight_gives_lower_table_latency(tmp_path):
    space, data, table = tiny_nb201(), tiny_digits(), FlopsTable()
    latencies = []
    for weight in (0.0, 1e4):
        result = search_darts(space, _config(epochs=2, a_lr=0.02), data, tmp_path / str(weight),
                              latency_table=table, latency_weight=weight)
        assert result.latency_ms == pytest.approx(
            table_latency(space, result.arch, table, data.input_shape, data.num_classes))
        latencies.append(result.latency_ms)
        assert "expected_latency_ms" in result.metrics[-1]
    assert latencies[1] < latencies[0]


def test_perturbation_derivation_through_the_search(tmp_path):
    space, data = tiny_nb201(), tiny_digits(n_train=64)
    cfg = _config(epochs=1, derive="perturbation", tune_steps=1, eval_batches=1)
    result = search_darts(space, cfg, data, tmp_path)
    assert space.validate(result.arch) == result.arch
    assert json.loads((tmp_path / "derived.json").read_text())["method"] == "perturbation"


def test_config_rejects_bad_values_naming_the_field():
    with pytest.raises(SupernetError, match=r"^order: `order in \(1, 2\)` must hold, but got 3$"):
        DartsConfig(order=3)
    with pytest.raises(SupernetError, match=r"^warmup_epochs: `0 <= warmup_epochs <= epochs`"):
        DartsConfig(epochs=2, warmup_epochs=3)
    assert DartsConfig(order=2).to_dict()["order"] == 2


def test_config_is_parsed_by_nas_config_with_key_paths():
    from nas.config import parse
    from nas.errors import ConfigError

    assert parse(DartsConfig, {"a_lr": "3e-4", "epochs": 2.0}) == DartsConfig(a_lr=3e-4, epochs=2)
    with pytest.raises(ConfigError, match=r"^supernet.search.epoch: unknown key \(did you mean 'epochs'\?\); valid keys: epochs, batch_size"):
        parse(DartsConfig, {"epoch": 3}, "supernet.search")
    with pytest.raises(ConfigError, match=r"^supernet.search.w_lr: `w_lr > 0` must hold, but got -0.001$"):
        parse(DartsConfig, {"w_lr": -1e-3}, "supernet.search")


def test_the_real_latency_table_serves_every_candidate_layer(tmp_path):
    from hardware import LatencyTable, Profiler, get_device

    space, data = tiny_nb201(), tiny_digits(n_train=64)
    table = LatencyTable.build(space, get_device("cpu", threads=1), input_shape=data.input_shape,
                               n_calibration=0, progress=False,
                               profiler=Profiler(warmup=1, min_runs=2, max_runs=2, time_budget_s=0.05))
    result = search_darts(space, _config(epochs=1), data, tmp_path, latency_table=table, latency_weight=1.0)
    assert result.latency_ms == pytest.approx(sum(table.lookup(s) for s in space.layers(
        result.arch, data.input_shape, data.num_classes)))
    assert result.metrics[-1]["expected_latency_ms"] > 0
