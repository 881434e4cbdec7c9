import time

import numpy as np
import pytest
from conftest import Recorder
from torch import nn

from hardware import HardwareError, Measurement, Profiler, get_device, statistic_of


class Sleep(nn.Module):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return x


def test_statistics_of_a_known_sleep():
    profiler = Profiler(warmup=1, min_runs=5, max_runs=12, check_every=5, time_budget_s=2.0)
    m = profiler.measure(Sleep(0.005), (1,), get_device("cpu"))
    assert m.min_ms >= 4.9  # sleep never returns early
    assert m.min_ms <= m.p10_ms <= m.median_ms <= m.p90_ms
    assert m.median_ms < 60  # generous: the machine is shared
    assert 5 <= m.n_runs <= 12
    assert m.value_ms == pytest.approx(m.p10_ms) and m.statistic == "p10"
    assert 0 <= m.noise_floor_ms < 1.0


def test_statistic_is_configurable():
    m = Profiler(statistic="min", warmup=0, min_runs=3, max_runs=3).measure(
        Sleep(0.001), (1,), get_device("cpu"))
    assert m.value_ms == m.min_ms and m.n_runs == 3


def test_time_budget_stops_early():
    profiler = Profiler(warmup=0, min_runs=2, max_runs=1000, check_every=1000, time_budget_s=0.05)
    m = profiler.measure(Sleep(0.01), (1,), get_device("cpu"))
    assert 2 <= m.n_runs <= 8


def test_measure_many_is_round_robin():
    log: list[str] = []
    modules = [Recorder(name, log) for name in "abc"]
    profiler = Profiler(warmup=1, min_runs=4, max_runs=4)
    out = profiler.measure_many(modules, (1,), get_device("cpu"))
    assert [m.n_runs for m in out] == [4, 4, 4]
    assert "".join(log) == "abc" * 5  # one warm-up round, then four timed rounds


def test_measure_many_accepts_one_shape_per_module():
    modules = [nn.Conv2d(3, 4, 3), nn.Linear(5, 2)]
    out = Profiler(warmup=0, min_runs=2, max_runs=2).measure_many(modules, [(3, 8, 8), (5,)],
                                                                  get_device("cpu"))
    assert len(out) == 2 and all(m.value_ms > 0 for m in out)


def test_statistic_of_and_measurement_from_samples():
    samples = np.arange(1, 101, dtype=float)
    assert statistic_of(samples, "min") == 1
    assert statistic_of(samples, "median") == pytest.approx(50.5)
    assert statistic_of(samples, "p10") == pytest.approx(np.percentile(samples, 10))
    m = Measurement.from_samples(samples, "p25", noise_floor_ms=0.5)
    assert (m.min_ms, m.n_runs, m.noise_floor_ms) == (1, 100, 0.5)
    assert m.value_ms == pytest.approx(np.percentile(samples, 25))
    assert m.spread == pytest.approx((m.p90_ms - m.p10_ms) / m.median_ms)


def test_bad_settings_are_rejected():
    with pytest.raises(HardwareError, match="statistic must be"):
        Profiler(statistic="p100")
    with pytest.raises(HardwareError, match="min_runs <= max_runs"):
        Profiler(min_runs=10, max_runs=5)
