"""``nas search`` and ``nas front`` end to end on a tiny nb201 problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nas.cli import main
from nas.errors import ConfigError
from nas.experiment import load_experiment
from search_spaces import get_space, to_nb201_string

CONFIG = """
name: demo_search
seed: 0
space: {{name: nb201, options: {{channels: 4, cells_per_stage: 1, input_shape: [3, 8, 8]}}}}
search:
  engine: nsga2
  options: {{population_size: 8}}
  objectives:
    - {{type: params}}
    - {{type: tabular, path: acc.csv, column: acc, direction: maximize}}
  constraints: ["params <= {bound}"]
  evaluations: {budget}
  batch_size: 8
  storage: s.db
  study: demo
  reference: [1e6, 0.0]
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


def test_search_then_resume_then_front(table, capsys, tmp_path, monkeypatch):
    cfg = _write(table)
    monkeypatch.chdir(tmp_path)  # the input path acc.csv is relative to the file, not here
    out_dir = table / "out"
    assert main(["search", str(cfg), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "16 evaluated" in out and "hypervolume" in out
    for name in ("history.csv", "front.csv", "history.json", "front.json", "front.png",
                 "manifest.json", "s.db"):
        assert (out_dir / name).is_file(), name
    history = pd.read_csv(out_dir / "history.csv")
    front = pd.read_csv(out_dir / "front.csv")
    assert len(history) == 16 and (front["params"] <= 3000).all()

    assert main(["search", str(cfg), "--out", str(out_dir)]) == 2  # the study exists: refuse
    assert "already exists" in capsys.readouterr().err
    _write(table, budget=24)
    assert main(["search", str(cfg), "--out", str(out_dir), "--resume"]) == 0
    assert "24 evaluated" in capsys.readouterr().out

    png = table / "f.png"
    assert main(["front", "demo", "--storage", str(out_dir / "s.db"),
                 "--plot", str(png), "--reference", "1e6", "0"]) == 0
    out = capsys.readouterr().out
    assert "24 evaluated" in out and png.stat().st_size > 1000


def test_unknown_keys_name_the_path_and_valid_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("space: {name: nb201}\nsearch: {objectives: [{type: params, colum: x}]}\n")
    with pytest.raises(ConfigError, match=r"search\.objectives\[0\]\.colum: unknown key \(did you mean 'column'\?\); valid keys: type"):
        load_experiment(path, "search")
    path.write_text("space: {name: nb201}\nsearch: {objectives: [], evaluatons: 3}\n")
    with pytest.raises(ConfigError, match="search.evaluatons: unknown key .*; valid keys: engine, options"):
        load_experiment(path, "search")
    path.write_text("space: {name: nb201}\nsearch: {evaluations: many}\n")
    with pytest.raises(ConfigError, match="search.evaluations: expected int"):
        load_experiment(path, "search")
    path.write_text("space: {name: nb201}\n")
    with pytest.raises(ConfigError, match="search.objectives: `nas search` needs at least one objective"):
        load_experiment(path, "search")


def test_bad_objective_type_is_one_line_error(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("space: {name: nb201}\nsearch: {objectives: [{type: latency}]}\n")
    assert main(["search", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert ("search.objectives[0].type: unknown objective type 'latency' (did you mean "
            "'table_latency'?); valid objective types: flops, params, table_latency, tabular") in err
    path.write_text("space: {name: nb201}\nsearch: {objectives: [{type: tabular, path: a.csv}]}\n")
    assert main(["search", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "search.objectives[0].column: objective type 'tabular' needs column" in capsys.readouterr().err
    path.write_text("space: {name: nb201}\nsearch: {objectives: [{type: params}], "
                    "constraints: ['flops <= 3']}\n")
    assert main(["search", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "search: " in err and "flops" in err and not (tmp_path / "o").exists()


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
        "name: t\nspace: {name: nb201, options: {channels: 4, cells_per_stage: 1, input_shape: [3, 8, 8]}}\n"
        "search: {engine: random, objectives: [{type: table_latency, path: lut.csv}, {type: params}],\n"
        "  constraints: ['latency_ms <= 1.0'], evaluations: 6, batch_size: 3}\n")
    assert main(["search", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "t-results")]) == 0
    history = pd.read_csv(tmp_path / "t-results" / "history.csv")
    assert len(history) == 6 and history["latency_ms"].gt(0).all()


def test_search_over_seeds_against_random_search(table, capsys):
    cfg = _write(table, budget=16, bound=6000)  # about a third of the cells are feasible
    out_dir = table / "seeds"
    assert main(["search", str(cfg), "--out", str(out_dir), "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "nsga2 against random search with the same budget (16 evaluations), over seeds [0, 1]" in out
    for label in ("seed-0", "seed-1", "random-seed-0", "random-seed-1"):
        assert len(pd.read_csv(out_dir / label / "history.csv")) == 16, label
    # the seeds really differ, and the random searches are not the engine's
    keys = {label: set(pd.read_csv(out_dir / label / "history.csv")["arch_key"])
            for label in ("seed-0", "seed-1", "random-seed-0")}
    assert keys["seed-0"] != keys["seed-1"] and keys["seed-0"] != keys["random-seed-0"]
    table_ = pd.read_csv(out_dir / "seeds.csv")
    assert list(table_["engine"]) == ["nsga2", "random"] and (table_["seeds"] == 2).all()
    assert (table_["hypervolume_mean"] > 0).all()
    assert any(c.startswith("best_acc_params<=") for c in table_.columns)


def test_seeds_must_be_a_positive_count(table, capsys):
    with pytest.raises(SystemExit):
        main(["search", str(_write(table)), "--seeds", "0"])
    assert "--seeds: must be an integer >= 1, got '0'" in capsys.readouterr().err


def test_search_with_the_guided_engine_from_yaml(table, capsys):
    text = CONFIG.format(budget=24, bound=6000).replace(
        "engine: nsga2\n  options: {population_size: 8}",
        "engine: guided\n  options: {initial: 8, candidates: 300}")
    assert "engine: guided" in text
    cfg = table / "guided.yaml"
    cfg.write_text(text)
    out_dir = table / "guided"
    assert main(["search", str(cfg), "--out", str(out_dir)]) == 0
    assert "24 evaluated" in capsys.readouterr().out
    history = pd.read_csv(out_dir / "history.csv")
    assert len(set(history["arch_key"])) == 24
    # after the random start the model proposes: more of the later evaluations are feasible
    assert history["feasible"][8:].mean() >= history["feasible"][:8].mean()
