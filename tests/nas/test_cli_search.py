"""``nas search`` and ``nas front`` end to end on a tiny nb201 problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nas.cli import main
from nas.cli._search_config import load_search_config
from nas.errors import ConfigError
from search_spaces import get_space, to_nb201_string

CONFIG = """
space: {{name: nb201, options: {{channels: 4, cells_per_stage: 1, input_shape: [3, 8, 8]}}}}
engine: {{name: nsga2, options: {{population_size: 8}}}}
objectives:
  - {{type: params}}
  - {{type: tabular, path: acc.csv, column: acc, direction: maximize}}
constraints: ["params <= {bound}"]
budget: {budget}
batch_size: 8
seed: 0
storage: runs/s.db
study: demo
output: out
reference: [1.0e6, 0.0]
"""


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A synthetic accuracy for every nb201 architecture (the whole space: 15,625 rows)."""
    folder = tmp_path_factory.mktemp("cli")
    space = get_space("nb201")
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    rng = np.random.default_rng(0)
    gain = dict(zip(ops, [0.0, 0.02, 0.05, 0.08, 0.03], strict=True))
    rows = []
    import itertools

    paths = sorted(space.sample(0))
    for combo in itertools.product(ops, repeat=6):
        arch = dict(zip(paths, combo, strict=True))
        from search_spaces import Architecture

        rows.append((to_nb201_string(Architecture(arch)),
                     0.4 + sum(gain[o] for o in combo) + 0.01 * rng.random()))
    pd.DataFrame(rows, columns=["arch", "acc"]).to_csv(folder / "acc.csv", index=False)
    return folder


def _write(folder, budget=16, bound=3000):
    path = folder / "search.yaml"
    path.write_text(CONFIG.format(budget=budget, bound=bound))
    return path


def test_search_then_resume_then_front(table, capsys):
    cfg = _write(table)
    assert main(["search", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "16 evaluated" in out and "hypervolume" in out
    for name in ("history.csv", "front.csv", "history.json", "front.json", "front.png"):
        assert (table / "out" / name).is_file()
    history = pd.read_csv(table / "out" / "history.csv")
    front = pd.read_csv(table / "out" / "front.csv")
    assert len(history) == 16 and (front["params"] <= 3000).all()

    assert main(["search", str(cfg)]) == 2  # the study exists: refuse without --resume
    assert "already exists" in capsys.readouterr().err
    _write(table, budget=24)
    assert main(["search", str(cfg), "--resume"]) == 0
    assert "24 evaluated" in capsys.readouterr().out

    png = table / "f.png"
    assert main(["front", "demo", "--storage", str(table / "runs" / "s.db"),
                 "--plot", str(png), "--reference", "1e6", "0"]) == 0
    out = capsys.readouterr().out
    assert "24 evaluated" in out and png.stat().st_size > 1000


def test_unknown_keys_name_the_path_and_valid_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("space: {name: nb201}\nobjectives:\n  - {type: params, colum: x}\n")
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.colum: unknown key \(did you mean 'column'\?\); valid keys: type"):
        load_search_config(path)
    path.write_text("space: {name: nb201}\nobjectives: []\nbudgett: 3\n")
    with pytest.raises(ConfigError, match="budgett: unknown key .*; valid keys: space, objectives"):
        load_search_config(path)
    path.write_text("space: {name: nb201}\nobjectives: []\nbudget: many\n")
    with pytest.raises(ConfigError, match="budget: expected int"):
        load_search_config(path)
    path.write_text("objectives: []\n")
    with pytest.raises(ConfigError, match="space: required key is missing"):
        load_search_config(path)


def test_bad_objective_type_is_one_line_error(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("space: {name: nb201}\nobjectives: [{type: latency}]\nstorage: s.db\n")
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err
    assert "objectives[0].type: 'latency' is not allowed; allowed values: 'flops', 'params'" in err


def test_table_latency_objective_loads_a_hardware_table(tmp_path, capsys):
    hardware = pytest.importorskip("hardware")
    table_class = hardware.LatencyTable  # its COLUMNS, FORMAT and VERSION: the saved-file layout

    options = {"channels": 4, "cells_per_stage": 1, "input_shape": [3, 8, 8]}
    space = get_space("nb201", **options)
    found = space.realisable_layers(space.input_shape, space.num_classes, "auto", rng=0)
    entries = pd.DataFrame({c: [0.0] * len(found.specs) for c in table_class.COLUMNS})
    entries["key"] = [s.key for s in found.specs]
    entries["latency_ms"] = [0.01 * (i % 7 + 1) for i in range(len(found.specs))]
    metadata = {"format": table_class.FORMAT, "version": table_class.VERSION,
                "space": {"name": "nb201", "fingerprint": space.fingerprint, "options": options,
                          "enumeration": {"method": found.method, "n_samples": found.n_samples}},
                "device": {"kind": "cpu"}, "input_shape": list(space.input_shape),
                "num_classes": space.num_classes, "calibration": hardware.fit_calibration([], [])}
    hardware.LatencyTable(entries, metadata, space).save(tmp_path / "lut.csv")
    (tmp_path / "s.yaml").write_text(
        "space: {name: nb201, options: {channels: 4, cells_per_stage: 1, input_shape: [3, 8, 8]}}\n"
        "engine: {name: random}\nobjectives: [{type: table_latency, path: lut.csv}, {type: params}]\n"
        "constraints: ['latency_ms <= 1.0']\nbudget: 6\nbatch_size: 3\nstorage: s.db\nstudy: t\n")
    assert main(["search", str(tmp_path / "s.yaml")]) == 0
    history = pd.read_csv(tmp_path / "t-results" / "history.csv")
    assert len(history) == 6 and history["latency_ms"].gt(0).all()
