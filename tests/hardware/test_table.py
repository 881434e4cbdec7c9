import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, DriftingProfiler, fake_latency, synthetic_table

from hardware import (
    BuildSettings,
    HardwareError,
    LatencyTable,
    MissingEntriesError,
    Profiler,
    TableMismatchError,
    fit_calibration,
    get_device,
    validate,
)
from search_spaces import Architecture, ArchitectureError, get_space


@pytest.fixture
def table(tiny):
    return synthetic_table(tiny, a=1.25, b=0.5)


def _per_arch(table, space, arch):
    layers = space.layers(arch, table.input_shape, table.num_classes)
    return sum(table.lookup(spec) for spec in layers)


def test_predict_is_calibrated_sum_of_layers(table, tiny, rng):
    archs = [tiny.sample(rng) for _ in range(40)]
    expected = [1.25 * _per_arch(table, tiny, a) + 0.5 for a in archs]
    np.testing.assert_allclose(table.predict(archs), expected, rtol=1e-12)
    assert table.predict_one(archs[0]) == pytest.approx(expected[0])
    np.testing.assert_allclose(table.predict_raw(archs), [(e - 0.5) / 1.25 for e in expected])


@pytest.mark.parametrize("name,options", [
    ("mobilenetv3_ofa", {"width_mult": 0.25, "resolutions": [16, 24]}),
    ("nb201", {"channels": 4, "cells_per_stage": 1}),
    ("transformer", {"dims": [16, 32], "depths": [1, 2], "heads": [2, 4]}),
    ("darts", {"channels": 4, "layers": 3}),  # not vectorised: per-arch fallback
])
def test_vectorised_predict_equals_per_arch_predict(name, options):
    space = get_space(name, **options)
    table = synthetic_table(space, options=options, a=0.9, b=0.1)
    archs = [space.sample(np.random.default_rng(i)) for i in range(60)]
    batch = table.predict(archs)
    one_by_one = [table.predict_one(a) for a in archs]
    by_layers = [0.9 * _per_arch(table, space, a) + 0.1 for a in archs]
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-12)
    np.testing.assert_allclose(batch, by_layers, rtol=1e-12)


@pytest.mark.parametrize("name,options", [
    ("mobilenetv3_ofa", {"width_mult": 0.25, "resolutions": [16, 24]}),
    ("darts", {"channels": 4, "layers": 3}),  # not vectorised: per-arch fallback
])
def test_concave_calibration_transforms_each_layer(name, options):
    space = get_space(name, **options)
    table = synthetic_table(space, options=options)
    table.metadata["calibration"].update(a=1.1, b=0.2, gamma=0.6, t_ref_ms=0.5)
    archs = [space.sample(np.random.default_rng(i)) for i in range(30)]
    expected = [1.1 * sum(0.5 ** 0.4 * table.lookup(s) ** 0.6
                          for s in space.layers(a, table.input_shape, table.num_classes)) + 0.2 for a in archs]
    np.testing.assert_allclose(table.predict(archs), expected, rtol=1e-12)
    np.testing.assert_allclose(table.predict_raw(archs), [_per_arch(table, space, a) for a in archs], rtol=1e-12)


@pytest.mark.parametrize("name,options", [
    ("mobilenetv3_ofa", {"width_mult": 0.25, "resolutions": [16, 24]}),
    ("transformer", {"dims": [16, 32], "depths": [1, 2], "heads": [2, 4]}),
])
def test_decision_table_rows_predict_like_dicts(name, options):
    """Archs made by the space's decision table are read from their index rows."""
    space = get_space(name, **options)
    table = synthetic_table(space, options=options, a=0.9, b=0.1)
    archs = space.sample_batch(80, 3)
    plain = [Architecture(a.to_dict()) for a in archs]  # no rows: the dict path
    assert plain[0]._origin is None and archs[0]._origin is not None
    np.testing.assert_allclose(table.predict(archs), table.predict(plain), rtol=1e-12)
    np.testing.assert_allclose(table.predict(archs[:5]), [table.predict_one(a) for a in plain[:5]])


def test_recursive_space_predicts_through_fallback():
    space = get_space("einspace_lite")
    table = synthetic_table(space)
    rng = np.random.default_rng(0)  # synthetic_table enumerated with seed 0: same archs
    archs = [space.sample(rng) for _ in range(5)]
    np.testing.assert_allclose(table.predict(archs), [_per_arch(table, space, a) for a in archs])


def test_lookup_names_the_missing_layerspec(tiny, rng):
    table = synthetic_table(tiny)
    arch = tiny.sample(rng)
    victim = tiny.layers(arch)[2]
    entries = table.entries[table.entries["key"] != victim.key]
    holed = LatencyTable(entries, table.metadata, tiny)
    with pytest.raises(MissingEntriesError, match=r"1 layer\(s\).*" + r"mbconv\(") as info:
        holed.lookup(victim)
    assert info.value.keys == [victim.key]
    with pytest.raises(MissingEntriesError) as info:
        holed.predict([arch, arch])
    assert victim.key in str(info.value) and info.value.keys == [victim.key]
    assert holed.missing(tiny.layers(arch)) == [victim.key]


def test_predict_rejects_archs_outside_the_space(table, tiny, rng):
    arch = tiny.sample(rng)
    with pytest.raises(ArchitectureError, match="stem.kernel|unexpected"):
        table.predict([arch, arch.update({"stem.kernel": 3})])
    with pytest.raises(ArchitectureError, match="resolution.size"):
        table.predict([arch.update({"resolution.size": 9})])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip(table, tiny, rng, tmp_path, suffix):
    path = table.save(tmp_path / f"lut{suffix}")
    loaded = LatencyTable.load(path)  # space re-created from the registry
    pd.testing.assert_frame_equal(loaded.entries, table.entries, check_dtype=False)
    assert loaded.metadata == table.metadata
    archs = [tiny.sample(rng) for _ in range(20)]
    np.testing.assert_allclose(loaded.predict(archs), table.predict(archs))
    if suffix == ".csv":
        meta = json.loads((tmp_path / "lut.csv.meta.json").read_text())
        assert meta["space"]["fingerprint"] == tiny.fingerprint


def test_load_refuses_mismatches(table, tmp_path):
    path = table.save(tmp_path / "lut.csv")
    other = get_space("hw_tiny", width=16)
    with pytest.raises(TableMismatchError, match=r"built for space 'hw_tiny' \(grammar .*not for space"):
        LatencyTable.load(path, space=other)
    with pytest.raises(TableMismatchError, match=r"input shape \(3, 8, 8\), not \(3, 16, 16\)"):
        LatencyTable.load(path, input_shape=(3, 16, 16))
    with pytest.raises(TableMismatchError, match="threads: table 1 vs device 2"):
        LatencyTable.load(path, device=get_device("cpu", threads=2))
    LatencyTable.load(path, device=get_device("cpu", threads=1), input_shape=(3, 8, 8))


def test_load_refuses_non_tables(table, tmp_path):
    path = table.save(tmp_path / "lut.csv")
    (tmp_path / "lut.csv.meta.json").unlink()
    with pytest.raises(HardwareError, match="no metadata file"):
        LatencyTable.load(path)
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(HardwareError, match="carries no latency-table metadata"):
        LatencyTable.load(tmp_path / "x.parquet")
    with pytest.raises(HardwareError, match=r"must end in \.csv or \.parquet"):
        table.save(tmp_path / "lut.txt")
    with pytest.raises(HardwareError, match="does not exist"):
        LatencyTable.load(tmp_path / "nothing.csv")


def test_fit_calibration_recovers_a_linear_model():
    sums = np.array([1.0, 2.0, 4.0, 8.0])
    cal = fit_calibration(sums, 1.2 * sums + 0.3)
    assert cal["model"] == "linear"
    assert cal["a"] == pytest.approx(1.2) and cal["b"] == pytest.approx(0.3)
    ratio = fit_calibration([2.0, 4.0], [2.4, 4.8])
    assert ratio["model"] == "ratio" and ratio["a"] == pytest.approx(1.2) and ratio["b"] == 0
    assert fit_calibration([], [])["model"] == "none"


def test_build_profiles_every_layer_and_records_metadata(tiny):
    device = get_device("cpu", threads=1)
    table = LatencyTable.build(tiny, device, profiler=Profiler(**FAST), n_calibration=3, rng=0,
                               progress=False, space_options={})
    specs = {s.key for a in [tiny.sample(np.random.default_rng(i)) for i in range(50)]
             for s in tiny.layers(a)}
    assert specs <= set(table.entries["key"])
    assert (table.entries["latency_ms"] > 0).all()
    assert (table.entries["n_runs"] >= 3).all()
    meta = table.metadata
    assert meta["space"]["name"] == "hw_tiny" and meta["space"]["fingerprint"] == tiny.fingerprint
    assert meta["device"] == device.fingerprint()
    assert meta["input_shape"] == [3, 8, 8] and meta["num_classes"] == 4 and meta["dtype"] == "float32"
    assert meta["created"].startswith("20")
    cal = meta["calibration"]
    assert cal["n_networks"] == 3 and len(cal["measured_ms"]) == 3 and cal["a"] > 0
    # the calibration networks span the range of layer sums
    assert cal["sum_ms"] == sorted(cal["sum_ms"]) and cal["sum_ms"][0] < cal["sum_ms"][-1]


def test_build_settings_and_keywords_build_the_same_table(tiny):
    device = get_device("cpu", threads=1)
    settings = BuildSettings(profiler=DriftingProfiler([1.0, 1.4]), n_calibration=3, chunk_size=5,
                             progress=False)
    by_settings = LatencyTable.build(tiny, device, settings=settings, rng=0)
    by_keywords = LatencyTable.build(tiny, device, profiler=DriftingProfiler([1.0, 1.4]), n_calibration=3,
                                     chunk_size=5, progress=False, rng=0)
    # a keyword replaces that field of the settings
    overridden = LatencyTable.build(tiny, device, settings=settings, rng=0, n_calibration=0,
                                    profiler=DriftingProfiler([1.0, 1.4]))
    pd.testing.assert_frame_equal(by_settings.entries, by_keywords.entries)
    assert len(by_settings.reference["layer_groups_ms"]) == -(-len(by_settings) // 5)
    assert by_settings.calibration == by_keywords.calibration and by_settings.calibration["n_networks"] == 3
    pd.testing.assert_frame_equal(overridden.entries, by_keywords.entries)
    assert overridden.calibration["model"] == "none"
    with pytest.raises(HardwareError, match=r"unknown option 'n_calib'; valid options: profiler, n_calibration"):
        LatencyTable.build(tiny, device, n_calib=3)
    with pytest.raises(HardwareError, match="chunk_size must be an int >= 1, got 0"):
        BuildSettings(chunk_size=0)


def test_validate_reports(tiny):
    device = get_device("cpu", threads=1)
    table = LatencyTable.build(tiny, device, profiler=Profiler(**FAST), n_calibration=3, rng=0,
                               progress=False)
    report = validate(table, n=6, rng=1, profiler=Profiler(**FAST), progress=False)
    assert report.n == 6 and (report.measured_ms > 0).all()
    assert 0 <= report.within_10 <= 1 and report.mape >= 0 and -1 <= report.kendall_tau <= 1
    gen = np.random.default_rng(1)  # validate samples from the same seed
    np.testing.assert_allclose(report.predicted_ms, table.predict([tiny.sample(gen) for _ in range(6)]))
    assert report.to_dict()["n"] == 6


def test_compare_statistics_by_hand():
    from hardware import compare

    report = compare([1.0, 2.2, 2.9, 4.5], [1.0, 2.0, 3.0, 4.0])
    assert report.mape == pytest.approx(100 * (0 + 0.1 + 1 / 30 + 0.125) / 4)
    assert report.within_10 == pytest.approx(0.75)
    assert report.kendall_tau == pytest.approx(1.0) and report.spearman == pytest.approx(1.0)


def test_fake_latency_is_deterministic():
    assert fake_latency("x") == fake_latency("x") > 0


def test_build_on_a_recursive_space_samples_its_layers():
    space = get_space("einspace_lite", channels=8, max_depth=3)
    table = LatencyTable.build(space, get_device("cpu"), profiler=Profiler(**FAST), n_calibration=3,
                               n_samples=10, rng=0, progress=False,
                               space_options={"channels": 8, "max_depth": 3})
    assert table.metadata["space"]["enumeration"] == {"method": "sampled", "n_samples": 10}
    assert table.calibration["n_networks"] == 3
    gen = np.random.default_rng(0)  # the archs whose layers were enumerated
    archs = [space.sample(gen) for _ in range(10)]
    assert (table.predict(archs) > 0).all()


def test_calibration_design_spans_sums_and_contrasts_layer_mix(table, tiny):
    from hardware import contrast_design, transform_layers

    # synthetic: each bin of the sum gives its two extremes of the concave ratio, net of the
    # ratio's log-log trend with the sum (which here is a steep one, to be removed)
    sums = np.arange(1.0, 41.0)
    noise = np.random.default_rng(0).uniform(-0.2, 0.2, 40)
    ratio = np.exp(-0.3 * np.log(sums) + noise)
    picks = contrast_design(sums, sums * ratio, 8)
    assert len(set(picks)) == 8 and picks == sorted(picks)
    x = np.log(sums)
    residual = np.log(ratio) - np.polyval(np.polyfit(x, np.log(ratio), 1), x)
    for members in np.array_split(np.arange(40), 4):
        inside = [p for p in picks if p in members]
        expected = [members[np.argmax(residual[members])], members[np.argmin(residual[members])]]
        assert sorted(inside) == sorted(int(e) for e in expected)
        # the raw ratio (with its trend) would have picked the bin's ends instead
        assert sorted(inside) != [int(members[0]), int(members[-1])]
    assert contrast_design(sums[:3], sums[:3], 8) == [0, 1, 2]
    # on a real table: sorted by sum, spread over the sum range, and the pairs differ in layer
    # mix more than random pairs of the pool do
    archs = table.spanning_archs(6, rng=0, pool=120)
    s = table.predict_raw(archs)
    assert len({a.key for a in archs}) == 6 and list(s) == sorted(s)
    pool = tiny.sample_batch(1500, 0)  # a large pool: the random-pair baseline must not be noisy
    t_ref = float(np.median(table.entries["latency_ms"]))

    def mix(batch):
        return np.array([transform_layers(table.layer_latencies(a), 0.5, t_ref).sum()
                         for a in batch]) / table.predict_raw(batch)

    picked = mix(archs)
    assert np.abs(picked[0::2] - picked[1::2]).mean() > np.abs(np.diff(mix(pool))).mean()
