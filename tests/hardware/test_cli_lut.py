import json

import pytest

from nas.cli import main

FAST = ["--time-budget", "0.02", "--max-runs", "5", "--calibration", "3"]


def test_build_show_validate(tmp_path, capsys):
    out = tmp_path / "lut.parquet"
    assert main(["lut", "build", "--space", "hw_tiny", "-O", "width=8", "--resolution", "8",
                 *FAST, "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    assert main(["lut", "show", str(out), "--top", "2"]) == 0
    shown = capsys.readouterr().out
    assert "hw_tiny" in shown and "slowest 2 layers" in shown and "calibration  " in shown
    assert "reference    mbconv-reference-v1" in shown
    assert main(["lut", "show", str(out), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["space"]["options"] == {"width": 8} and meta["input_shape"] == [3, 8, 8]
    png = tmp_path / "v.png"
    assert main(["lut", "validate", str(out), "-n", "4", "--time-budget", "0.02",
                 "--plot", str(png), "--json", "--repeats", "2"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert report["n"] == 4 and png.is_file()
    assert report["normalised"] and len(report["passes_ms"]) == 2 and "noise_ceiling" in report
    assert main(["lut", "validate", str(out), "-n", "3", "--time-budget", "0.02", "--raw"]) == 0
    assert "normalised" not in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["lut", "build", "--space", "hw_tiny", "-o", "x.txt"], "must end in .csv or .parquet"),
    (["lut", "build", "--space", "transformer", "--resolution", "0", "-o", "x.csv"], "--resolution"),
    (["lut", "show", "missing.csv"], "does not exist"),
    (["lut", "build", "--space", "nope", "-o", "x.csv"], "unknown space 'nope'"),
])
def test_user_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
