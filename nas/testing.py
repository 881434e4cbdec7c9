"""Conformance suite of the search-engine role, for registered engines and your own.

Each check drives an engine the way :func:`nas.search.run_search` does (the order
and hooks documented on :class:`nas.search.SearchEngine`) and raises
``AssertionError`` with a message saying which rule failed. This module does not
need pytest; run it from any test::

    from nas.testing import check_engine

    def test_my_engine_conforms():
        check_engine(lambda space, seed: MyEngine(space, seed=seed))

``make(space, seed)`` builds a fresh engine; the checks use :func:`toy_problem`
(two linear objectives and one constraint on nb201) unless given a problem. The
project runs :data:`ENGINE_CHECKS` over every engine of ``nas.search.ENGINES``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nas.objectives import CallableObjective
from nas.search import Constraint, Problem, SearchEngine, evaluate_batch, load_result, run_search
from nas.storage import Record, StudySession, storage_url
from search_spaces import Architecture, ArchitectureError, SearchSpace, get_space

__all__ = [
    "ENGINE_CHECKS",
    "EngineFactory",
    "check_ask",
    "check_determinism",
    "check_engine",
    "check_resume",
    "check_state_dict",
    "check_tell",
    "toy_problem",
]

#: ``make(space, seed) -> SearchEngine``: a fresh engine on ``space`` seeded with ``seed``.
EngineFactory = Callable[[SearchSpace, int], SearchEngine]

BATCH = 4      # architectures per ask in every check
BATCHES = 4    # asks per driven sequence (and per search: budget BATCH * BATCHES)
SEED = 7


def _expect(condition: bool, message: str) -> None:
    """An ``assert`` that ``python -O`` keeps."""
    if not condition:
        raise AssertionError(message)


def toy_problem(space: SearchSpace | None = None, *, objectives: int = 2,
                bound: float | None = None) -> Problem:
    """A cheap deterministic problem: linear functions of ``space.encode`` (nb201 by default).

    Objectives ``cost`` (minimised) and ``acc`` (maximised); with ``objectives=1``
    only ``acc``, and ``cost`` becomes a measure. The constraint ``cost <= bound``
    (default: the median cost of 64 sampled architectures) rejects about half.
    """
    if objectives not in (1, 2):
        raise ValueError(f"objectives must be 1 or 2, got {objectives!r}")
    space = space if space is not None else get_space("nb201")
    weights = np.random.default_rng(1).normal(size=space.encoding_size)
    acc = CallableObjective("acc", lambda a: space.encode_batch(a) @ weights, "maximize")
    cost = CallableObjective("cost", lambda a: space.encode_batch(a) @ np.abs(weights[::-1]))
    if bound is None:
        rng = np.random.default_rng(0)
        bound = float(np.median(cost([space.sample(rng) for _ in range(64)])))
    constraint = f"cost <= {bound:.6g}"
    if objectives == 1:
        return Problem(space, [acc], [constraint], measures=[cost])
    return Problem(space, [cost, acc], [constraint])


def _session(problem: Problem) -> StudySession:
    """An in-memory study session for ``problem`` (what ``bind`` receives)."""
    return StudySession(problem.space, problem.names, problem.directions,
                        [str(c) for c in problem.constraints], None, "conformance")


def _drive(engine: SearchEngine, problem: Problem, batches: int,
           restart: Callable[[SearchEngine], SearchEngine] | None = None,
           at: int = 0) -> list[Architecture]:
    """Every proposal of ``batches`` ask/complete/tell rounds, as ``run_search`` makes
    them (in memory); before round ``at``, ``restart(engine)`` may replace the engine."""
    session = _session(problem)
    engine.bind(session)
    cache: dict[str, Record] = {}
    proposed = []
    for batch in range(batches):
        if restart is not None and batch == at:
            engine = restart(engine)
            engine.bind(session)
        archs = engine.ask(BATCH)
        _check_proposals(engine, problem.space, archs, BATCH)
        ev = problem.evaluate(archs)
        for i, arch in enumerate(archs):
            repeat = arch.key in cache
            if not repeat:
                cache[arch.key] = Record(arch, tuple(ev.values[i].tolist()),
                                         tuple(ev.constraints[i].tolist()), float(ev.violation[i]),
                                         batch, i)
            engine.complete(i, cache[arch.key], repeat=repeat)
        engine.tell(archs, problem.to_minimization(ev.values), ev.violation)
        proposed += archs
    return proposed


def _check_proposals(engine: SearchEngine, space: SearchSpace, archs: Sequence, n: int) -> None:
    _expect(isinstance(archs, list) and len(archs) == n,
            f"{engine!r}.ask({n}) must return a list of {n} architectures, got "
            f"{type(archs).__name__} of {len(archs) if hasattr(archs, '__len__') else '?'}")
    for i, arch in enumerate(archs):
        _expect(isinstance(arch, Architecture),
                f"{engine!r}.ask({n})[{i}] is a {type(arch).__name__}, not an Architecture")
        try:
            space.validate(Architecture(dict(arch)))  # a copy: validated from scratch
        except ArchitectureError as exc:
            raise AssertionError(f"{engine!r}.ask({n})[{i}] is not in space "
                                 f"{space.name!r}: {exc}") from None


def _problem(problem: Problem | None) -> Problem:
    return problem if problem is not None else toy_problem()


def check_ask(make: EngineFactory, problem: Problem | None = None) -> None:
    """``ask(n)`` returns a list of ``n`` architectures of the space that validate,
    for batches of one and of several, before and after ``tell``."""
    problem = _problem(problem)
    engine = make(problem.space, SEED)
    _expect(isinstance(engine, SearchEngine), f"make() returned {type(engine).__name__}, "
            "not a nas.search.SearchEngine")
    space = getattr(engine, "space", None)
    _expect(isinstance(space, SearchSpace) and space.fingerprint == problem.space.fingerprint,
            "the engine must keep the space it was built on as engine.space")
    _drive(engine, problem, BATCHES)
    engine = make(problem.space, SEED)
    engine.bind(_session(problem))
    _check_proposals(engine, problem.space, engine.ask(1), 1)


def check_tell(make: EngineFactory, problem: Problem | None = None) -> None:
    """``tell`` takes minimisation values of shape (n, m) and violations of shape (n,),
    also when every architecture is infeasible; the engine keeps proposing."""
    problem = _problem(problem)
    first = problem.objectives[0]
    minimize = first.direction == "minimize"
    impossible = Constraint(first.name, "<=" if minimize else ">=", -1e300 if minimize else 1e300)
    hopeless = Problem(problem.space, problem.objectives, [impossible], problem.measures)
    _drive(make(problem.space, SEED), hopeless, BATCHES)
    _drive(make(problem.space, SEED), problem, BATCHES)


def check_determinism(make: EngineFactory, problem: Problem | None = None) -> None:
    """The same seed gives the same proposals."""
    problem = _problem(problem)
    first = [a.key for a in _drive(make(problem.space, SEED), problem, BATCHES)]
    again = [a.key for a in _drive(make(problem.space, SEED), problem, BATCHES)]
    _expect(first == again, f"two engines seeded {SEED} proposed different architectures: "
            f"the first difference is at proposal {_first_difference(first, again)}")


def _first_difference(a: Sequence, b: Sequence) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def check_state_dict(make: EngineFactory, problem: Problem | None = None) -> None:
    """``state_dict()`` is plain JSON, before and after ``tell``; for an engine that
    does not record its own trials, ``load_state_dict`` of that JSON on a fresh engine
    (another seed) continues the same proposals."""
    problem = _problem(problem)
    engine = make(problem.space, SEED)
    _json(engine)

    def restart(old: SearchEngine) -> SearchEngine:
        fresh = make(problem.space, SEED + 1000)
        fresh.load_state_dict(json.loads(_json(old)))
        return fresh

    resumed = [a.key for a in _drive(engine, problem, BATCHES, restart, at=BATCHES // 2)]
    if engine.records_trials:  # its state lives in the study: resuming does not replay
        return
    straight = [a.key for a in _drive(make(problem.space, SEED), problem, BATCHES)]
    _expect(resumed == straight, "an engine restored with load_state_dict(json of state_dict()) "
            "did not continue the same proposals: first difference at proposal "
            f"{_first_difference(straight, resumed)}")


def _json(engine: SearchEngine) -> str:
    try:
        return json.dumps(engine.state_dict(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{engine!r}.state_dict() is not plain JSON: {exc}") from None


class _Interrupted(Exception):
    """Raised by the evaluator to stop a search, as a killed process would."""


def check_resume(make: EngineFactory, problem: Problem | None = None) -> None:
    """Through ``run_search`` into SQLite, interrupted in the middle and resumed: nothing
    evaluated before the interruption is lost or evaluated again, the budget is met,
    and an engine that does not record its own trials ends with the history of an
    uninterrupted search."""
    problem = _problem(problem)
    budget = BATCH * BATCHES
    evaluated: list[str] = []

    def evaluator(stop_at: int | None):
        calls = [0]

        def evaluate(archs):
            calls[0] += 1
            if calls[0] == stop_at:
                raise _Interrupted
            evaluated.extend(a.key for a in archs)
            return evaluate_batch(problem, archs)

        return evaluate

    def search(storage: str | None, resume: bool, stop_at: int | None = None):
        return run_search(problem, make(problem.space, SEED), budget, batch_size=BATCH,
                          storage=storage, study_name="conformance", resume=resume,
                          progress=False, evaluator=evaluator(stop_at))

    reference = list(search(None, False).history["arch_key"])
    evaluated.clear()
    with tempfile.TemporaryDirectory() as tmp:
        url = storage_url(str(Path(tmp) / "study.db"))
        try:
            search(url, False, stop_at=BATCHES // 2 + 1)
        except _Interrupted:
            pass
        kept = list(load_result("conformance", url).history["arch_key"])
        final = list(search(url, True).history["arch_key"])
    _expect(final[:len(kept)] == kept, "evaluations stored before an interruption were lost")
    _expect(len(final) == budget and len(set(final)) == budget,
            f"a resumed search must end with {budget} distinct evaluations, got {len(final)} "
            f"({len(set(final))} distinct)")
    _expect(len(evaluated) == len(set(evaluated)) == budget,
            f"{len(evaluated)} evaluations for {len(set(evaluated))} architectures: "
            "a resumed search evaluated some again")
    engine = make(problem.space, SEED)
    if not engine.records_trials:
        _expect(final == reference, f"{engine!r} resumed from its saved state but did not "
                "replay an uninterrupted search: first difference at evaluation "
                f"{_first_difference(reference, final)}")


#: Every check by name, to parametrise a test over (engine, check) pairs.
ENGINE_CHECKS: dict[str, Callable[[EngineFactory, Problem | None], None]] = {
    "ask": check_ask,
    "tell": check_tell,
    "determinism": check_determinism,
    "state_dict": check_state_dict,
    "resume": check_resume,
}


def check_engine(make: EngineFactory, problem: Problem | None = None) -> None:
    """Run every check of :data:`ENGINE_CHECKS` on the engines ``make`` builds.

    Args:
        make: ``make(space, seed) -> SearchEngine``, a fresh engine each call.
        problem: the problem to search (default :func:`toy_problem`); pass one on
            the space your engine is made for.

    Raises:
        AssertionError: naming the rule the engine breaks.
    """
    problem = _problem(problem)
    for check in ENGINE_CHECKS.values():
        check(make, problem)
