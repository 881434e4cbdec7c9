"""Shared fixtures: a tiny registered space and synthetic (unprofiled) latency tables."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
import torch

from hardware import LatencyTable, Measurement, Profiler, get_device
from hardware._table_file import COLUMNS, layer_row
from search_spaces import (
    SearchSpace,
    register_space,
)
from tests._spaces import tiny_space

FAST = dict(warmup=1, min_runs=3, max_runs=5, check_every=3, time_budget_s=0.02)
REF_MS = 2.0  # the fake reference's p10 at speed 1 (two samples, see DriftingProfiler)


@register_space("hw_tiny", replace=True)
def hw_tiny(width: int = 8) -> SearchSpace:
    """The tiny space of tests/_spaces.py, registered (tables re-create their space by name)."""
    return tiny_space(width, "hw_tiny")


def fake_latency(key: str) -> float:
    """A deterministic positive 'latency' per layer key."""
    return 0.01 + (zlib.crc32(key.encode()) % 1000) / 1000.0


def synthetic_table(space: SearchSpace, input_shape=None, num_classes=None, options=None,
                    a: float = 1.0, b: float = 0.0) -> LatencyTable:
    """A table with made-up latencies for every enumerable layer (no profiling)."""
    shape = tuple(input_shape or space.input_shape)
    classes = num_classes or space.num_classes
    specs = space.realisable_layers(shape, classes, n_samples=30, rng=0).specs
    rows = []
    for spec in specs:
        ms = fake_latency(spec.key)
        rows.append(layer_row(spec, Measurement.from_samples([ms, ms * 1.1], "min")))
    device = get_device("cpu", threads=1)
    metadata = {
        "format": "hwnas-latency-table", "version": 1,
        "space": {"name": space.name, "fingerprint": space.fingerprint, "options": dict(options or {}),
                  "enumeration": {"method": "grammar", "n_samples": 0}},
        "device": device.fingerprint(), "device_options": device.options(),
        "input_shape": list(shape), "num_classes": classes, "dtype": "float32", "batch_size": 1,
        "statistic": "min", "noise_floor_ms": 0.001, "created": "2026-01-01T00:00:00+00:00",
        "calibration": {"model": "linear", "a": a, "b": b, "n_networks": 3, "sum_over_measured": 0.9},
    }
    return LatencyTable(pd.DataFrame(rows, columns=list(COLUMNS)), metadata, space)


@pytest.fixture
def tiny():
    from search_spaces import get_space

    return get_space("hw_tiny")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class Recorder(torch.nn.Module):
    """An identity module that logs its name each time it runs (timing order checks)."""

    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x):
        self.log.append(self.name)
        return x


def _work_ms(module: torch.nn.Module) -> float:
    """A deterministic made-up latency at speed 1 (from the module's size)."""
    return 0.05 + sum(p.numel() for p in module.parameters()) / 1e4


class DriftingProfiler(Profiler):
    """Reports made-up timings; the machine is ``speeds[i]`` times slower in the i-th group."""

    def __init__(self, speeds):
        super().__init__(**FAST)
        self.speeds = list(speeds)
        self.calls = 0

    def measure_group(self, modules, input_shape, device, reference=True):
        speed = self.speeds[min(self.calls, len(self.speeds) - 1)]
        self.calls += 1
        out = [Measurement.from_samples([_work_ms(m) * speed, _work_ms(m) * speed * 1.5], self.statistic)
               for m in modules]
        ref = Measurement.from_samples([REF_MS * speed] * 2, self.statistic)
        return out, (ref if reference else None)
