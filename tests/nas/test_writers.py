"""Many writers: one owner per study and run folder, and workers that share a study.

Runs against SQLite and a private PostgreSQL cluster (started here; skipped with the
reason when PostgreSQL or its driver is absent).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from nas.errors import StorageError
from nas.search import get_engine, run_search, run_worker
from nas.storage import StudySession, lock_run_folder, read_study

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _postgres  # noqa: E402
from _resume_child import toy_problem  # noqa: E402

ROOT = HERE.parent.parent
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}{os.pathsep}"
                                   f"{os.environ.get('PYTHONPATH', '')}"}


@pytest.fixture(scope="module")
def postgres():
    """The URL of a private PostgreSQL cluster on localhost."""
    try:
        url, stop = _postgres.start()
    except _postgres.Unavailable as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield url
    stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    """A storage URL whose studies are fresh for this test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url = request.getfixturevalue("postgres")
    name = f"t{os.getpid()}_{abs(hash(request.node.name)) % 10**8}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def problem():
    return toy_problem()


def _session(problem, storage, name="held", **options):
    return StudySession(problem.space, problem.names, problem.directions,
                        [str(c) for c in problem.constraints], storage, name, **options)


def _child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _query(storage: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(storage)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


# one owner ------------------------------------------------------------------------------
def test_second_writer_is_refused_with_the_owner_until_the_first_closes(problem, storage):
    first = _session(problem, storage)
    pattern = rf"study 'held' in .* is in use by pid {os.getpid()} on host \S+ since 20"
    with pytest.raises(StorageError, match=pattern):
        _session(problem, storage, resume=True)
    with pytest.raises(StorageError, match=pattern):  # workers and a single search exclude each other
        _session(problem, storage, role="worker")
    first.close()
    worker = _session(problem, storage, role="worker")
    also = _session(problem, storage, role="worker")  # workers share the study
    with pytest.raises(StorageError, match=r"in use by pid .*\(worker\)"):
        _session(problem, storage, resume=True)
    worker.close(), also.close()
    _session(problem, storage, resume=True).close()


@pytest.mark.parametrize("kind", [pytest.param("folder", marks=pytest.mark.slow), "sqlite",
                                  pytest.param("postgresql", marks=pytest.mark.slow)])
def test_a_killed_owner_leaves_no_stale_lock(problem, tmp_path, kind, request):
    target = {"folder": lambda: str(tmp_path / "run"),
              "sqlite": lambda: f"sqlite:///{tmp_path / 's.db'}",
              "postgresql": lambda: request.getfixturevalue("postgres")}[kind]()
    child = _child(str(HERE / "_hold_child.py"), "folder" if kind == "folder" else "study", target)
    try:
        assert child.stdout.readline().strip() == "held", child.stderr.read()
        with pytest.raises(StorageError, match=rf"in use by pid {child.pid} on host"):
            if kind == "folder":
                lock_run_folder(target).__enter__()
            else:
                _session(problem, target, resume=True)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    if kind == "folder":
        with lock_run_folder(target):
            pass
    else:
        deadline = time.time() + 10  # the server notices the closed connection at once
        while True:
            try:
                _session(problem, target, resume=True).close()
                break
            except StorageError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)


# many workers ---------------------------------------------------------------------------
# four child processes: ~10 s each backend on a quiet 2-core machine; in the default suite,
# so that CI proves the many-writers guarantee on SQLite and PostgreSQL
def test_four_workers_evaluate_each_architecture_once_and_lose_nothing_when_one_is_killed(
        problem, storage, tmp_path):
    budget, events = 84, tmp_path / "events"
    _session(problem, storage, "shared", role="worker").close()  # the tables, made once
    # Two workers with the same seed propose the same architectures: only claims keep
    # them from evaluating each one twice.
    workers = [_child(str(HERE / "_worker_child.py"), storage, str(budget), str(seed), "0.25",
                      str(events)) for seed in (0, 1, 1, 2)]
    victim = workers[0]
    done_sql = "SELECT arch_key FROM nas_evaluations WHERE state=1"
    claims_sql = f"SELECT arch_key FROM nas_evaluations WHERE state=0 AND owner LIKE 'pid {victim.pid} %'"
    try:
        deadline = time.time() + 120
        while not (len(_query(storage, done_sql)) >= 12 and _query(storage, claims_sql)):
            assert time.time() < deadline and victim.poll() is None, "the victim never got mid-batch"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        unfinished = {k for (k,) in _query(storage, claims_sql)}  # claimed, never stored
        before = {k for (k,) in _query(storage, done_sql)}
        for worker in workers[1:]:
            out, err = worker.communicate(timeout=180)
            assert worker.returncode == 0, err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert unfinished, "the victim was killed between batches"
    keys = [r.arch.key for r in read_study("shared", storage).records]
    assert len(keys) == budget and len(set(keys)) == budget
    assert before <= set(keys) and unfinished <= set(keys)  # nothing lost, claims taken over
    evaluated = Counter()
    by = {}
    for line in events.read_text().splitlines():
        pid, key = line.split()
        evaluated[key] += 1
        by.setdefault(key, []).append(int(pid))
    assert set(evaluated) == set(keys)
    twice = {k for k, n in evaluated.items() if n > 1}
    assert twice <= unfinished  # only what the victim never finished ran again
    assert all(n == 2 and victim.pid in by[k] for k, n in evaluated.items() if n > 1)


def test_worker_refuses_an_engine_that_records_trials(problem, tmp_path):
    from nas.errors import SearchError

    engine = get_engine("optuna-tpe", problem.space, seed=0)
    with pytest.raises(SearchError, match="records its own Optuna trials"):
        run_worker(problem, engine, 10, storage=f"sqlite:///{tmp_path / 'w.db'}", study_name="w")


def test_single_search_on_a_shared_storage_writes_each_architecture_once(problem, storage):
    result = run_search(problem, get_engine("evolution", problem.space, seed=1, population_size=10),
                        budget=30, batch_size=6, storage=storage, study_name="one", progress=False)
    stored = _query(storage, "SELECT count(*), count(DISTINCT arch_key) FROM nas_evaluations "
                             "WHERE study_name='one' AND state=1")
    assert stored == [(30, 30)] and len(result) == 30
