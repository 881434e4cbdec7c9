"""Where and how tensors are computed: device, precision, threads, processes.

One :class:`ComputeConfig` (the experiment file's ``compute:`` section) is handed to
every stage that runs a network: OFA training, DARTS search, subnet evaluation with
BN recalibration, the predictor and baseline stages, standalone training and export
verification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from supernets.errors import SupernetError

__all__ = ["PRECISIONS", "ComputeConfig"]

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class ComputeConfig:
    """Device, precision and parallelism of the stages that run networks.

    Args:
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``bf16`` (autocast; runs on CPU too) or ``fp16`` (autocast
            with a gradient scaler; CUDA only).
        channels_last: use the channels-last memory format for 4-D activations.
        threads: torch intra-op threads per process (``None``: the project's default).
        processes: data-parallel processes on this machine (``nas supernet train
            --nproc`` overrides it; under ``torchrun`` the launcher decides).
    """

    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    threads: int | None = field(default=None, metadata={"ge": 1})
    processes: int = field(default=1, metadata={"ge": 1})

    def __post_init__(self) -> None:
        dev = self.device
        ok = dev in ("auto", "cpu", "cuda") or (
            dev.startswith("cuda:") and dev[5:].isdigit())
        if not ok:
            raise SupernetError(f"device: {dev!r} is not a device; use auto, cpu, cuda or cuda:N")
        if self.precision not in PRECISIONS:
            raise SupernetError(f"precision: {self.precision!r} unknown; valid: {', '.join(PRECISIONS)}")
        if self.threads is not None and self.threads < 1:
            raise SupernetError(f"threads: must be >= 1, got {self.threads}")
        if self.processes < 1:
            raise SupernetError(f"processes: must be >= 1, got {self.processes}")
