"""The busy-machine guard: the build's own reference timings warn or refuse."""

from __future__ import annotations

import warnings

import pytest

from hardware import (
    BusyMachineError,
    BusyMachineWarning,
    LatencyTable,
    gap_beyond_noise,
    get_device,
)
from tests.hardware.conftest import DriftingProfiler

OPTIONS = dict(n_calibration=3, rng=0, progress=False, chunk_size=8)


def test_a_steady_machine_builds_silently(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error", BusyMachineWarning)
        table = LatencyTable.build(tiny, get_device("cpu"), profiler=DriftingProfiler([1.0]), **OPTIONS)
    check = table.metadata["machine_check"]
    assert check["verdict"] == "ok" and check["reference_drift"] == pytest.approx(1.0)
    assert "machine      ok" in table.summary()


def test_drift_warns_naming_the_figure_then_refuses(tiny, monkeypatch):
    monkeypatch.setattr("hardware._guard.MIN_RUNS", 2)  # the fake profiler times 2 runs per group
    with pytest.warns(BusyMachineWarning, match=r"varied 1\.60x across the 5 timing groups"):
        table = LatencyTable.build(tiny, get_device("cpu"), profiler=DriftingProfiler([1.0, 1.6]), **OPTIONS)
    assert table.metadata["machine_check"]["verdict"] == "warned"
    with pytest.raises(BusyMachineError, match=r"varied 5\.00x .*refused above 3\.0x"):
        LatencyTable.build(tiny, get_device("cpu"), profiler=DriftingProfiler([1.0, 5.0]), **OPTIONS)
    with pytest.warns(BusyMachineWarning):
        kept = LatencyTable.build(tiny, get_device("cpu"), profiler=DriftingProfiler([1.0, 5.0]),
                                  refuse_drift=None, **OPTIONS)
    assert kept.metadata["machine_check"]["verdict"] == "warned"


def test_too_few_runs_only_warn(tiny):
    """A quick profiler's figures (2 runs per group here) are too noisy to refuse a table."""
    with pytest.warns(BusyMachineWarning, match=r"varied 5\.00x .*too few runs per group \(2 < 10\)"):
        table = LatencyTable.build(tiny, get_device("cpu"), profiler=DriftingProfiler([1.0, 5.0]), **OPTIONS)
    assert table.metadata["machine_check"]["verdict"] == "warned"


def test_gap_beyond_noise_flags_the_issue_example():
    meta = {"calibration": {"loo_error": 0.04}, "machine_check": {"reference_drift": 1.1}}
    flag = gap_beyond_noise(meta, 0.170, 1.088)  # issue 18's report: table 0.170 ms, measured 1.088 ms
    assert flag is not None and "6.40x" in flag and "slower" in flag and "+-25%" in flag
    assert gap_beyond_noise(meta, 1.0, 1.2) is None and gap_beyond_noise(meta, 1.0, None) is None
    drifting = {"calibration": {"loo_error": 0.04}, "machine_check": {"reference_drift": 1.6}}
    assert gap_beyond_noise(drifting, 1.0, 1.5) is None  # within what the build's own drift allows
