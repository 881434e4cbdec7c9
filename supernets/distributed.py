"""Data-parallel helpers over ``torch.distributed``, for launchers and trainers alike.

A worker process is started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``), by ``nas supernet train --nproc``
or by Ray Train (whose ``TorchTrainer`` initialises the process group itself). Each
calls :func:`init_from_env` first: it uses a process group that exists, creates one
when the environment says ``WORLD_SIZE > 1`` (gloo on CPU, nccl on CUDA, with a
timeout so that a dead rank fails the run instead of hanging it) and otherwise
leaves the process alone. Every helper below works in a single process too (the
collectives are then no-ops), so trainers call them unconditionally.

How the supernet trainers use them (see ``docs/decisions/ddp-weight-sharing.md``):
no ``DistributedDataParallel`` wrapper; after all backward passes of a step,
:func:`all_reduce_grads` averages every trainable parameter's gradient over the ranks
(zeros for a parameter the step's subnets did not use), so no rank waits for a
gradient that another never computes; :func:`synced_batch_norm` makes training-mode
batch norm use the statistics of the global batch.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.overrides import TorchFunctionMode

from supernets.errors import SupernetError

__all__ = ["DEFAULT_TIMEOUT_S", "DistributedError", "all_reduce_grads", "all_reduce_mean",
           "all_reduce_tensors",
           "barrier", "broadcast_object", "broadcast_module", "init_from_env", "is_main",
           "local_rank", "local_world_size", "rank", "synced_batch_norm", "world_size"]

DEFAULT_TIMEOUT_S = 600.0
"""Seconds a collective waits for the other ranks (env ``NAS_DIST_TIMEOUT_S`` overrides)."""


class DistributedError(SupernetError):
    """A collective failed: another rank died, timed out or disagrees."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise DistributedError(f"environment variable {name}={value!r} is not an integer") from None


def init_from_env(device_type: str = "cpu", timeout_s: float | None = None) -> bool:
    """Join the data-parallel process group this process was started in, if any.

    Args:
        device_type: ``"cpu"`` (gloo backend) or ``"cuda"`` (nccl).
        timeout_s: how long a collective waits for a missing rank before the run fails
            (default: env ``NAS_DIST_TIMEOUT_S`` or :data:`DEFAULT_TIMEOUT_S`).

    Returns:
        True when this process is one of several (a process group is initialised).

    Raises:
        DistributedError: ``WORLD_SIZE > 1`` without ``RANK`` / ``MASTER_ADDR`` /
            ``MASTER_PORT``, or the rendezvous failed.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if _env_int("WORLD_SIZE", 1) <= 1:
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} "
                               "not set; start the workers with torchrun or nas supernet train --nproc")
    if timeout_s is None:
        timeout_s = float(os.environ.get("NAS_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    backend = "nccl" if device_type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"rank {os.environ['RANK']}: joining the process group at "
                               f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} failed: "
                               f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    return dist.get_world_size() > 1


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 in a single process)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """Number of data-parallel processes (1 in a single process)."""
    return dist.get_world_size() if _active() else 1


def local_rank() -> int:
    """This process's rank on its machine (env ``LOCAL_RANK``; 0 when unset)."""
    return _env_int("LOCAL_RANK", 0) if _active() else 0


def local_world_size() -> int:
    """Data-parallel processes on this machine (env ``LOCAL_WORLD_SIZE``, else the world)."""
    return _env_int("LOCAL_WORLD_SIZE", world_size()) if _active() else 1


def is_main() -> bool:
    """True on rank 0, the one process that writes checkpoints, metrics and progress."""
    return rank() == 0


@contextlib.contextmanager
def _collective(what: str) -> Iterator[None]:
    """Turns a failed collective into one clear line naming this rank."""
    try:
        yield
    except (RuntimeError, dist.DistBackendError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise DistributedError(
            f"rank {rank()}/{world_size()}: {what} failed, another rank died or timed out "
            f"(its own error is in that rank's log; restart resumes from the last checkpoint): "
            f"{first}") from None


def _collective_device() -> torch.device:
    """Where small tensors of a collective live: the process's GPU under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if _active():
        with _collective("barrier"):
            dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (plain picklable data only: the ranks are
    processes of one trusted run, never a user's file)."""
    if not _active():
        return obj
    box = [obj]
    with _collective("broadcast"):
        dist.broadcast_object_list(box, src=src)
    return box[0]


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into ``module`` on every rank."""
    if not _active():
        return
    with _collective("broadcast of the weights"):
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=src)


def _buckets(tensors: Sequence[torch.Tensor], bucket_bytes: int) -> Iterator[list[int]]:
    bucket: list[int] = []
    size = 0
    for i, t in enumerate(tensors):
        same = not bucket or (t.dtype == tensors[bucket[0]].dtype
                              and t.device == tensors[bucket[0]].device)
        if bucket and (not same or size + t.numel() * t.element_size() > bucket_bytes):
            yield bucket
            bucket, size = [], 0
        bucket.append(i)
        size += t.numel() * t.element_size()
    if bucket:
        yield bucket


@torch.no_grad()
def all_reduce_tensors(tensors: Sequence[torch.Tensor], weight: float | None = None,
                       bucket_mb: float = 25.0) -> None:
    """Average ``tensors`` over the ranks, in place (flattened into buckets of about
    ``bucket_mb`` MB, one ``all_reduce`` each); every rank passes the same shapes in the
    same order.

    Args:
        weight: this rank's share when the ranks' batches differ in size (e.g. its
            number of samples): the result is ``sum(w_r * t_r) / sum(w_r)``. Default:
            the plain mean over ranks.
    """
    if not _active() or not tensors:
        return
    scale = 1.0 / world_size()
    with _collective("gradient all-reduce"):
        if weight is not None:
            total = torch.tensor([float(weight)], dtype=torch.float64, device=tensors[0].device)
            dist.all_reduce(total)
            scale = 1.0 / float(total)
        for bucket in _buckets(tensors, int(bucket_mb * 2**20)):
            flat = torch.cat([tensors[i].reshape(-1) for i in bucket])
            if weight is not None:
                flat.mul_(float(weight))
            dist.all_reduce(flat)
            flat.mul_(scale)
            offset = 0
            for i in bucket:
                n = tensors[i].numel()
                tensors[i].copy_(flat[offset:offset + n].view_as(tensors[i]))
                offset += n


@torch.no_grad()
def all_reduce_grads(params: Iterable[nn.Parameter], weight: float | None = None,
                     bucket_mb: float = 25.0) -> None:
    """Average the gradients of ``params`` over the ranks, in place.

    Every rank reduces the same tensors in the same order whichever subnets it ran, so
    there is no hang and no dropped gradient: a parameter that has a gradient on some
    rank takes part with zeros where it has none (and gets the average everywhere); a
    parameter no rank used keeps no gradient, so the optimiser skips it (no weight
    decay, no momentum step) exactly as a single process would. See
    :func:`all_reduce_tensors` for ``weight`` and ``bucket_mb``.

    Args:
        params: the trainable parameters (the same list, in the same order, on every rank).
    """
    if not _active():
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    used = torch.tensor([p.grad is not None for p in params], dtype=torch.float32,
                        device=params[0].device)
    with _collective("gradient all-reduce"):
        dist.all_reduce(used)
    params = [p for p, n in zip(params, used.tolist()) if n > 0]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    all_reduce_tensors([p.grad for p in params], weight, bucket_mb)


def all_reduce_mean(values: Sequence[float]) -> list[float]:
    """The mean over ranks of each of ``values`` (e.g. a step's loss for the metrics)."""
    if not _active():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_collective_device())
    with _collective("all-reduce of the metrics"):
        dist.all_reduce(t)
    return (t / world_size()).tolist()


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks too (each rank's input
    feeds every rank's output)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def _global_batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None,
                       running_var: torch.Tensor | None, weight: torch.Tensor | None,
                       bias: torch.Tensor | None, momentum: float, eps: float) -> torch.Tensor:
    """Training-mode batch norm over the union of every rank's batch (autograd through the
    all-reduce, so each rank's gradient includes the other ranks' losses' dependence on
    its samples)."""
    dims = [d for d in range(x.dim()) if d != 1]
    xf = x.float()
    count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float32, device=x.device)
    stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])
    with _collective("batch-norm statistics all-reduce"):
        stats = _AllReduceSum.apply(stats)
    c = x.shape[1]
    n = stats[-1]
    mean = stats[:c] / n
    var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            unbiased = var.detach() * (n / (n - 1)).clamp_min(1)
            running_var.mul_(1 - momentum).add_(momentum * unbiased)
    shape = [1, c] + [1] * (x.dim() - 2)
    out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        out = out * weight.float().view(shape)
    if bias is not None:
        out = out + bias.float().view(shape)
    return out.to(x.dtype)


class _SyncBatchNormMode(TorchFunctionMode):
    """Routes every training-mode ``F.batch_norm`` to :func:`_global_batch_norm`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.batch_norm:
            names = ("input", "running_mean", "running_var", "weight", "bias", "training",
                     "momentum", "eps")
            bound = dict(zip(names, args), **kwargs)
            if bound.get("training", False):
                return _global_batch_norm(
                    bound["input"], bound.get("running_mean"), bound.get("running_var"),
                    bound.get("weight"), bound.get("bias"), bound.get("momentum", 0.1),
                    bound.get("eps", 1e-5))
        return func(*args, **kwargs)


def synced_batch_norm() -> contextlib.AbstractContextManager[Any]:
    """A context in which training-mode batch norm normalises with the global batch's
    statistics (mean and variance all-reduced over the ranks, gradients too) and updates
    running statistics with them, so ``n`` ranks x batch ``b`` train like one process
    x batch ``n * b``. Works for any batch-norm module, including the slices a supernet's
    dynamic ops apply through ``functional_call``. A no-op in a single process.

    Every rank must run the same batch-norm layers in the same order (it does when all
    ranks activate the same subnets, as the supernet trainers guarantee).
    """
    return _SyncBatchNormMode() if _active() else contextlib.nullcontext()
