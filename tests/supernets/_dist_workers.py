"""Worker functions of the data-parallel tests: several real processes (gloo on the CPU).

Kept in a module of their own so that ``torch.multiprocessing.spawn`` and plain
subprocesses can import them.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import TensorDataset

from search_spaces import NUM_CLASSES, Grammar, Op, Repeat, SearchSpace, Seq, Value, get_space
from supernets import ComputeConfig, DartsConfig, OFATrainConfig, PhaseConfig
from supernets.data import DataSplits, load_dataset

CPU = ComputeConfig(device="cpu", threads=1, sync_bn=True)  # exact equivalence needs global BN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world: int, port: int) -> dict[str, str]:
    """What torchrun sets for one rank on one machine."""
    return {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "NAS_DIST_TIMEOUT_S": "60"}


def ofa_space() -> SearchSpace:
    net = Seq(
        stem=Op("conv_bn_act", out=Value([8, 12]), kernel=3),
        stage=Repeat(Op("mbconv", out=16, kernel=Value([3, 5]), expand=Value([2, 3])), depth=[1, 2],
                     first=Op("mbconv", out=16, kernel=Value([3, 5]), expand=Value([2, 3]), stride=2)),
        head=Op("classifier", out=NUM_CLASSES),
    )
    return SearchSpace(Grammar({"net": net}), name="tiny", input_shape=(1, 8, 8), num_classes=10)


def small_digits(n_train: int = 48, n_val: int = 32) -> DataSplits:
    full = load_dataset("digits")

    def head(ds: TensorDataset, n: int) -> TensorDataset:
        return TensorDataset(*(t[:n] for t in ds.tensors))

    return DataSplits("digits", head(full.train, n_train), head(full.val, n_val),
                      head(full.test, n_val), full.input_shape, full.num_classes)


def ofa_config() -> OFATrainConfig:
    """Global batch 16 over 48 images (3 steps an epoch): 2 steps of the full network (the
    phase ends with an evaluation), then the sandwich with a random subnet."""
    phases = (PhaseConfig("full", (), steps=2, lr=0.1, n_random=0),
              PhaseConfig("all", ("kernel", "depth", "width"), steps=20, lr=0.05, n_random=1))
    return OFATrainConfig(phases=phases, batch_size=16, checkpoint_every=1, calib_images=16)


def darts_config() -> DartsConfig:
    return DartsConfig(epochs=1, batch_size=16, seed=0)


def train_ofa(run_dir: Path, max_steps: int, compute: ComputeConfig = CPU) -> None:
    from supernets import train_supernet

    train_supernet(ofa_space(), ofa_config(), small_digits(), run_dir, max_steps=max_steps,
                   progress=False, compute=compute)


def search_darts_tiny(run_dir: Path) -> None:
    from supernets import search_darts

    space = get_space("nb201", channels=4, cells_per_stage=1, input_shape=(1, 8, 8))
    search_darts(space, darts_config(), small_digits(64, 32), run_dir, progress=False, compute=CPU)


def _two_rank_jobs(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(rank_env(rank, world, port))
    torch.set_num_threads(1)
    try:
        train_ofa(Path(root) / "ofa2", max_steps=4)
        train_ofa(Path(root) / "resumed", max_steps=3)
        search_darts_tiny(Path(root) / "darts2")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_two_rank_jobs(root: Path) -> None:
    """The 2-process half of the equivalence tests, in 2 spawned processes."""
    import torch.multiprocessing as mp

    mp.spawn(_two_rank_jobs, args=(2, free_port(), str(root)), nprocs=2)


def failing_rank() -> None:
    """Entry of the dead-rank test: rank 1 raises right after joining; rank 0 trains."""
    from supernets.distributed import init_from_env

    torch.set_num_threads(1)
    init_from_env()
    if int(os.environ["RANK"]) == 1:
        raise RuntimeError("rank 1 fails on purpose")
    train_ofa(Path(sys.argv[1]), max_steps=4)
