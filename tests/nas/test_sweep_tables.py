"""Sweep trials that target the same device share one latency table, built once before them."""

from __future__ import annotations

import numpy as np
import yaml

from hardware import LatencyTable
from nas.sweep import expand_trials, load_sweep
from nas.sweep._tables import build_shared_tables, plan_shared_tables

RUN = {
    "name": "base", "seed": 0,
    "space": {"name": "mobilenetv3_ofa", "options": {"width_mult": 0.25, "resolutions": [8], "depths": [2],
                                                     "kernels": [3], "expands": [3]}},
    "devices": [{"name": "cpu1", "kind": "cpu", "options": {"threads": 1}, "n_calibration": 3,
                 "profiler": {"warmup": 1, "min_runs": 3, "max_runs": 5, "check_every": 3,
                              "time_budget_s": 0.02}}],
    "search": {"engine": "evolution", "evaluations": 60},
}


def _trials(tmp_path, grid):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(RUN))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", "command": "run", "grid": grid}))
    return expand_trials(load_sweep(path), tmp_path / "out")


def test_trials_of_one_device_share_one_table_built_once(tmp_path):
    trials = _trials(tmp_path, {"seed": [0, 1, 2]})
    rewritten, plans = plan_shared_tables(trials, tmp_path / "out")
    paths = {t.experiment["devices"][0]["table"] for t in rewritten}
    assert len(plans) == 1 and len(paths) == 1 and plans[0].trials == tuple(t.name for t in trials)
    lines = []
    build_shared_tables(plans, lines.append)
    table = LatencyTable.load(paths.pop())
    assert "shared by trials t000" in lines[0] and len(table) > 0
    before = table.entries["latency_ms"].to_numpy()
    build_shared_tables(plans, lines.append)  # a resumed sweep reuses it
    assert "reused" in lines[1]
    np.testing.assert_array_equal(LatencyTable.load(plans[0].path).entries["latency_ms"], before)


def test_other_device_options_get_their_own_table_and_named_tables_stay(tmp_path):
    trials = _trials(tmp_path, {"devices": [
        [{"name": "cpu1", "kind": "cpu", "options": {"threads": 1}}],
        [{"name": "cpu1", "kind": "cpu", "options": {"threads": 2}}],
        [{"name": "cpu1", "kind": "cpu", "options": {"threads": 1}}],
    ]})
    rewritten, plans = plan_shared_tables(trials, tmp_path / "out")
    tables = [t.experiment["devices"][0]["table"] for t in rewritten]
    assert len(plans) == 2 and tables[0] == tables[2] != tables[1]
    again, none = plan_shared_tables(rewritten, tmp_path / "out")
    assert none == [] and [t.experiment for t in again] == [t.experiment for t in rewritten]
