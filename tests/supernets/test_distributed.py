"""Data-parallel training in real processes (gloo, CPU): 2 ranks x batch b train like one
process x batch 2b, resume with another world size, only rank 0 writes, a dead rank
fails the run with one clear line."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _dist_workers import (
    free_port,
    rank_env,
    run_two_rank_jobs,
    search_darts_tiny,
    train_ofa,
)

from supernets import distributed

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The 2-process runs (one spawn for all of them) next to their 1-process twins."""
    root = tmp_path_factory.mktemp("ddp")
    run_two_rank_jobs(root)
    with torch.random.fork_rng(devices=[]):
        threads = torch.get_num_threads()
        try:
            train_ofa(root / "ofa1", max_steps=4)
            train_ofa(root / "resumed", max_steps=4)  # continues the 2-process run alone
            train_ofa(root / "whole", max_steps=4)
            search_darts_tiny(root / "darts1")
        finally:
            torch.set_num_threads(threads)
    return root


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())
    assert worst < 1e-4, worst
    moved = [k for k in a if a[k].is_floating_point() and "running" not in k]
    assert moved  # the comparison covers real weights


def test_ofa_two_ranks_train_like_one_process_with_the_whole_batch(runs) -> None:
    two, one = _weights(runs / "ofa2" / "supernet.pt"), _weights(runs / "ofa1" / "supernet.pt")
    _assert_close(two, one)
    # and training did change the weights (the comparison is not between two initialisations)
    from _dist_workers import ofa_config, ofa_space, small_digits

    from supernets import OFASupernet
    init = OFASupernet.from_space(ofa_space(), 10, small_digits().input_shape,
                                  seed=ofa_config().seed).state_dict()
    assert max(float((init[k] - one[k]).abs().max()) for k in init if "weight" in k) > 1e-3


def test_darts_first_order_two_ranks_equal_one_process(runs) -> None:
    two = torch.load(runs / "darts2" / "checkpoint.pt", weights_only=True)["model"]
    one = torch.load(runs / "darts1" / "checkpoint.pt", weights_only=True)["model"]
    _assert_close(two, one)
    alphas = [k for k in one if "alpha" in k]
    assert alphas and any(float(one[k].abs().max()) > 1e-2 for k in alphas)  # alphas moved


def test_resume_with_another_world_size_equals_an_uninterrupted_run(runs) -> None:
    _assert_close(_weights(runs / "resumed" / "supernet.pt"), _weights(runs / "whole" / "supernet.pt"))


def _metrics(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_only_rank_0_writes_the_metrics_of_the_global_batch(runs) -> None:
    rows, single = _metrics(runs / "ofa2" / "metrics.csv"), _metrics(runs / "ofa1" / "metrics.csv")
    steps = [int(r["step"]) for r in rows if r["loss"]]
    assert steps == [1, 2, 3, 4]  # one row per step, no duplicates from rank 1
    assert len(rows) == len(single) == 5  # and the end of the first phase
    for a, b in zip(rows, single):  # the logged loss is the global batch's
        if a["loss"]:
            assert abs(float(a["loss"]) - float(b["loss"])) < 1e-4


def test_phase_end_evaluation_is_the_same_as_in_one_process(runs) -> None:
    (two,) = [r for r in _metrics(runs / "ofa2" / "metrics.csv") if r["val_acc_largest"]]
    (one,) = [r for r in _metrics(runs / "ofa1" / "metrics.csv") if r["val_acc_largest"]]
    assert (two["val_acc_largest"], two["val_acc_smallest"]) == (
        one["val_acc_largest"], one["val_acc_smallest"])


def test_helpers_are_no_ops_in_one_process() -> None:
    assert not distributed.init_from_env()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.all_reduce_mean([1.5, 2.0]) == [1.5, 2.0]
    p = torch.nn.Parameter(torch.ones(3))
    distributed.all_reduce_grads([p])
    assert p.grad is None  # nothing to average with


def test_world_size_without_a_master_is_one_clear_error(monkeypatch) -> None:
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(distributed.DistributedError, match="RANK, MASTER_ADDR, MASTER_PORT not set"):
        distributed.init_from_env()


@pytest.mark.slow
def test_a_rank_that_dies_fails_the_run_with_a_clear_message(tmp_path) -> None:
    port = free_port()
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import _dist_workers; _dist_workers.failing_rank()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run")],
                              env={**os.environ, **rank_env(r, 2, port)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]  # a hang fails here
    assert procs[1].returncode != 0 and "fails on purpose" in outs[1][1]
    assert procs[0].returncode != 0
    last = outs[0][1].strip().splitlines()[-1]
    assert "DistributedError: rank 0/2:" in last and "another rank died" in last, last
