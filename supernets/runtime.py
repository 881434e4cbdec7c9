"""Where and how tensors are computed: device, precision, threads, processes.

One :class:`ComputeConfig` (the experiment file's ``compute:`` section) is handed to
every stage that runs a network: OFA training, DARTS search, subnet evaluation with
BN recalibration, the predictor and baseline stages, standalone training and export
verification. The helpers here turn it into torch objects: :func:`resolve_device`,
:func:`autocast` (a context for the forward passes), :func:`make_grad_scaler` (fp16
only) and :func:`apply_threads` (the threads policy, see :func:`default_threads`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from supernets.errors import SupernetError

__all__ = ["PRECISIONS", "ComputeConfig", "apply_threads", "autocast", "default_threads",
           "make_grad_scaler", "resolve_device", "to_device"]

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ComputeConfig:
    """Device, precision and parallelism of the stages that run networks.

    Args:
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``bf16`` (autocast; runs on CPU too) or ``fp16`` (autocast
            with a gradient scaler; CUDA only).
        channels_last: use the channels-last memory format for 4-D activations.
        threads: torch intra-op threads per process (``None``: the project's default,
            :func:`default_threads`).
        processes: data-parallel processes on this machine (``nas supernet train
            --nproc`` overrides it; under ``torchrun`` the launcher decides).
        sync_bn: under data parallelism, training-mode batch norm normalises with the
            global batch's statistics, so ``n`` processes x batch ``b`` train exactly like one
            process x ``n * b`` (also across a resume with another number of processes). It
            costs an all-reduce per batch-norm layer per forward pass: 2 CPU processes ran
            at 0.56x one process with it and 1.38-1.82x without, on the quickstart's small
            network. Off by default: each process normalises its own share, as
            ``DistributedDataParallel`` does (docs/decisions/ddp-weight-sharing.md).
    """

    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    threads: int | None = field(default=None, metadata={"ge": 1})
    processes: int = field(default=1, metadata={"ge": 1})
    sync_bn: bool = False

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


def resolve_device(device: str | torch.device = "auto", local_rank: int | None = None,
                   precision: str = "fp32") -> torch.device:
    """The ``torch.device`` a setting names, checked against this machine.

    Args:
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (or a ``torch.device``).
        local_rank: under data parallelism, this process's rank on its machine: plain
            ``cuda`` (and ``auto`` with a GPU) then means ``cuda:<local_rank>``, one GPU
            per process.
        precision: checked against the device (fp16 needs CUDA).

    Raises:
        SupernetError: CUDA asked for on a machine without one, a GPU index that does
            not exist, or fp16 on the CPU (one line each).
    """
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SupernetError(f"device: {str(device)!r} but torch finds no CUDA GPU on this "
                                "machine (torch " + torch.__version__ + "); use device: cpu or auto")
        index = int(name[5:]) if name.startswith("cuda:") else (local_rank or 0)
        if index >= torch.cuda.device_count():
            raise SupernetError(f"device: cuda:{index} does not exist; this machine has "
                                f"{torch.cuda.device_count()} GPU(s)")
        resolved = torch.device("cuda", index)
    elif name == "cpu":
        resolved = torch.device("cpu")
    else:
        raise SupernetError(f"device: {name!r} is not a device; use auto, cpu, cuda or cuda:N")
    if precision not in PRECISIONS:
        raise SupernetError(f"precision: {precision!r} unknown; valid: {', '.join(PRECISIONS)}")
    if precision == "fp16" and resolved.type == "cpu":
        raise SupernetError("precision: fp16 needs a CUDA device (gradient scaling of fp16 on "
                            "the CPU is not supported); use bf16 or fp32 on the CPU")
    return resolved


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The mixed-precision context of forward passes: ``torch.autocast`` for bf16/fp16,
    nothing for fp32. Losses and backward passes may stay inside or outside it."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def make_grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 (its ``state_dict`` belongs in checkpoints); None otherwise
    (bf16 has fp32's exponent range and needs none)."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move a tensor (or a tuple/list of them) to ``device``; 4-D float tensors optionally
    to the channels-last memory format."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device, channels_last) for b in batch)
    out = batch.to(device, non_blocking=True)
    if channels_last and out.dim() == 4 and out.is_floating_point():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def default_threads(local_processes: int = 1, cpus: int | None = None,
                    load: float | None = None) -> int:
    """The project's default torch threads per process: the cores not busy, shared out.

    ``(cpus - round(load)) // local_processes``, at least 1 and at most
    ``cpus // local_processes``, where ``load`` is the one-minute load average when the
    process starts. Threads beyond the idle cores spin on busy ones: measured on this
    project's 2-core machine under load 8-12, 12 training steps took 158 s with 2
    threads and 18 s with 1 (see ``docs/decisions/threads-default.md`` and
    ``bench/threads.py``).

    Args:
        local_processes: data-parallel processes on this machine.
        cpus: cores usable by this process (default: its CPU affinity).
        load: the load average (default: ``os.getloadavg()[0]``).
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    share = max(1, cpus // max(1, local_processes))
    return max(1, min(share, (cpus - round(load)) // max(1, local_processes)))


def apply_threads(threads: int | None, local_processes: int = 1) -> int:
    """Set torch's intra-op threads of this process (``None``: :func:`default_threads`);
    returns the number set (the run manifest records it)."""
    n = default_threads(local_processes) if threads is None else int(threads)
    if n < 1:
        raise SupernetError(f"threads: must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n


class Runtime:
    """How one process runs a training loop: device, precision, data parallelism.

    Built from a :class:`ComputeConfig` by every trainer (OFA, DARTS, standalone): with
    ``data_parallel`` (the supernet trainers) it joins the process group the launcher started (:func:`supernets.distributed.init_from_env`),
    picks the device (``cuda:<LOCAL_RANK>`` per process under data parallelism), sets
    the threads and creates the fp16 gradient scaler. A step then reads::

        with rt.step_context():              # synced BN under data parallelism
            with rt.autocast():
                loss = loss_fn(net(x))
            rt.backward(loss)
        rt.optimizer_step(opt, params)       # all-reduce of the gradients, scaler

    Attributes:
        config: the compute settings.
        device: the resolved device of this process.
        parallel: True when this process is one of several data-parallel ones.
        rank, world_size, is_main: this process among them (0, 1, True when not parallel).
        threads: torch intra-op threads of this process (set unless ``set_threads=False``).
        scaler: the fp16 gradient scaler (None for fp32 and bf16).
    """

    def __init__(self, config: ComputeConfig | None = None, data_parallel: bool = True,
                 set_threads: bool = True) -> None:
        from supernets import distributed

        self.config = config or ComputeConfig()
        if data_parallel:
            wants_cuda = self.config.device.startswith("cuda") or (
                self.config.device == "auto" and torch.cuda.is_available())
            distributed.init_from_env("cuda" if wants_cuda else "cpu")
        self.parallel = data_parallel and distributed.world_size() > 1
        self.rank = distributed.rank() if self.parallel else 0
        self.world_size = distributed.world_size() if self.parallel else 1
        self.is_main = self.rank == 0
        self.device = resolve_device(self.config.device, distributed.local_rank(),
                                     self.config.precision)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.threads = (apply_threads(self.config.threads, distributed.local_world_size())
                        if set_threads else torch.get_num_threads())
        self.scaler = make_grad_scaler(self.device, self.config.precision)

    def describe(self) -> dict[str, Any]:
        """What the run manifest records."""
        return {"device": str(self.device), "precision": self.config.precision,
                "channels_last": self.config.channels_last, "threads": self.threads,
                "world_size": self.world_size}

    def local_batch(self, global_batch: int, where: str = "batch_size") -> int:
        """This process's share of a global batch; refuses one that does not divide."""
        if global_batch % self.world_size:
            raise SupernetError(
                f"{where}: {global_batch} is the global batch and must divide evenly among "
                f"{self.world_size} processes; use a multiple of {self.world_size}")
        return global_batch // self.world_size

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` moved to the device (and channels-last when configured)."""
        module = module.to(self.device)
        if self.config.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def batch(self, batch: Any) -> Any:
        """A batch (tensor or tuple of tensors) moved to the device."""
        return to_device(batch, self.device, self.config.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward passes' mixed-precision context."""
        return autocast(self.device, self.config.precision)

    def step_context(self) -> contextlib.AbstractContextManager[Any]:
        """Around a step's forward and backward passes: global batch-norm statistics under
        data parallelism with ``sync_bn`` (:func:`supernets.distributed.synced_batch_norm`)."""
        from supernets.distributed import synced_batch_norm

        return synced_batch_norm() if self.parallel and self.config.sync_bn else contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled under fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def reduce_grads(self, params: list[torch.nn.Parameter], weight: float | None = None) -> None:
        """Average the gradients over the ranks (see :func:`supernets.distributed.all_reduce_grads`)."""
        from supernets.distributed import all_reduce_grads

        if self.parallel:
            all_reduce_grads(params, weight)

    def optimizer_step(self, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                       clip: float | None = None, weight: float | None = None) -> None:
        """All-reduce the gradients, unscale (fp16), clip and step."""
        self.reduce_grads(params, weight)
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
