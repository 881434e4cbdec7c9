"""The :class:`SearchEngine` role (ask/tell on batches) and the engine registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nas.errors import SearchError
from search_spaces import Architecture, Registry, SearchSpace

if TYPE_CHECKING:
    from nas.storage import Record, StudySession

__all__ = ["ENGINES", "SearchEngine", "get_engine", "list_engines", "register_engine"]


class SearchEngine(ABC):
    """Proposes architectures in batches and learns from their scores.

    Contract:
        * ``ask(n)`` returns ``n`` architectures of the space. The caller evaluates
          them and calls ``tell`` with exactly those architectures, in that order,
          before the next ``ask``.
        * ``tell`` receives objective values in *minimisation* form, shape (n, m),
          and the total constraint violation, shape (n,), 0 when feasible.
        * All randomness comes from the engine's own ``numpy.random.Generator``,
          seeded in the constructor; ``state_dict()`` captures it with everything
          else, so ``load_state_dict(state_dict())`` on a fresh engine continues the
          same sequence of proposals. The state is plain JSON.
        * Engines are not thread safe; one engine drives one search.

    :func:`~nas.search.run_search` drives an engine in this order: ``load_state_dict``
    (when resuming a study with a saved state), :meth:`bind` once, then per batch
    ``ask``, :meth:`complete` for each proposed architecture, ``tell``, and
    ``state_dict`` (saved to the study). The hooks do nothing by default; engines
    whose state lives in the study's trials (the Optuna samplers) use them.

    Resuming: an engine with ``records_trials = False`` must replay deterministically
    (same seed and state, same proposals): the search reloads the state saved after
    the last complete batch and re-asks the interrupted batch, whose evaluations are
    already stored. An engine with ``records_trials = True`` writes its own trials in
    :meth:`complete`; its ``state_dict`` is not saved, and a resumed search counts the
    stored evaluations and carries on with a new batch.

    :func:`nas.testing.check_engine` checks an engine against this contract.

    Args:
        space: the search space.
        seed: seed of the engine's generator.
    """

    name: ClassVar[str] = ""
    #: True when the engine writes the study's trials itself (in :meth:`complete`) and
    #: keeps its state there; the search loop then stores neither records nor state.
    records_trials: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"

    @abstractmethod
    def ask(self, n: int) -> list[Architecture]:
        """Propose ``n`` architectures."""

    @abstractmethod
    def tell(self, archs: Sequence[Architecture], values: np.ndarray,
             violations: np.ndarray) -> None:
        """Receive the scores of the last ``ask`` (minimisation form) and violations."""

    # hooks of the search loop (no-ops by default) ----------------------------------
    def bind(self, session: StudySession) -> None:  # noqa: B027 (optional hook)
        """Hook: called once before the first ``ask`` with the search's study session
        (after a resumed state was loaded). Default: nothing."""

    def complete(self, index: int, record: Record, *, repeat: bool) -> None:  # noqa: B027
        """Hook: called for each architecture of the last ``ask``, in order, once its
        evaluation is known and before ``tell``.

        Args:
            index: position of the architecture in the last ``ask``.
            record: its stored evaluation (raw values, constraint values, measures).
            repeat: it was evaluated before (in an earlier batch, or earlier in this
                one): ``record`` is that first evaluation and nothing new was stored.
        """

    def config(self) -> dict[str, Any]:
        """Constructor settings, stored as provenance (override to add more)."""
        return {"engine": self.name, "seed": self.seed}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: generator, proposals made so far, subclass state."""
        return {"engine": self.name, "rng": self.rng.bit_generator.state,
                "seen": sorted(self._seen), **self._extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (of an engine of the same name and settings)."""
        if state.get("engine") != self.name:
            raise SearchError(f"state of engine {state.get('engine')!r} cannot be loaded into "
                              f"engine {self.name!r}")
        self.rng.bit_generator.state = state["rng"]
        self._seen = set(state["seen"])
        self._load_extra_state(state)

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Hook: restore what :meth:`_extra_state` saved (stateless engines: nothing)."""

    # helpers for subclasses --------------------------------------------------------
    def _fresh_rows(self, make: Callable[[int], np.ndarray], n: int, tries: int = 20,
                    again: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Architecture]:
        """Batch :meth:`_fresh` on the space's decision table: ``make(k)`` returns an
        index matrix of ``k`` proposals; rows whose architecture was proposed before
        (or earlier in this batch) are made again by ``make``, at most ``tries`` times;
        then, when ``again`` is given, varied by ``again(rows)`` up to ``tries`` more
        times (e.g. one more mutation each time, which walks out of a neighbourhood
        the search has exhausted)."""
        table = self.space.decision_table
        archs = table.to_archs(make(n))
        for attempt in range(2 * tries if again is not None else tries):
            seen, redo = self._seen, []
            batch: set[str] = set()
            for i, arch in enumerate(archs):
                if arch.key in seen or arch.key in batch:
                    redo.append(i)
                else:
                    batch.add(arch.key)
            if not redo:
                break
            rows = (make(len(redo)) if attempt < tries
                    else again(table.to_matrix([archs[i] for i in redo])))
            for i, arch in zip(redo, table.to_archs(rows), strict=True):
                archs[i] = arch
        self._seen.update(a.key for a in archs)
        return archs

    def _fresh(self, make: Callable[[], Architecture], tries: int = 20,
               again: Callable[[Architecture], Architecture] | None = None) -> Architecture:
        """Call ``make`` until it yields an architecture not proposed before (at most
        ``tries`` times); then, with ``again``, vary the repeat by ``again(arch)``."""
        arch = make()
        for attempt in range(2 * tries if again is not None else tries):
            if arch.key not in self._seen:
                break
            arch = make() if attempt < tries else again(arch)
        self._seen.add(arch.key)
        return arch


ENGINES: Registry[type[SearchEngine]] = Registry("engine", SearchError)
"""Search-engine classes by name; each is built as ``cls(space, **options)``."""


def register_engine(name: str, *, replace: bool = False) -> Callable[[type[SearchEngine]], type[SearchEngine]]:
    """Class decorator adding an engine to the registry under ``name`` (sets ``cls.name``)."""
    return ENGINES.register(name, replace=replace, name_attribute="name")


def list_engines() -> list[str]:
    """Names of the registered engines, sorted."""
    return ENGINES.names()


def get_engine(name: str, space: SearchSpace, **options: Any) -> SearchEngine:
    """Build a registered engine by name; unknown names and options list the valid ones."""
    return ENGINES.create(name, space, **options)
