"""Bad experiment files: each is one clear line naming the file or key, exit code 2,
nothing written. Adding a case is one line: (file content, expected message part)."""

from __future__ import annotations

import copy

import pytest
import yaml

from nas.cli import main

BASE = {
    "name": "bad",
    "space": {"name": "mobilenetv3_ofa",
              "options": {"width_mult": 0.25, "resolutions": [8], "depths": [1],
                          "kernels": [3], "expands": [3]}},
    "devices": [{"name": "cpu1", "kind": "cpu", "options": {"threads": 1}}],
    "predictor": {"name": "ridge", "train_archs": 12},
    "search": {"evaluations": 20, "batch_size": 10},
}


def patched(**sections):
    """BASE with some sections replaced (a key set to None is removed)."""
    config = copy.deepcopy(BASE)
    for key, value in sections.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return yaml.safe_dump(config)


LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 7))

CASES = [
    # the YAML file itself
    (b"\x00\x01garbage\xff", "not a text file"),
    ("name: caf\xe9\n".encode("latin-1"), "line 1: not UTF-8 text"),
    ("name: a\nseed: 1\nseed: 2\n", "line 3: invalid YAML: duplicate key 'seed'"),
    ("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + LAUGHS, "aliases expand to more than 100,000 values"),
    ("name: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "the top level must be a mapping"),
    # values
    (patched(seed=-1), "seed: must be >= 0, got -1"),
    (patched(name="../../x"), "name: '../../x' must be a plain name"),
    (patched(search={"budgets_ms": [float("nan")]}), "search.budgets_ms[0]: must be a finite number"),
    (patched(search={"budgets_ms": [float("inf")]}), "search.budgets_ms[0]: must be a finite number"),
    (patched(space={"name": "mobilenetv3_ofa", "options": {"width_mult": -1}}),
     "space.options.width_mult: must be a positive number, got -1"),
    (patched(devices=[{"name": "d", "table": "no/such/table.csv"}]), "devices[0].table: no such file"),
    (patched(devices=[{"name": "d", "profiler": {"time_budget": 1}}]),
     "devices[0].profiler.time_budget: unknown option (did you mean 'time_budget_s'?)"),
    (patched(predictor={"name": "ridge", "options": {"alpah": 1}}), "predictor.options: predictor 'ridge' has no option 'alpah'"),
    (patched(search={"engine": "nsga2", "options": {"populaton": 4}}), "search.options: engine 'nsga2' has no option 'populaton'"),
    (patched(search={"storage": "nosuchdb://x/y"}), "search.storage: not a database URL"),
    (patched(search={"evaluations": 1e12}), "search.evaluations: must be <= 10000000"),
    (patched(supernet={"train": {"phases": [{"name": "p", "steps": 1e12}]}}),
     "supernet.train.phases[0].steps: must be in [0, 100,000,000]"),
    (patched(supernet={"train": {"calib_images": -5}}), "supernet.train.calib_images: must be in [0, 1,000,000]"),
    (patched(search={"storage": "mysql://u@localhost/nas"}), "search.storage: the driver for 'mysql' is not installed"),
]


@pytest.mark.parametrize(("content", "message"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_file_is_one_clear_line(tmp_path, capsys, content, message):
    path = tmp_path / "exp.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1, err
    assert not out.exists()


def test_utf16_file_with_byte_order_mark_is_read(tmp_path):
    from nas.config import load_yaml

    path = tmp_path / "exp.yaml"
    path.write_bytes("name: x\nseed: 3\n".encode("utf-16"))
    assert load_yaml(path) == {"name": "x", "seed": 3}


def test_ordinary_anchors_still_work(tmp_path):
    from nas.config import load_yaml

    path = tmp_path / "exp.yaml"
    path.write_text("a: &opts {lr: 1e-3, steps: 5e4}\nb: *opts\n")
    assert load_yaml(path) == {"a": {"lr": 0.001, "steps": 50000.0}, "b": {"lr": 0.001, "steps": 50000.0}}


def test_out_under_a_regular_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(patched())
    (tmp_path / "file").write_text("x")
    assert main(["run", str(path), "--out", str(tmp_path / "file" / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "a part of the path is a file, not a folder" in err and len(err.splitlines()) == 1


def test_closed_pipe_ends_quietly(monkeypatch):
    import os
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader went away, as `nas ops | head -1` does once head exits
    stream = os.fdopen(write, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        assert main(["ops"]) == 141
    finally:
        stream.close()


SEARCH = {"name": "bad", "space": {"name": "nb201", "options": {"channels": 4, "cells_per_stage": 1}},
          "search": {"evaluations": 10, "batch_size": 5,
                     "objectives": [{"type": "tabular", "path": "t.csv", "column": "lat"}]}}

SIDE_FILES = [  # (the file t.csv beside the experiment, expected message part)
    (b"\x00\xff\xfe garbage\n", "t.csv is not a readable CSV"),
    (b"", "t.csv is not a readable CSV: No columns to parse"),
    (b"arch,lat\n|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|,abc\n",
     "t.csv row 2 (key '|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|'): lat value 'abc'"),
    (b"arch,other\nx,1\n", "has no column 'lat'"),
]


@pytest.mark.parametrize(("table", "message"), SIDE_FILES, ids=[str(i) for i in range(len(SIDE_FILES))])
def test_bad_table_file_is_one_clear_line(tmp_path, capsys, table, message):
    (tmp_path / "t.csv").write_bytes(table)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(SEARCH))
    assert main(["search", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_truncated_architecture_file_is_one_line(tmp_path, capsys):
    (tmp_path / "arch.json").write_text('{"net.stem": 3, "net.bo')
    assert main(["describe", "nb201", str(tmp_path / "arch.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "arch.json: not valid JSON" in err and len(err.splitlines()) == 1, err


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "t.csv"
    assert main(["lut", "build", "--space", "nb201", "-O", "channels=4", "-O", "cells_per_stage=1",
                 "--device", "cpu", "--threads", "1", "--resolution", "8", "--time-budget", "0.01",
                 "--calibration", "2", "-o", str(path)]) == 0
    return path


def _replace_row_value(text: str, row: int, value: str) -> str:
    lines = text.splitlines()
    head = lines[0].split(",").index("latency_ms")
    import csv
    import io

    fields = next(csv.reader([lines[row - 1]]))
    fields[head] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    lines[row - 1] = out.getvalue()
    return "\n".join(lines) + "\n"


TABLE_DAMAGE = [  # (what is done to the CSV or its sidecar, expected message part)
    (lambda t, m: (t.write_text(_replace_row_value(t.read_text(), 3, "-11.25")), None), "row 3: latency_ms"),
    (lambda t, m: (t.write_text(_replace_row_value(t.read_text(), 2, "inf")), None), "row 2: latency_ms"),
    (lambda t, m: (t.write_text(_replace_row_value(t.read_text(), 2, "1e300")), None), "row 2: latency_ms"),
    (lambda t, m: (t.write_text(t.read_text() + t.read_text().splitlines()[1] + "\n"), None), "repeats row 2"),
    (lambda t, m: (m.write_text('{"format": "hwnas-lat'), None), "meta.json' is not valid JSON"),
    (lambda t, m: (t.write_bytes(b"\x00\xff garbage"), None), "is not a readable CSV"),
    (lambda t, m: (_truncated_parquet(t), None), "is not a readable parquet file"),
]


def _truncated_parquet(table) -> None:
    """The table saved as parquet, cut in the middle; `lut show` is then pointed at it."""
    from hardware import LatencyTable

    parquet = table.with_suffix(".parquet")
    LatencyTable.load(table).save(parquet)
    parquet.write_bytes(parquet.read_bytes()[: parquet.stat().st_size // 2])
    table.unlink()
    parquet.rename(table.with_name("t.csv.parquet"))


@pytest.mark.parametrize(("damage", "message"), TABLE_DAMAGE, ids=[str(i) for i in range(len(TABLE_DAMAGE))])
def test_damaged_latency_table_is_one_line_naming_the_row(tiny_table, tmp_path, capsys, damage,
                                                          message):
    import shutil

    table = tmp_path / "t.csv"
    shutil.copy(tiny_table, table)
    shutil.copy(str(tiny_table) + ".meta.json", str(table) + ".meta.json")
    damage(table, tmp_path / "t.csv.meta.json")
    if not table.exists():  # the damage replaced the CSV by a parquet file
        table = tmp_path / "t.csv.parquet"
    capsys.readouterr()
    assert main(["lut", "show", str(table)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("value", ["-5", "0", "many"])
def test_calibration_count_is_checked(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["supernet", "eval", "run", "--arch", "largest", "--calib-images", value])
    assert stop.value.code == 2
    assert "argument --calib-images" in capsys.readouterr().err


def test_front_of_a_missing_or_corrupt_database_is_one_line_and_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "nothere.db"
    assert main(["front", "s", "--storage", f"sqlite:///{missing}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no study database at" in err and len(err.splitlines()) == 1, err
    assert not missing.exists()
    corrupt = tmp_path / "bad.db"
    corrupt.write_bytes(bytes(range(256)) * 12)
    assert main(["front", "s", "--storage", f"sqlite:///{corrupt}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "file is not a database" in err and len(err.splitlines()) == 1, err


def test_a_full_disk_under_torch_save_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    def full_disk(*args, **kwargs):  # what torch raises when the disk fills during a save
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed "
                           "writing file data/3: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    cfg = tmp_path / "ofa.yaml"
    cfg.write_text(yaml.safe_dump({"space": BASE["space"], "supernet": {"train": {
        "batch_size": 16, "phases": [{"name": "full", "steps": 1}]}}}))
    assert main(["supernet", "train", str(cfg), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "writing a file failed (is the disk full" in err and len(err.splitlines()) == 1, err
