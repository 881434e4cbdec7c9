"""Devices, precision, threads and device-independent checkpoints (on a CPU-only machine)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from _dist_workers import CPU, ofa_config, ofa_space, small_digits, train_ofa

from supernets import (
    ComputeConfig,
    OFASupernet,
    Runtime,
    SupernetError,
    load_supernet,
    sandwich_step,
)
from supernets.runtime import autocast, default_threads, resolve_device


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread (fast on a shared machine); the trainers set it, this restores it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cuda_without_a_gpu_is_one_clear_error(no_gpu) -> None:
    for name in ("cuda", "cuda:1"):
        with pytest.raises(SupernetError) as err:
            resolve_device(name)
        message = str(err.value)
        assert "\n" not in message and f"device: {name!r}" in message and "no CUDA GPU" in message


def test_auto_is_the_cpu_without_a_gpu(no_gpu) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert Runtime(ComputeConfig(threads=1), set_threads=False).device == torch.device("cpu")


def test_fp16_is_refused_on_the_cpu_with_one_line(tmp_path) -> None:
    with pytest.raises(SupernetError, match="^precision: fp16 needs a CUDA device.*use bf16"):
        resolve_device("cpu", precision="fp16")
    with pytest.raises(SupernetError, match="precision: fp16 needs a CUDA device"):
        train_ofa(tmp_path, 1, ComputeConfig(device="cpu", precision="fp16", threads=1))
    assert not (tmp_path / "supernet.pt").exists()


def test_compute_config_names_the_bad_key() -> None:
    with pytest.raises(SupernetError, match="device: 'gpu' is not a device"):
        ComputeConfig(device="gpu")
    with pytest.raises(SupernetError, match="precision: 'fp8' unknown; valid: fp32, bf16, fp16"):
        ComputeConfig(precision="fp8")
    with pytest.raises(SupernetError, match="threads: must be >= 1, got 0"):
        ComputeConfig(threads=0)


def test_global_batch_must_divide_among_the_processes() -> None:
    rt = Runtime(CPU, set_threads=False)
    rt.world_size = 3  # as if 3 ranks
    with pytest.raises(SupernetError, match="batch_size: 16 is the global batch and must divide "
                                            "evenly among 3 processes"):
        rt.local_batch(16)
    rt.world_size = 4
    assert rt.local_batch(16) == 4


def test_default_threads_leave_busy_cores_alone() -> None:
    assert default_threads(1, cpus=2, load=10.0) == 1  # loaded 2-core machine: 1 thread
    assert default_threads(1, cpus=2, load=0.1) == 2  # quiet: every core
    assert default_threads(2, cpus=8, load=0.0) == 4  # shared among local processes
    assert default_threads(4, cpus=2, load=0.0) == 1


def test_runtime_sets_and_reports_the_threads() -> None:
    rt = Runtime(ComputeConfig(device="cpu", threads=2))
    assert torch.get_num_threads() == 2
    assert rt.describe() == {"device": "cpu", "precision": "fp32", "channels_last": False,
                             "threads": 2, "world_size": 1}


def _steps(precision: str, channels_last: bool = False, n: int = 8) -> tuple[list[float], OFASupernet]:
    rt = Runtime(ComputeConfig(device="cpu", precision=precision, channels_last=channels_last),
                 data_parallel=False, set_threads=False)
    net = rt.prepare(OFASupernet.from_space(ofa_space(), 10, (1, 8, 8), seed=0)).train()
    config = ofa_config()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = small_digits().train.tensors
    x, y = rt.batch((x[:32], y[:32]))
    losses = []
    for i in range(n):
        rng = np.random.default_rng([0, i])
        losses.append(sandwich_step(net, opt, x, y, config.phases[0], config, rng, i, rt)[0])
    return losses, net


def test_a_bf16_autocast_step_runs_on_the_cpu_and_lowers_the_loss() -> None:
    seen = []
    with autocast(torch.device("cpu"), "bf16"):
        conv = torch.nn.Conv2d(1, 2, 3)
        seen.append(conv(torch.randn(1, 1, 5, 5)).dtype)
    assert seen == [torch.bfloat16]  # autocast is really on
    losses, net = _steps("bf16")
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.2, losses
    assert all(p.dtype == torch.float32 for p in net.parameters())  # master weights stay fp32


def test_channels_last_trains_like_the_default_layout() -> None:
    plain, _ = _steps("fp32", n=3)
    last, net = _steps("fp32", channels_last=True, n=3)
    assert np.allclose(plain, last, atol=1e-4), (plain, last)
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.dim() == 4)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def _as_if_saved_on_cuda(path: Path) -> None:
    """Rewrite a torch checkpoint so its storages say they were saved on ``cuda:0`` (what a
    checkpoint written from GPU tensors records)."""
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    pkl = next(name for name in entries if name.endswith("data.pkl"))
    tagged = entries[pkl].replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    assert tagged != entries[pkl]
    entries[pkl] = tagged
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def test_a_checkpoint_saved_on_cuda_loads_and_resumes_on_the_cpu(tmp_path, no_gpu) -> None:
    train_ofa(tmp_path / "run", 2)
    train_ofa(tmp_path / "whole", 3)
    weights = tmp_path / "run" / "supernet.pt"
    _as_if_saved_on_cuda(weights)
    with pytest.raises(RuntimeError, match="CUDA"):  # the simulation is real: a plain load fails
        torch.load(weights, weights_only=True)
    net, state = load_supernet(tmp_path / "run", ofa_space())
    assert state.step == 2 and next(net.parameters()).device.type == "cpu"
    train_ofa(tmp_path / "run", 3)  # resumes on the CPU, optimiser state included
    a = torch.load(tmp_path / "run" / "supernet.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "whole" / "supernet.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
