"""`Profiler`: robust latency of modules on a device, alone or interleaved.

Timings on a shared machine drift (block medians move 10-27% within a process)
and threads stall rarely but for long, while low order statistics move much
less. So every measurement keeps the whole distribution (min, p10, median, p90)
and the number the caller uses (:attr:`Measurement.value_ms`) is a configurable
statistic, a low percentile by default. Candidates that are compared are timed
round-robin (:meth:`Profiler.measure_many`), so drift hits all of them alike.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch import nn

from hardware._device import Device
from hardware.errors import HardwareError

__all__ = ["Measurement", "Profiler", "statistic_of"]

_PERCENTILE = re.compile(r"^p(\d{1,2})$")


def _check_statistic(statistic: str) -> str:
    if statistic in ("min", "median", "mean") or _PERCENTILE.match(statistic):
        return statistic
    raise HardwareError(
        f"statistic must be 'min', 'median', 'mean' or a percentile 'p0'..'p99' (e.g. 'p10'), "
        f"got {statistic!r}"
    )


def statistic_of(samples_ms: Sequence[float] | np.ndarray, statistic: str) -> float:
    """The named statistic of timing samples ('min', 'median', 'mean', 'pNN')."""
    arr = np.asarray(samples_ms, dtype=float)
    if statistic == "min":
        return float(arr.min())
    if statistic == "median":
        return float(np.median(arr))
    if statistic == "mean":
        return float(arr.mean())
    match = _PERCENTILE.match(_check_statistic(statistic))
    return float(np.percentile(arr, int(match.group(1))))  # type: ignore[union-attr]


@dataclass(frozen=True)
class Measurement:
    """The latency distribution of one module on one device (milliseconds).

    Attributes:
        value_ms: the configured statistic (what tables and objectives use).
        statistic: its name.
        noise_floor_ms: the time the same device path takes for a module that does
            nothing (timer and call overhead); differences below it are not signal.
    """

    value_ms: float
    statistic: str
    min_ms: float
    p10_ms: float
    median_ms: float
    p90_ms: float
    mean_ms: float
    n_runs: int
    noise_floor_ms: float

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative width of the bulk of the runs."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], statistic: str,
                     noise_floor_ms: float = 0.0) -> Measurement:
        arr = np.asarray(samples_ms, dtype=float)
        if arr.size == 0:
            raise HardwareError("a measurement needs at least one run")
        p10, p50, p90 = np.percentile(arr, [10, 50, 90])
        return cls(statistic_of(arr, statistic), statistic, float(arr.min()), float(p10),
                   float(p50), float(p90), float(arr.mean()), int(arr.size), float(noise_floor_ms))


class _NoOp(nn.Module):
    def forward(self, x):  # noqa: D102
        return x


class Profiler:
    """Times modules robustly: warm-up, then repeats until stable or out of budget.

    A module is *stable* when its statistic, recomputed every ``check_every``
    runs, moved by less than ``rel_tol`` since the previous check. Runs stop at
    stability (after ``min_runs``), at ``max_runs``, or when ``time_budget_s`` per
    module is spent, whichever comes first.

    Args:
        statistic: what :attr:`Measurement.value_ms` reports: 'p10' (default, robust
            to stalls and drift), 'min', 'median', 'mean' or any 'pNN'.
        warmup: untimed runs before timing (per module).
        min_runs, max_runs: bounds on timed runs per module.
        check_every: runs between stability checks.
        rel_tol: relative change of the statistic under which a module is stable.
        time_budget_s: wall-time budget per module (measure_many: times the number of modules).
    """

    def __init__(self, statistic: str = "p10", warmup: int = 3, min_runs: int = 10,
                 max_runs: int = 200, check_every: int = 10, rel_tol: float = 0.02,
                 time_budget_s: float = 1.0) -> None:
        self.statistic = _check_statistic(statistic)
        if warmup < 0 or min_runs < 1 or max_runs < min_runs or check_every < 1:
            raise HardwareError(
                "Profiler needs warmup >= 0, 1 <= min_runs <= max_runs and check_every >= 1, got "
                f"warmup={warmup}, min_runs={min_runs}, max_runs={max_runs}, check_every={check_every}"
            )
        if rel_tol <= 0 or time_budget_s <= 0:
            raise HardwareError(f"Profiler needs rel_tol > 0 and time_budget_s > 0, got {rel_tol}, {time_budget_s}")
        self.warmup, self.min_runs, self.max_runs = warmup, min_runs, max_runs
        self.check_every, self.rel_tol, self.time_budget_s = check_every, rel_tol, time_budget_s
        self._noise: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Profiler({self.settings()})"

    def settings(self) -> dict[str, Any]:
        """The constructor arguments (stored with tables)."""
        return {"statistic": self.statistic, "warmup": self.warmup, "min_runs": self.min_runs,
                "max_runs": self.max_runs, "check_every": self.check_every,
                "rel_tol": self.rel_tol, "time_budget_s": self.time_budget_s}

    # noise floor -----------------------------------------------------------------
    def noise_floor(self, device: Device) -> float:
        """Milliseconds the device path takes for a module that does nothing (cached per device)."""
        key = json.dumps(device.fingerprint(), sort_keys=True)
        if key not in self._noise:
            runner = device.prepare(_NoOp(), (1,))
            with device.activate():
                for _ in range(self.warmup + 5):
                    runner()
                samples = [runner() * 1e3 for _ in range(max(50, self.min_runs))]
            self._noise[key] = statistic_of(samples, self.statistic)
        return self._noise[key]

    # measuring ---------------------------------------------------------------------
    def measure(self, module: nn.Module, input_shape: Sequence[int], device: Device) -> Measurement:
        """Latency of one module on (batch, *input_shape) inputs."""
        return self.measure_many([module], input_shape, device)[0]

    def measure_many(self, modules: Sequence[nn.Module], input_shape: Sequence[int] | Sequence[Sequence[int]],
                     device: Device) -> list[Measurement]:
        """Latencies of several modules timed round-robin (one run of each per round).

        Args:
            modules: the modules.
            input_shape: one shape for all, or one shape per module.
            device: where to run them.
        """
        return self.measure_group(modules, input_shape, device, reference=False)[0]

    def measure_group(self, modules: Sequence[nn.Module],
                      input_shape: Sequence[int] | Sequence[Sequence[int]], device: Device,
                      reference: bool = True) -> tuple[list[Measurement], Measurement | None]:
        """Like :meth:`measure_many`, with the reference network as one more member.

        The reference (see :func:`hardware.reference_module`) is timed once per
        round, after the modules, warm and repeated to the length of the group's
        median module (see ``_matched``), so its statistic tells how fast the
        machine was, for runs of that length, while this group was timed; :func:`hardware.normalise` puts the group's timings
        on another moment's scale with it.

        Returns:
            The modules' measurements and the reference's (None when ``reference`` is False).
        """
        modules = list(modules)
        if not modules:
            return [], None
        shapes = _shapes(input_shape, len(modules))
        if reference:
            from hardware._reference import REFERENCE_INPUT, reference_module

            modules.append(reference_module())
            shapes.append(REFERENCE_INPUT)
        floor = self.noise_floor(device)
        runners = [device.prepare(m, s) for m, s in zip(modules, shapes, strict=True)]
        if reference:
            runners[-1] = _matched(runners[-1], runners[:-1], device)
        samples = _round_robin(runners, device, self)
        out = [Measurement.from_samples(s, self.statistic, floor) for s in samples]
        return (out[:-1], out[-1]) if reference else (out, None)


def _matched(reference: Any, runners: list, device: Device) -> Any:
    """The reference runner, made warm and about as long as the group's modules.

    One timed sample of the result runs the reference once untimed (so its time
    does not depend on which modules evicted its weights from the caches), then
    ``k`` times back to back and returns the mean, with ``k`` such that the ``k``
    runs last about as long as the median module of the group. On a machine that
    preempts the timing process, the chance that a run is interrupted grows with
    its length, so a 1 ms reference would miss the slow-down that 15 ms networks
    suffer; a reference of matched length sees the same.
    """
    with device.activate():
        reference()
        ref_s = max(reference(), 1e-9)
        module_s = float(np.median([run() for run in runners]))
    k = max(1, min(1000, round(module_s / ref_s)))

    def run() -> float:
        reference()
        return sum(reference() for _ in range(k)) / k

    return run


def _shapes(input_shape: Sequence[int] | Sequence[Sequence[int]], n: int) -> list[tuple[int, ...]]:
    if input_shape and all(isinstance(d, int) for d in input_shape):
        return [tuple(input_shape)] * n  # type: ignore[arg-type]
    shapes = [tuple(s) for s in input_shape]  # type: ignore[union-attr]
    if len(shapes) != n:
        raise HardwareError(f"measure_many: {len(shapes)} input shapes for {n} modules")
    return shapes


def _round_robin(runners: list, device: Device, p: Profiler) -> list[list[float]]:
    """Time runners in rounds until all are stable, ``max_runs`` or the budget."""
    n = len(runners)
    samples: list[list[float]] = [[] for _ in range(n)]
    last = [np.inf] * n
    stable = [False] * n
    with device.activate():
        for _ in range(p.warmup):
            for run in runners:
                run()
        deadline = time.perf_counter() + p.time_budget_s * n
        for round_index in range(1, p.max_runs + 1):
            for i, run in enumerate(runners):
                samples[i].append(run() * 1e3)
            if round_index >= p.min_runs and round_index % p.check_every == 0:
                for i in range(n):
                    now = statistic_of(samples[i], p.statistic)
                    stable[i] = abs(now - last[i]) <= p.rel_tol * max(now, 1e-9)
                    last[i] = now
                if all(stable):
                    break
            if round_index >= p.min_runs and time.perf_counter() > deadline:
                break
    return samples
