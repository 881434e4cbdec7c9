"""Many workers on one study: each architecture claimed before it is evaluated, once.

Run :func:`run_worker` in as many processes (or hosts, on a shared PostgreSQL study)
as you like, each with its own engine seed. Before evaluating, a worker claims the
architectures of its batch in the study's evaluation log (one row per architecture
key, so a key is claimed once); it evaluates only what it claimed, reads what others
stored, waits for what others are evaluating, and stops when the study holds
``budget`` evaluations. Each worker refreshes a heartbeat on its claims; the claims of
a worker that died (no heartbeat for ``stale_after`` seconds) are taken over by the
others, so nothing it claimed is lost and nothing it finished is evaluated again.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nas.errors import SearchError
from nas.search._base import SearchEngine
from nas.search._problem import Problem
from nas.search._runner import Evaluator, evaluate_batch
from nas.storage import Record, StudySession, owner_line
from search_spaces import Architecture

__all__ = ["run_worker"]

#: Seconds between polls while waiting on other workers.
POLL_S = 0.05


class _Heartbeat(threading.Thread):
    """Refreshes the worker's claims every ``every`` seconds until stopped."""

    def __init__(self, session: StudySession, owner: str, every: float) -> None:
        super().__init__(daemon=True, name="nas-heartbeat")
        self.session, self.owner, self.every = session, owner, every
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.session.log.heartbeat(self.owner)


def run_worker(problem: Problem, engine: SearchEngine, budget: int, *, storage: str,
               study_name: str, batch_size: int = 20, stale_after: float = 60.0,
               provenance: dict[str, Any] | None = None, progress: bool | None = None,
               evaluator: Evaluator | None = None) -> int:
    """Evaluate architectures for the shared study ``study_name`` until it holds ``budget``.

    Args:
        problem: space, objectives and constraints (the same in every worker).
        engine: this worker's engine (give each worker its own seed); engines that record
            their own trials (the Optuna samplers) cannot be workers.
        budget: distinct evaluations of the whole study.
        storage: the shared study's SQLAlchemy URL (PostgreSQL across hosts, or a SQLite
            file on one host).
        study_name: the study (created by the first worker; provenance must match).
        batch_size: architectures per ask.
        stale_after: seconds without heartbeat after which a worker's claims are taken over.
        provenance: extra metadata stored with the study.
        progress: show a progress bar of the study's evaluations.
        evaluator: evaluates a batch of new architectures (default: in this process).

    Returns:
        How many evaluations this worker stored.

    Raises:
        SearchError: bad settings or an engine that records its own trials.
        StorageError: the study is held by a single search, or its provenance differs.
    """
    if budget < 1 or batch_size < 1 or not stale_after > 0:
        raise SearchError(f"budget and batch_size must be >= 1 and stale_after > 0, got "
                          f"{budget}, {batch_size} and {stale_after}")
    if engine.records_trials:
        raise SearchError(f"engine {engine.name!r} records its own Optuna trials and cannot be a "
                          f"worker; use an engine such as 'evolution', 'nsga2' or 'random'")
    if storage is None:
        raise SearchError("workers share a study: give a storage URL (PostgreSQL or SQLite file)")
    meta = {**problem.metadata(), "engine": engine.name, "seed": "per worker", **(provenance or {})}
    with StudySession(problem.space, problem.names, problem.directions,
                      [str(c) for c in problem.constraints], storage, study_name,
                      provenance=meta, role="worker") as session:
        worker = _Worker(problem, engine, session, evaluator or partial(evaluate_batch, problem),
                         budget, stale_after)
        beat = _Heartbeat(session, worker.owner, stale_after / 4)
        beat.start()
        show = sys.stderr.isatty() if progress is None else progress
        try:
            with tqdm(total=budget, disable=not show, desc=f"worker[{engine.name}]",
                      unit="arch") as bar:
                worker.run(batch_size, bar)
        finally:
            beat.halt.set()
            beat.join()
        return worker.stored


class _Worker:
    """One worker's loop (see :func:`run_worker`)."""

    def __init__(self, problem: Problem, engine: SearchEngine, session: StudySession,
                 evaluator: Evaluator, budget: int, stale_after: float) -> None:
        self.problem, self.engine, self.session, self.evaluator = problem, engine, session, evaluator
        self.budget, self.stale_after = budget, stale_after
        self.owner = f"{owner_line()} #{uuid.uuid4().hex[:8]}"
        self.stored = 0

    def run(self, batch_size: int, bar: tqdm) -> None:
        log, asking = self.session.log, True
        while True:
            done, live = log.counts(self.stale_after)
            bar.update(done - bar.n)
            if done >= self.budget:
                return
            stale = log.take_stale(self.owner, self.stale_after, batch_size)
            if stale:  # a dead worker's claims: evaluate them, nobody else will
                self._evaluate([Architecture.from_json(arch) for _, arch in stale])
            elif asking and done + live < self.budget:
                asking = self._batch(batch_size)
            else:  # the budget is claimed: wait for the others (or for their claims to go stale)
                time.sleep(POLL_S)

    def _batch(self, n: int) -> bool:
        """Ask, claim, evaluate what was claimed, wait for the rest, tell; whether the
        engine may be asked again (False once the budget refused a claim: no tell)."""
        archs = self.engine.ask(n)
        pending = {a.key: a for a in archs}
        while pending:
            status = self.session.log.claim([(k, a.to_json()) for k, a in pending.items()],
                                            self.owner, self.budget, self.stale_after)
            self._evaluate([pending[k] for k, s in status.items() if s == "claimed"])
            if any(s == "full" for s in status.values()):
                return False
            pending = {k: a for k, a in pending.items() if status[k] == "busy"}
            if pending:
                time.sleep(POLL_S)
        records = self.session.fetch(archs)
        values = self.problem.to_minimization(np.array([r.values for r in records]))
        self.engine.tell(archs, values, np.array([r.violation for r in records]))
        return True

    def _evaluate(self, archs: Sequence[Architecture]) -> None:
        """Evaluate claimed architectures and mark them done (one transaction)."""
        if not archs:
            return
        ev, measures = self.evaluator(list(archs))
        names = sorted(m.name for m in self.problem.measures)
        rows = [(a.key, Record(a, tuple(ev.values[i].tolist()), tuple(ev.constraints[i].tolist()),
                               float(ev.violation[i]), 0, 0,
                               measures=tuple((n, float(measures[n][i])) for n in names)).payload())
                for i, a in enumerate(archs)]
        self.session.log.finish(rows)
        self.stored += len(rows)

