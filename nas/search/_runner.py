"""The search loop: ask, evaluate new architectures, record each, tell; resumable."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nas.errors import SearchError
from nas.search._base import SearchEngine
from nas.search._index import EvaluationIndex
from nas.search._pareto import pareto_mask
from nas.search._problem import Evaluation, Problem
from nas.search._result import SearchResult
from nas.storage import Record, StudySession
from search_spaces import Architecture

__all__ = ["Evaluator", "evaluate_batch", "run_search"]

#: ``evaluator(archs) -> (Evaluation, {measure name: values})``: evaluates one batch of
#: new architectures; :func:`evaluate_batch` in this process, or spread over workers
#: (``nas.sweep.RayEvaluator``). It must return what ``evaluate_batch`` would.
Evaluator = Callable[[Sequence[Architecture]], tuple[Evaluation, dict[str, np.ndarray]]]

log = logging.getLogger(__name__)

#: Stop after this many consecutive batches that propose nothing new (space exhausted).
MAX_STALLED_BATCHES = 50


def evaluate_batch(problem: Problem, archs: Sequence[Architecture]
                   ) -> tuple[Evaluation, dict[str, np.ndarray]]:
    """Objectives, constraints and measures of a batch, in this process."""
    archs = list(archs)
    return problem.evaluate(archs), {m.name: m(archs) for m in problem.measures}


def run_search(problem: Problem, engine: SearchEngine, budget: int, *, batch_size: int = 20,
               storage: str | None = None, study_name: str = "nas-search", resume: bool = False,
               provenance: dict[str, Any] | None = None, progress: bool | None = None,
               evaluator: Evaluator | None = None) -> SearchResult:
    """Run ``engine`` on ``problem`` until ``budget`` distinct architectures are evaluated.

    Each batch: ``engine.ask``; architectures never evaluated before are evaluated
    together (objectives are batched) and written at once, one transaction per batch,
    to the study's evaluation log; repeats reuse the stored values (no row, no budget);
    then ``engine.tell``. At checkpoints (after every batch of the first 2,000
    evaluations, then as often as they take at most 5% of the time, and at the end)
    the engine's state is saved to the study and the evaluations on the feasible front
    are mirrored as Optuna trials (for the dashboard). So a process killed at any point resumes with ``resume=True``: the
    engine restarts from the last checkpoint, re-asks the batches since
    (deterministically, for our engines) and finds their evaluations already written
    in the database. The session holds the study while the search runs: a
    second writer is refused with one line naming the owner.
    Engines that record their own trials (the Optuna samplers) resume from the stored
    trials instead (see :class:`SearchEngine`).

    Args:
        problem: space, objectives and constraints.
        engine: a :class:`SearchEngine` on ``problem.space``.
        budget: number of distinct architectures to evaluate in total (resumed ones count).
        batch_size: architectures per ask.
        storage: SQLAlchemy URL (``sqlite:///runs/s.db``, ``postgresql://...``) or a SQLite
            file path; ``None``: an in-memory study (nothing survives the process).
        study_name: the study's name.
        resume: continue the stored study of that name.
        provenance: extra metadata stored with the study (e.g. ``{"predictor": "..."}``).
        progress: show a progress bar (default: when stderr is a terminal).
        evaluator: evaluates each batch of new architectures (default:
            :func:`evaluate_batch` here); only where evaluation happens changes, never
            the order of proposals or what is stored.
    """
    if budget < 1 or batch_size < 1:
        raise SearchError(f"budget and batch_size must be >= 1, got {budget} and {batch_size}")
    if engine.space is not problem.space and engine.space.fingerprint != problem.space.fingerprint:
        raise SearchError("the engine and the problem use different search spaces")
    meta = {**problem.metadata(), "engine": engine.name, "engine_config": engine.config(),
            "seed": engine.seed, **(provenance or {})}
    with StudySession(problem.space, problem.names, problem.directions,
                      [str(c) for c in problem.constraints], storage, study_name,
                      resume=resume, provenance=meta) as session:
        search = _Search(problem, engine, session, evaluator or partial(evaluate_batch, problem))
        show = sys.stderr.isatty() if progress is None else progress
        with tqdm(total=budget, initial=min(len(search.index), budget), disable=not show,
                  desc=f"search[{engine.name}]", unit="arch") as bar:
            stalled = 0
            while search.done < budget and stalled < MAX_STALLED_BATCHES:
                added = search.step(min(batch_size, budget - search.done), bar)
                stalled = 0 if added else stalled + 1
        search.checkpoint(final=True)
        if stalled >= MAX_STALLED_BATCHES:
            log.warning("search stopped after %d batches without a new architecture (the space "
                        "may be exhausted): %d of %d evaluated", stalled, search.done, budget)
        return SearchResult.from_session(problem, session)


class _Search:
    """The state of one search loop: the engine, the study session and a compact index of
    every evaluation (no architecture objects: memory grows by a few hundred bytes each)."""

    #: Largest share of the search's time spent in checkpoints (state and front).
    CHECKPOINT_SHARE = 0.05
    #: The state is saved after every batch while this many evaluations or fewer are
    #: done (it is small then); later as often as the share allows.
    EVERY_BATCH = 2000
    #: Feasible candidates gathered before the front is recomputed (bounds memory).
    FRONT_REFRESH = 2048

    def __init__(self, problem: Problem, engine: SearchEngine, session: StudySession,
                 evaluator: Evaluator) -> None:
        self.problem, self.engine, self.session, self.evaluator = problem, engine, session, evaluator
        # The state saved lists every proposal (the engine's ``seen``): its cost grows
        # with the history, so checkpoints space out to keep it a small share of the time.
        self.last_checkpoint, self.checkpoint_cost = time.monotonic(), 0.0
        if session.resumed and engine.records_trials:  # only they leave RUNNING trials
            session.fail_running()
        self.index = EvaluationIndex(len(problem.names), len(problem.constraints),
                                     sorted(m.name for m in problem.measures))
        last_batch = self.index.load(session.rows())
        # batch: number of the next ask; done: distinct evaluations counted so far
        self.batch, self.done = 0, 0
        if engine.records_trials:
            # Its proposals are not replayed: count what is stored, start a new batch.
            self.done, self.batch = len(self.index), last_batch + 1
        elif (state := session.engine_state()) is not None:
            engine.load_state_dict(state["engine"])
            self.batch, self.done = state["batch"] + 1, state["evaluations"]
        self.mirrors = session.persistent and not engine.records_trials
        self.front: list[Record] = []
        # engines without a complete hook need no Record per proposal
        self.hooked = type(engine).complete is not SearchEngine.complete
        self.candidates: list[Record] = []
        engine.bind(session)

    def step(self, n: int, bar: tqdm) -> bool:
        """One ask/evaluate/tell round; whether it added an evaluation to the study."""
        engine, batch, index = self.engine, self.batch, self.index
        archs = engine.ask(n)
        self._evaluate_new(archs, bar)
        if self.hooked:
            first: set[str] = set()
            for i, arch in enumerate(archs):
                engine.complete(i, index.record(arch),
                                repeat=arch.key in first or index.batch_of(arch.key) != batch)
                first.add(arch.key)
        values, violations = index.scores([a.key for a in archs])
        engine.tell(archs, self.problem.to_minimization(values), violations)
        # Count what this batch added, including evaluations written before a kill.
        added = sum(1 for key in {a.key for a in archs} if index.batch_of(key) == batch)
        self.done += added
        self.batch += 1
        if self.done <= self.EVERY_BATCH or (time.monotonic() - self.last_checkpoint
                                             >= self.checkpoint_cost / self.CHECKPOINT_SHARE):
            self.checkpoint()
        return added > 0

    def checkpoint(self, final: bool = False) -> None:
        """Save the engine's state after the last complete batch; mirror the front when
        ``final`` or when that keeps checkpoints within their share of the time."""
        if not self.mirrors:  # in memory: nothing to resume; Optuna engines keep their trials
            return
        start = time.monotonic()
        self.session.save_engine_state(self.batch - 1, self.done, self.engine.state_dict())
        if final or start - self.last_checkpoint >= self.checkpoint_cost / self.CHECKPOINT_SHARE:
            self._refresh_front()
            self.session.mirror(self.front)
            self.last_checkpoint = time.monotonic()
            self.checkpoint_cost = self.last_checkpoint - start

    def _refresh_front(self) -> None:
        pool = self.front + self.candidates
        if pool:
            values = self.problem.to_minimization(np.array([r.values for r in pool]))
            mask = pareto_mask(values, np.array([r.violation for r in pool]))
            self.front = [r for r, on in zip(pool, mask, strict=True) if on]
        self.candidates = []

    def _evaluate_new(self, archs: Sequence[Architecture], bar: tqdm) -> None:
        """Evaluate the architectures never evaluated before, store (one transaction) and
        index them."""
        # Position in the batch of each first-seen architecture: the stored order, so a
        # batch completed after a resume sorts exactly like an uninterrupted one.
        fresh: dict[str, int] = {}
        for pos, arch in enumerate(archs):
            if arch.key not in self.index:
                fresh.setdefault(arch.key, pos)
        if not fresh:
            return
        new = [archs[pos] for pos in fresh.values()]
        ev, measures = self.evaluator(new)
        names = [m.name for m in self.problem.measures]
        records = [Record(arch, tuple(ev.values[i].tolist()), tuple(ev.constraints[i].tolist()),
                          float(ev.violation[i]), self.batch, pos,
                          measures=tuple(sorted((n, float(measures[n][i])) for n in names)))
                   for i, (arch, pos) in enumerate(zip(new, fresh.values(), strict=True))]
        if not self.engine.records_trials:
            self.session.add_batch(records)
        for record in records:
            self.index.add(record)
        if self.mirrors:
            self.candidates += [r for r in records if r.violation <= 0]
            if len(self.candidates) >= self.FRONT_REFRESH:
                self._refresh_front()
        bar.update(len(records))

