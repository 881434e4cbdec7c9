"""The reference network: drift normalisation arithmetic, metadata, refusal of another reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REF_MS, DriftingProfiler, Recorder, synthetic_table

from hardware import (
    HardwareError,
    LatencyTable,
    Measurement,
    Profiler,
    TableMismatchError,
    get_device,
    normalise,
    reference_module,
    reference_spec,
    speed_factor,
    validate,
)
from hardware._reference import REFERENCE_INPUT


def test_normalise_and_speed_factor_arithmetic():
    m = Measurement.from_samples([10.0, 12.0, 20.0], "min", noise_floor_ms=0.01)
    factor = speed_factor(2.0, 2.5)  # the machine is 25% slower now than at build
    assert factor == pytest.approx(0.8)
    scaled = normalise(m, factor)
    for name in ("value_ms", "min_ms", "p10_ms", "median_ms", "p90_ms", "mean_ms"):
        assert getattr(scaled, name) == pytest.approx(getattr(m, name) * 0.8)
    assert (scaled.n_runs, scaled.noise_floor_ms, scaled.statistic) == (3, 0.01, "min")
    with pytest.raises(HardwareError, match="must be positive"):
        speed_factor(2.0, 0.0)


def test_reference_module_is_fixed_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = reference_module(), reference_module()
    assert torch.equal(torch.random.get_rng_state(), state)
    x = torch.randn(1, *REFERENCE_INPUT)
    with torch.inference_mode():
        assert torch.equal(a(x), b(x)) and a(x).shape == (1, 100)
    spec = reference_spec(get_device("cpu", threads=1))
    assert spec["fingerprint"] == reference_spec()["fingerprint"] and len(spec["fingerprint"]) == 16
    assert spec["input_shape"] == list(REFERENCE_INPUT) and spec["dtype"] == "float32"


def test_reference_runs_warm_after_the_modules_of_every_round(monkeypatch):
    import hardware._reference as ref

    log: list[str] = []
    monkeypatch.setattr(ref, "reference_module", lambda: Recorder("R", log))
    modules = [Recorder("a", log), Recorder("b", log)]
    out, r = Profiler(warmup=1, min_runs=3, max_runs=3).measure_group(modules, (3,), get_device("cpu"))
    # the length probe (R R a b), then a warm-up round and 3 timed rounds, each ending in
    # one untimed R and the k timed ones (k matched to the modules' length)
    text = "".join(log)
    assert text.startswith("RRab")
    rounds = text[4:].split("a")[1:]
    assert len(rounds) == 4 and len(set(rounds)) == 1
    assert rounds[0].startswith("bRR") and set(rounds[0][1:]) == {"R"}
    assert r.n_runs == 3 and [m.n_runs for m in out] == [3, 3]


def test_measure_group_times_the_reference_in_every_round():
    modules = [torch.nn.Identity(), torch.nn.Identity()]
    out, ref = Profiler(warmup=0, min_runs=4, max_runs=4).measure_group(modules, (3,), get_device("cpu"))
    assert [m.n_runs for m in out] == [4, 4] and ref.n_runs == 4 and ref.value_ms > 0
    out, ref = Profiler(warmup=0, min_runs=2, max_runs=2).measure_group(modules, (3,), get_device("cpu"),
                                                                       reference=False)
    assert len(out) == 2 and ref is None


def test_build_under_drift_equals_build_at_constant_speed(tiny):
    device = get_device("cpu", threads=1)
    kwargs = dict(n_calibration=3, rng=0, progress=False, chunk_size=4)
    steady = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0]), **kwargs)
    drifting = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0, 1.0, 1.3, 2.0, 0.7, 1.6]),
                                  **kwargs)
    n_groups = -(-len(steady) // 4)
    assert len(drifting.reference["layer_groups_ms"]) == n_groups > 3
    # the table's scale is the median reference time over the layer groups
    assert drifting.reference["ms"] == pytest.approx(np.median(drifting.reference["layer_groups_ms"]))
    assert steady.reference["ms"] == pytest.approx(REF_MS)
    scale = drifting.reference["ms"] / REF_MS  # build-time speed of the drifting machine
    np.testing.assert_allclose(drifting.entries["latency_ms"], steady.entries["latency_ms"] * scale)
    np.testing.assert_allclose(drifting.entries["median_ms"], steady.entries["median_ms"] * scale)
    # calibration networks, timed at speed 1.6, are put on the same scale
    cal = drifting.calibration
    assert cal["reference_ms"] == pytest.approx(REF_MS * 1.6)
    np.testing.assert_allclose(cal["measured_ms"], np.asarray(cal["measured_raw_ms"]) * scale / 1.6)
    np.testing.assert_allclose(cal["measured_ms"], np.asarray(steady.calibration["measured_ms"]) * scale)
    # ... so the two tables predict the same, up to the build-time scale
    archs = [tiny.sample(np.random.default_rng(i)) for i in range(10)]
    np.testing.assert_allclose(drifting.predict(archs), steady.predict(archs) * scale)


def test_raw_build_keeps_the_drift(tiny):
    device = get_device("cpu", threads=1)
    kwargs = dict(n_calibration=0, rng=0, progress=False, chunk_size=4, reference=False)
    steady = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0]), **kwargs)
    raw = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0, 2.0]), **kwargs)
    assert raw.reference is None and raw.entries["reference_ms"].isna().all()
    ratio = (raw.entries["latency_ms"] / steady.entries["latency_ms"]).to_numpy()
    np.testing.assert_allclose(ratio[:4], 1.0)
    np.testing.assert_allclose(ratio[4:], 2.0)  # layers profiled while the machine was slower


def test_validate_normalises_and_reports_raw_and_the_noise_ceiling(tiny):
    device = get_device("cpu", threads=1)
    table = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0]), n_calibration=3, rng=0,
                               progress=False)
    # validation: pass 1 at half speed (2x slower), pass 2 at 1.25x slower
    report = validate(table, n=8, rng=1, profiler=DriftingProfiler([2.0, 1.25]), repeats=2,
                      progress=False, drift_reference="reference")
    passes = np.asarray(report.info["passes_ms"])
    raw = np.asarray(report.info["raw_passes_ms"])
    np.testing.assert_allclose(passes[0], passes[1])  # drift between the passes is removed
    np.testing.assert_allclose(raw[0], raw[1] * 2.0 / 1.25)
    np.testing.assert_allclose(report.measured_ms, passes[0])
    assert report.info["reference"]["groups_ms"] == [[REF_MS * 2.0], [REF_MS * 1.25]]
    assert report.info["noise_ceiling"]["kendall_tau"] == pytest.approx(1.0)
    assert report.info["noise_ceiling"]["within_10"] == 1.0
    assert report.info["raw"]["mape_percent"] > report.mape
    assert "raw timings" in report.summary() and "noise ceiling" in report.summary()
    plain = validate(table, n=8, rng=1, profiler=DriftingProfiler([2.0]), drift_reference="none", progress=False)
    np.testing.assert_allclose(plain.measured_ms, raw[0])
    assert "raw" not in plain.info and "noise_ceiling" not in plain.info
    with pytest.raises(HardwareError, match="repeats must be"):
        validate(table, n=2, repeats=0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reference_record_round_trips(tiny, tmp_path, suffix):
    table = LatencyTable.build(tiny, get_device("cpu", threads=1),
                               profiler=DriftingProfiler([1.0, 1.5, 0.8]), n_calibration=3, rng=0,
                               progress=False, chunk_size=8)
    loaded = LatencyTable.load(table.save(tmp_path / f"lut{suffix}"))
    assert loaded.reference == table.reference and loaded.reference["ms"] > 0
    assert loaded.calibration["reference_ms"] == table.calibration["reference_ms"]
    np.testing.assert_allclose(loaded.entries["reference_ms"], table.entries["reference_ms"])
    assert "reference    mbconv-reference" in loaded.summary()


def test_a_table_with_another_reference_warns_on_load_and_refuses_to_normalise(tiny, tmp_path):
    table = LatencyTable.build(tiny, get_device("cpu", threads=1), profiler=DriftingProfiler([1.0]),
                               n_calibration=0, rng=0, progress=False)
    table.metadata["reference"] = {**table.reference, "name": "old-ref", "fingerprint": "0" * 16}
    path = table.save(tmp_path / "lut.csv")
    with pytest.warns(UserWarning, match="reference network 'old-ref'"):
        loaded = LatencyTable.load(path)
    with pytest.raises(TableMismatchError, match="cannot be put on the table's scale"):
        validate(loaded, n=2, rng=0, profiler=DriftingProfiler([1.0]), progress=False)  # no calibration nets
    report = validate(loaded, n=3, rng=0, profiler=DriftingProfiler([1.0]), drift_reference="none", progress=False)
    assert report.n == 3 and not report.info["normalised"]


def test_a_table_without_reference_cannot_be_validated_normalised(tiny):
    table = synthetic_table(tiny)  # made-up latencies, no reference record
    with pytest.raises(HardwareError, match="without a reference network"):
        validate(table, n=2, rng=0, profiler=DriftingProfiler([1.0]), drift_reference="reference", progress=False)


def test_validate_refuses_a_profiler_with_another_statistic_than_the_reference(tiny):
    table = LatencyTable.build(tiny, get_device("cpu", threads=1), profiler=DriftingProfiler([1.0]),
                               n_calibration=0, rng=0, progress=False)
    with pytest.raises(HardwareError, match="reference time is a 'p10' statistic, the profiler measures 'min'"):
        validate(table, n=2, rng=0, profiler=Profiler(statistic="min"), progress=False)


def test_validate_normalises_by_the_calibration_networks_by_default(tiny):
    device = get_device("cpu", threads=1)
    table = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0]), n_calibration=3, rng=0,
                               progress=False)
    steady = validate(table, n=8, rng=1, profiler=DriftingProfiler([1.0]), drift_reference="none", progress=False)
    # the machine is 1.7x slower in pass 1 and 1.3x in pass 2; the calibration nets are timed beside
    report = validate(table, n=8, rng=1, profiler=DriftingProfiler([1.7, 1.3]), repeats=2, progress=False)
    assert report.info["drift_reference"] == "calibration"
    np.testing.assert_allclose(report.info["drift"]["factors"], [[1 / 1.7], [1 / 1.3]])
    # the reference network is timed beside them, as a diagnostic
    assert report.info["reference"]["groups_ms"] == [[REF_MS * 1.7], [REF_MS * 1.3]]
    cal_now = np.asarray(report.info["drift"]["calibration_raw_ms"])
    np.testing.assert_allclose(cal_now[0, 0], np.asarray(table.calibration["measured_raw_ms"]) * 1.7)
    np.testing.assert_allclose(report.measured_ms, steady.measured_ms)  # drift removed
    np.testing.assert_allclose(np.asarray(report.info["raw_passes_ms"])[0], steady.measured_ms * 1.7)
    assert report.info["raw"]["mape_percent"] > report.mape
    assert "calibration networks" in report.summary()
    with pytest.raises(HardwareError, match="drift_reference must be one of"):
        validate(table, n=2, rng=0, profiler=DriftingProfiler([1.0]), drift_reference="sometimes", progress=False)
    bare = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0]), n_calibration=0, rng=0,
                              progress=False)
    with pytest.raises(HardwareError, match="needs a table calibrated on whole networks"):
        validate(bare, n=2, rng=0, profiler=DriftingProfiler([1.0]), drift_reference="calibration", progress=False)
