"""Storage at scale: the compact index, legacy studies, and the bench's smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.search import get_engine, load_result, run_search
from nas.search._index import EvaluationIndex
from nas.storage import Record, StudySession, read_study

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _resume_child import toy_problem  # noqa: E402

ROOT = HERE.parent.parent


@pytest.fixture(scope="module")
def problem():
    return toy_problem()


def test_index_round_trips_records_without_keeping_architectures(problem):
    rng = np.random.default_rng(0)
    archs = [problem.space.sample(rng) for _ in range(3000)]
    index = EvaluationIndex(2, 1, ["m"])
    for i, arch in enumerate(archs):
        index.add(Record(arch, (float(i), -float(i)), (i - 5.0,), max(0.0, i - 5.0), i // 7, i % 7,
                         measures=(("m", 2.0 * i),)))
    assert len(index) == len(set(a.key for a in archs))
    record = index.record(archs[1234])
    assert record.values == (1234.0, -1234.0) and record.constraints == (1229.0,)
    assert (record.batch, record.index, record.measures) == (1234 // 7, 1234 % 7, (("m", 2468.0),))
    values, violations = index.scores([archs[3].key, archs[10].key])
    assert values.tolist() == [[3.0, -3.0], [10.0, -10.0]] and violations.tolist() == [0.0, 5.0]


def test_a_study_stored_as_one_trial_per_evaluation_is_still_read(problem, tmp_path):
    """Studies written before the evaluation log hold their evaluations as trials only."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    reference = run_search(problem, get_engine("nsga2", problem.space, seed=2, population_size=8),
                           budget=16, batch_size=4, progress=False)
    records = [Record(a, tuple(row[["cost", "acc"]]), (row["cost <= 3"],), row["violation"],
                      int(row["batch"]), int(row["index"]))
               for a, (_, row) in zip(reference.archs(), reference.history.iterrows(), strict=True)]
    with StudySession(problem.space, problem.names, problem.directions,
                      [str(c) for c in problem.constraints], url, "old") as session:
        session.mirror(records)  # trials only, as before the log
    stored = read_study("old", url)
    assert [r.arch.key for r in stored.records] == reference.history["arch_key"].tolist()
    assert load_result("old", url).history["acc"].tolist() == reference.history["acc"].tolist()


@pytest.mark.slow
def test_bench_quick_run_reports_rate_memory_and_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "storage_scale.py"), "--quick"],
                          env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-3:]
    assert [line.split(":")[0] for line in last] == [
        "stored rate at 1200", "RSS growth at 1200", "resume time at 1200"]
    assert "re-evaluated 0" in done.stdout  # a resumed finished study evaluates nothing
    figures = {f["name"]: f["value"] for f in json.loads(
        (ROOT / "bench" / "out" / "results" / "storage_scale.json").read_text())["figures"]}
    assert figures["stored rate at 1200"] > 0 and figures["resume time at 1200"] > 0
