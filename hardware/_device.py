"""Devices: how a module is run and timed, with a fingerprint of the setup.

A :class:`Device` turns an ``nn.Module`` and an input shape into a *runner*: a
zero-argument callable that runs one forward pass and returns its wall time in
seconds. The :class:`~hardware.Profiler` only ever calls runners, so adding a
device means implementing :meth:`Device.prepare` and :meth:`Device.fingerprint`,
registering it under its ``kind`` and checking it with
:func:`hardware.testing.check_device`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from hardware.errors import DeviceUnavailableError, HardwareError
from search_spaces import Registry

__all__ = [
    "CPUDevice",
    "DEVICES",
    "CUDADevice",
    "Device",
    "OnnxRuntimeDevice",
    "Runner",
    "get_device",
    "list_devices",
    "processor_name",
    "register_device",
]

Runner = Callable[[], float]
"""Runs one forward pass and returns its duration in seconds."""

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
          "float16": torch.float16}

# Fingerprint keys that must match for a latency measured on one device to be
# served for another; library versions differ more often and only warn.
IDENTITY_KEYS = ("kind", "processor", "threads", "dtype", "batch_size", "gpu", "clock")
VERSION_KEYS = ("torch", "onnxruntime", "cuda")


def processor_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


class Device(ABC):
    """How a module runs and is timed.

    Contract (checked by :func:`hardware.testing.check_device`):

    - :meth:`prepare` returns a runner whose every call runs exactly one forward
      pass of the prepared module on a fixed input and returns the elapsed seconds
      (a positive finite number); it may be called many times, interleaved with
      other runners of the same device, but only inside :meth:`activate`.
    - ``prepare`` may copy or convert the module (ONNX export) and never changes the
      caller's module except for ``eval()``, the dtype of its floating-point tensors
      and, for an accelerator, the device they live on (moved in place, as
      ``nn.Module.to`` does, so that timing many modules holds no second copy):
      values, BatchNorm statistics included, stay as they were.
    - :meth:`activate` is a context manager that restores torch's global settings
      (threads, grad and inference mode) on exit.
    - :meth:`fingerprint` is plain JSON data with the keys ``IDENTITY_KEYS`` and
      ``VERSION_KEYS``; :meth:`options` is plain JSON data such that
      ``get_device(kind, **options())`` re-creates the device (same fingerprint), so
      a device is registered under its :attr:`kind`.
    - A constructor raises :class:`~hardware.DeviceUnavailableError` when the
      machine lacks what the device needs (a GPU, a package).

    Args:
        dtype: ``"float32"`` (default), ``"float64"``, ``"bfloat16"`` or ``"float16"``.
        batch_size: the batch dimension of the timed input.
    """

    kind = "abstract"

    def __init__(self, dtype: str = "float32", batch_size: int = 1) -> None:
        if dtype not in DTYPES:
            raise HardwareError(f"device {self.kind!r}: dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise HardwareError(f"device {self.kind!r}: batch_size must be an int >= 1, got {batch_size!r}")
        self.dtype = dtype
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options()})"

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def options(self) -> dict[str, Any]:
        """The options that recreate this device with :func:`get_device`."""
        return {"dtype": self.dtype, "batch_size": self.batch_size}

    def fingerprint(self) -> dict[str, Any]:
        """What the timings depend on: processor, cores, threads, library versions,
        dtype and batch size (plain JSON data)."""
        return {
            "kind": self.kind,
            "processor": processor_name(),
            "machine": platform.machine(),
            "cores": os.cpu_count(),
            "threads": None,
            "torch": torch.__version__,
            "onnxruntime": _onnxruntime_version(),
            "python": platform.python_version(),
            "dtype": self.dtype,
            "batch_size": self.batch_size,
            "gpu": None,
            "cuda": None,
            "clock": "wall",
        }

    def example_input(self, input_shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(self.batch_size, *input_shape, generator=gen).to(self.torch_dtype)

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Context in which runners are called (thread settings, inference mode)."""
        with torch.inference_mode():
            yield

    @abstractmethod
    def prepare(self, module: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        """A runner timing one forward pass of ``module`` on a (batch, *input_shape) input."""


class _TorchThreads:
    """Set torch's intra-op thread count for a block and restore it afterwards."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.previous)


def _threads(kind: str, threads: int | str | None) -> int:
    if threads is None or threads == "all" or threads == 0:
        return os.cpu_count() or 1
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise HardwareError(
            f"device {kind!r}: threads must be an int >= 1 or 'all' (0), got {threads!r}"
        )
    return threads


class CPUDevice(Device):
    """PyTorch eager on the CPU with a fixed number of intra-op threads.

    Args:
        threads: 1 (the usual choice for stable timings), N, or ``"all"`` / 0 for
            every core.
        clock: ``"wall"`` (default: elapsed time, what a user waits) or ``"thread"``:
            CPU time of the timing thread, which leaves out time the thread spent
            preempted by other processes. Only with ``threads=1`` (torch then runs
            every op on the calling thread); useful on a shared, oversubscribed
            machine, where wall time of long runs is inflated by preemption.
    """

    kind = "cpu"

    def __init__(self, threads: int | str | None = 1, dtype: str = "float32", batch_size: int = 1,
                 clock: str = "wall") -> None:
        super().__init__(dtype, batch_size)
        self.threads = _threads(self.kind, threads)
        if clock not in ("wall", "thread"):
            raise HardwareError(f"device 'cpu': clock must be 'wall' or 'thread', got {clock!r}")
        if clock == "thread" and self.threads != 1:
            raise HardwareError(
                f"device 'cpu': clock='thread' needs threads=1 (got {self.threads}): with more "
                "threads the work runs on other threads and one thread's CPU time misses it"
            )
        self.clock = clock

    def options(self) -> dict[str, Any]:
        return {"threads": self.threads, **super().options(), "clock": self.clock}

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "threads": self.threads, "clock": self.clock}

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        with _TorchThreads(self.threads), torch.inference_mode():
            yield

    def prepare(self, module: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        module = module.eval().to(self.torch_dtype)
        x = self.example_input(input_shape)
        clock = time.perf_counter if self.clock == "wall" else time.thread_time

        def run() -> float:
            start = clock()
            module(x)
            return clock() - start

        return run


class CUDADevice(Device):
    """PyTorch eager on a CUDA GPU, timed with CUDA events after synchronisation.

    Args:
        index: the GPU index.
    """

    kind = "cuda"

    def __init__(self, index: int = 0, dtype: str = "float32", batch_size: int = 1) -> None:
        super().__init__(dtype, batch_size)
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device 'cuda' needs a CUDA GPU, but torch {torch.__version__} reports none "
                "(torch.cuda.is_available() is False); use 'cpu' or 'onnxruntime'"
            )
        if not 0 <= index < torch.cuda.device_count():
            raise HardwareError(
                f"device 'cuda': index {index} out of range; {torch.cuda.device_count()} GPU(s) present"
            )
        self.index = index

    def options(self) -> dict[str, Any]:
        return {"index": self.index, **super().options()}

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "gpu": torch.cuda.get_device_name(self.index),
                "cuda": torch.version.cuda}

    def prepare(self, module: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        target = torch.device("cuda", self.index)
        module = module.eval().to(target, self.torch_dtype)
        x = self.example_input(input_shape).to(target)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def run() -> float:
            torch.cuda.synchronize(target)  # nothing queued before the start event
            start.record()
            module(x)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3

        return run


class OnnxRuntimeDevice(Device):
    """ONNX Runtime on the CPU: the module is exported to ONNX (in memory) first.

    Args:
        threads: intra-op threads of the session (1, N, or ``"all"`` / 0).
        opset: ONNX opset of the export.
        precision: ``"fp32"`` (default) or ``"int8"``: the exported model is quantised
            statically to INT8 before it is timed (:mod:`hardware._onnx`); the
            fingerprint's ``dtype`` is then ``"int8"``, so INT8 and FP32 tables never mix.
    """

    kind = "onnxruntime"

    def __init__(self, threads: int | str | None = 1, dtype: str = "float32", batch_size: int = 1,
                 opset: int = 17, precision: str = "fp32") -> None:
        super().__init__(dtype, batch_size)
        if dtype != "float32":
            raise HardwareError(f"device 'onnxruntime' supports dtype 'float32' only, got {dtype!r}")
        if precision not in ("fp32", "int8"):
            raise HardwareError(f"device 'onnxruntime': precision must be 'fp32' or 'int8', got {precision!r}")
        if _onnxruntime_version() is None:
            raise DeviceUnavailableError(
                "device 'onnxruntime' needs the onnx and onnxruntime packages, which hwnas depends on: "
                "this installation lacks them (pip install onnx onnxruntime)"
            )
        self.threads = _threads(self.kind, threads)
        self.opset = opset
        self.precision = precision

    def options(self) -> dict[str, Any]:
        extra = {"precision": self.precision} if self.precision != "fp32" else {}
        return {"threads": self.threads, **super().options(), **extra}

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "threads": self.threads, "provider": "CPUExecutionProvider",
                "dtype": "int8" if self.precision == "int8" else self.dtype}

    def prepare(self, module: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        import onnxruntime as ort

        from hardware._onnx import export_onnx, to_precision

        x = self.example_input(input_shape)
        model = to_precision(export_onnx(module, x, self.opset), tuple(x.shape), self.precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        clock = time.perf_counter

        def run() -> float:
            start = clock()
            session.run(None, feed)
            return clock() - start

        return run


DEVICES: Registry[Callable[..., Device]] = Registry("device", HardwareError)
"""Device factories ``(**options) -> Device`` by name."""


def register_device(name: str, *, replace: bool = False) -> Callable[[Callable[..., Device]], Callable[..., Device]]:
    """Decorator registering a device factory ``(**options) -> Device`` under ``name``."""
    return DEVICES.register(name, replace=replace)


register_device("cpu")(CPUDevice)
register_device("cuda")(CUDADevice)
register_device("onnxruntime")(OnnxRuntimeDevice)


def list_devices() -> list[str]:
    """Names of the registered devices, sorted."""
    return DEVICES.names()


def get_device(name: str, **options: Any) -> Device:
    """Create a registered device, e.g. ``get_device("cpu", threads=1)``.

    Raises:
        HardwareError: for an unknown name (listing the valid ones), an unknown
            option (listing the device's options) or a device that is absent.
    """
    return DEVICES.create(name, **options)
