"""Studies in an Optuna RDB: round trip, provenance checks, resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.errors import StorageError
from nas.search import get_engine, load_result, run_search
from search_spaces import Architecture

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _resume_child import toy_problem  # noqa: E402

ROOT = HERE.parent.parent


@pytest.fixture(scope="module")
def problem():
    return toy_problem()


def _run(problem, engine, storage, budget=40, resume=False, seed=3):
    return run_search(problem, get_engine(engine, problem.space, seed=seed, population_size=10),
                      budget=budget, batch_size=4, storage=storage, study_name="kill",
                      resume=resume, progress=False)


def test_round_trip_of_archs_values_and_provenance(problem, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = _run(problem, "evolution", url, budget=12)
    loaded = load_result("kill", url)
    assert loaded.history["arch_key"].tolist() == result.history["arch_key"].tolist()
    archs = [Architecture.from_json(t) for t in loaded.history["arch"]]
    assert [a.key for a in archs] == loaded.history["arch_key"].tolist()
    ev = problem.evaluate(archs)
    np.testing.assert_allclose(loaded.history[["cost", "acc"]].to_numpy(), ev.values)
    np.testing.assert_allclose(loaded.history["cost <= 3"], ev.constraints[:, 0])
    study = optuna.load_study(study_name="kill", storage=url)
    assert study.metric_names == ["cost", "acc"]
    attrs = study.user_attrs
    assert attrs["space"] == "nb201" and attrs["space_fingerprint"] == problem.space.fingerprint
    assert attrs["engine"] == "evolution" and attrs["seed"] == 3
    # The dashboard's trials: the evaluations on the front, each as stored in the log.
    front = set(loaded.front["arch_key"])
    assert {t.user_attrs["arch_key"] for t in study.trials} == front and front
    row = {key: i for i, key in enumerate(loaded.history["arch_key"])}
    for trial in study.trials:
        i = row[trial.user_attrs["arch_key"]]
        assert trial.constraints == {"cost <= 3": pytest.approx(ev.constraints[i, 0])}
        assert trial.values == pytest.approx(list(ev.values[i]))
        assert set(trial.params) == set(archs[i])  # decisions are the trial's parameters


def test_existing_study_needs_resume_and_matching_provenance(problem, tmp_path):
    url = str(tmp_path / "s.db")  # bare path: a SQLite file
    _run(problem, "nsga2", url, budget=8)
    with pytest.raises(StorageError, match="already exists.*resume"):
        _run(problem, "nsga2", url, budget=8)
    with pytest.raises(StorageError, match="its engine is 'nsga2'"):
        _run(problem, "evolution", url, budget=8, resume=True)
    more = _run(problem, "nsga2", url, budget=12, resume=True)
    assert len(more) == 12 and more.history["arch_key"].is_unique
    with pytest.raises(StorageError, match="no study 'other'.*studies: kill"):
        load_result("other", url)


def _complete_trials(db: Path) -> int:
    """Evaluations stored in the study's log (Optuna engines: its COMPLETE trials)."""
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT count(*) FROM nas_evaluations WHERE state=1").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


@pytest.mark.parametrize(("engine", "kill_after"), [
    ("nsga2", 13), pytest.param("evolution", 22, marks=pytest.mark.slow)])
def test_resume_after_sigkill_loses_and_repeats_nothing(problem, tmp_path, engine, kill_after):
    reference = _run(problem, engine, None)
    db = tmp_path / "k.db"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, str(HERE / "_resume_child.py"), engine,
                              f"sqlite:///{db}", "40", "fresh", "0.05"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while _complete_trials(db) < kill_after and time.time() < deadline:
        assert child.poll() is None, "the child finished before it could be killed"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    written = _complete_trials(db)
    assert kill_after <= written < 40

    resumed = _run(problem, engine, f"sqlite:///{db}", resume=True)
    assert resumed.history["arch_key"].tolist() == reference.history["arch_key"].tolist()
    assert resumed.history["arch_key"].is_unique and len(resumed) == 40
    assert _complete_trials(db) == 40  # nothing written twice
    assert sorted(resumed.front["arch_key"]) == sorted(reference.front["arch_key"])


@pytest.mark.slow
def test_optuna_engine_resume_fails_orphans_and_completes_budget(problem, tmp_path):
    db = tmp_path / "o.db"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, str(HERE / "_resume_child.py"), "optuna-nsga2",
                              f"sqlite:///{db}", "30", "fresh", "0.05"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while _complete_trials(db) < 9 and time.time() < deadline:
        assert child.poll() is None, "the child finished before it could be killed"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    before = load_result("kill", f"sqlite:///{db}").history["arch_key"].tolist()
    resumed = _run(problem, "optuna-nsga2", f"sqlite:///{db}", budget=30, resume=True)
    keys = resumed.history["arch_key"].tolist()
    assert keys[: len(before)] == before  # nothing lost
    assert len(keys) >= 30 and len(set(keys)) == len(keys)  # nothing evaluated twice
    study = optuna.load_study(study_name="kill", storage=f"sqlite:///{db}")
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.RUNNING not in states
