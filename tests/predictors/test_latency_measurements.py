"""Latency predictors from measurement files: reading them, serving them, the CLI and YAML."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from nas.cli import main
from predictors import (
    FewShotLatencyPredictor,
    MeasuredLatency,
    PredictorError,
    SyntheticDevice,
    read_latency_measurements,
)
from search_spaces import get_space, to_nb201_string


def _write(path, archs, ms, as_string=False):
    text = [to_nb201_string(a) if as_string else a.to_json() for a in archs]
    pd.DataFrame({"arch": text, "latency_ms": ms}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def farm(ofa_space, ofa_archs, tmp_path_factory):
    """Three synthetic reference devices and a target, measured on the same 60 archs, as files."""
    folder = tmp_path_factory.mktemp("farm")
    files = {}
    for seed in (0, 1, 2, 100):
        device = SyntheticDevice(seed, ofa_space, spread=1.0, noise=0.02)
        files[seed] = _write(folder / f"dev{seed}.csv", ofa_archs[:60], device.measure(ofa_archs[:60], seed))
    return files


def test_read_json_and_benchmark_strings(tmp_path):
    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng(i)) for i in range(4)]
    for as_string in (False, True):
        path = _write(tmp_path / f"m{as_string}.csv", archs, [1.0, 2.0, 3.0, 4.0], as_string)
        read, ms = read_latency_measurements(path, space)
        assert [a.key for a in read] == [a.key for a in archs] and ms.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_bad_rows_are_named(tmp_path, ofa_space, ofa_archs):
    path = _write(tmp_path / "m.csv", ofa_archs[:3], [1.0, -2.0, 3.0])
    with pytest.raises(PredictorError, match=r"row 3, column 'latency_ms': .* not a positive latency"):
        read_latency_measurements(path, ofa_space)
    frame = pd.DataFrame({"arch": [ofa_archs[0].to_json(), "|nor_conv_3x3~0|"], "latency_ms": [1.0, 2.0]})
    frame.to_csv(path, index=False)
    with pytest.raises(PredictorError, match=r"row 3, column 'arch': .*no benchmark-string notation"):
        read_latency_measurements(path, ofa_space)
    with pytest.raises(PredictorError, match=r"no column 'ms'; columns are \['arch', 'latency_ms'\]"):
        read_latency_measurements(path, ofa_space, column="ms")


def test_measured_latency_serves_lookups_and_names_the_unmeasured(ofa_archs):
    served = MeasuredLatency(ofa_archs[:3] + ofa_archs[:1], [1.0, 2.0, 3.0, 5.0], name="farm")
    np.testing.assert_allclose(served.predict(ofa_archs[:3]), [3.0, 2.0, 3.0])  # repeated arch: median
    with pytest.raises(PredictorError, match="farm: 1 of 2 architectures were never measured"):
        served.predict([ofa_archs[0], ofa_archs[5]])


def test_fewshot_from_reference_files_beats_chance(farm, ofa_space, ofa_archs):
    refs = {f"dev{s}": MeasuredLatency.from_csv(farm[s], ofa_space) for s in (0, 1, 2)}
    archs, y = read_latency_measurements(farm[100], ofa_space)
    model = FewShotLatencyPredictor(refs, space=ofa_space).fit(archs[:10], y[:10])
    rho = spearmanr(model.predict(archs[10:]), y[10:]).statistic
    assert rho > 0.7  # chance is 0; the NAS-Bench-201 figures are bench/latency_fewshot.py's
    in_memory = {name: SyntheticDevice(s, ofa_space, spread=1.0, noise=0.02) for name, s in
                 (("dev0", 0), ("dev1", 1), ("dev2", 2))}
    same = {name: MeasuredLatency(archs, dev.measure(archs, int(name[-1]))) for name, dev in in_memory.items()}
    again = FewShotLatencyPredictor(same, space=ofa_space).fit(archs[:10], y[:10])
    np.testing.assert_allclose(again.predict(archs), model.predict(archs), rtol=1e-6)  # files are faithful


def test_cli_fits_from_flags_and_yaml(farm, tmp_path, capsys):
    space = ["--space", "mobilenetv3_ofa", "-O", "width_mult=0.5", "-O", "resolutions=[8, 12]",
             "-O", "depths=[2, 3]", "-O", "input_shape=[1, 8, 8]"]
    refs = [f"--reference=dev{s}={farm[s]}" for s in (0, 1, 2)]
    out = tmp_path / "few.json"
    assert main(["predict", "latency", "fit", *space, "--measurements", str(farm[100]), "--model", "fewshot",
                 *refs, "--test-frac", "0.9", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fitted fewshot on 6 measured architectures" in printed and "held-out (54 archs)" in printed
    assert json.loads(out.read_text())["state"]["references"] == ["dev0", "dev1", "dev2"]
    (tmp_path / "fit.yaml").write_text(
        "space: mobilenetv3_ofa\noptions: {width_mult: 0.5, resolutions: [8, 12], depths: [2, 3], "
        f"input_shape: [1, 8, 8]}}\nmeasurements: {farm[100]}\nmodel: layerwise\ntest_frac: 0.25\n")
    assert main(["predict", "latency", "fit", "--config", str(tmp_path / "fit.yaml")]) == 0
    assert "fitted layerwise on 45" in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text("space: nb201\nmeasurements: m.csv\nmodle: fewshot\n")
    assert main(["predict", "latency", "fit", "--config", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "modle: unknown key (did you mean 'model'?)" in err[0]
    assert main(["predict", "latency", "fit", *space, "--measurements", str(farm[100]),
                 "--model", "fewshot"]) == 2
    assert "needs at least one reference" in capsys.readouterr().err
