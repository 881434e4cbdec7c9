"""Search studies in an Optuna RDB storage: one trial per evaluation, resumable.

This module is the one owner of the study format: every trial of a search is
written and read here, nowhere else. Layout of a study (all of it visible in
optuna-dashboard):

* study directions and metric names = the problem's objectives;
* study user attrs: provenance (space name and fingerprint, objectives with their
  sources' metadata such as a latency table's fingerprint or a predictor's id,
  constraints, engine and its settings, seed, caller's extras);
* one COMPLETE trial per evaluated architecture: ``params`` = the architecture's
  decisions as categorical parameters (the same names :meth:`SearchSpace.suggest`
  uses), ``values`` = raw objective values, Optuna constraints = one value per
  constraint (``<= 0`` feasible), user attrs ``arch`` (JSON), ``arch_key``,
  ``batch``, ``index``, ``violation`` and ``measure.NAME`` for each measure;
* engines that record their own trials (the Optuna samplers) also complete a trial
  for an architecture proposed again: it carries ``duplicate_of`` (the first
  evaluation's arch key) and is not an evaluation;
* study system attr ``nas:engine_state``: the engine's ``state_dict`` after the
  last completed batch, with the batch number and the evaluation count.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from nas.errors import StorageError
from search_spaces import Architecture, SearchSpace

# Our progress bars and stage summaries replace Optuna's per-study INFO lines.
optuna.logging.set_verbosity(optuna.logging.WARNING)

__all__ = ["Record", "StoredStudy", "StudySession", "read_study", "storage_url"]

log = logging.getLogger(__name__)

ENGINE_STATE_KEY = "nas:engine_state"
_MEASURE = "measure."
# Provenance keys that must match when a study is resumed.
_RESUME_KEYS = ("space", "space_fingerprint", "objectives", "measures", "constraints", "engine")


def storage_url(storage: str | None) -> str | None:
    """A SQLAlchemy URL; a bare path means a SQLite file (``runs/s.db`` -> ``sqlite:///runs/s.db``)."""
    if storage is None or "://" in storage:
        return storage
    return f"sqlite:///{storage}"


def _sqlite_wal(storage: Any) -> None:
    """SQLite in WAL mode with ``synchronous=NORMAL``: ~1.6x faster commits here, readers
    (optuna-dashboard, ``nas front``) do not block the writer, and a committed trial
    still survives a killed process (only a power loss can drop the last commits)."""
    import sqlalchemy

    engine = getattr(getattr(storage, "_backend", storage), "engine", None)
    if engine is None:
        return

    @sqlalchemy.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()  # reconnect so the pragmas apply


def _open_storage(url: str | None, *, create: bool) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url`` (in memory for ``None``); errors in one line."""
    if url is None:
        return optuna.storages.InMemoryStorage()
    sqlite_file = url.startswith("sqlite:///") and url != "sqlite:///:memory:"
    if create and sqlite_file:
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        storage = optuna.storages.get_storage(url)
    except Exception as exc:  # SQLAlchemy raises many kinds; report one line
        raise StorageError(f"cannot open storage {url!r}: {exc}") from None
    if url.startswith("sqlite:"):
        _sqlite_wal(storage)
    return storage


@dataclass(frozen=True)
class Record:
    """One evaluation as stored: raw objective values and Optuna-style constraint values.

    Attributes:
        arch: the architecture.
        values: raw objective values, in the problem's objective order.
        constraints: one Optuna-style value per constraint (``<= 0`` feasible).
        violation: total relative violation, 0 when feasible.
        batch, index: the ask that proposed it and its position there (first-seen).
        trial: the trial number in the study (-1 before it is stored).
        measures: ``(name, value)`` of each measure, sorted by name.
    """

    arch: Architecture
    values: tuple[float, ...]
    constraints: tuple[float, ...]
    violation: float
    batch: int
    index: int
    trial: int = -1
    measures: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class StoredStudy:
    """A search study as stored: objectives, constraints, provenance and evaluations.

    Attributes:
        study_name: the study's name.
        storage: its SQLAlchemy URL (``None`` in memory).
        names, directions: the objectives.
        constraints: the constraints as strings (``"latency_ms <= 15"``).
        provenance: the study's user attrs (see the module docstring).
        records: one per distinct evaluated architecture, in (batch, index) order.
    """

    study_name: str
    storage: str | None
    names: tuple[str, ...]
    directions: tuple[str, ...]
    constraints: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    records: tuple[Record, ...] = ()


def _label(value: Any) -> Any:
    """Optuna categorical choices must be scalars: tuples become ``"a,b"`` like ``suggest``."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def _user_attrs(record: Record) -> dict[str, Any]:
    attrs = {"arch": record.arch.to_json(), "arch_key": record.arch.key,
             "batch": record.batch, "index": record.index, "violation": record.violation}
    attrs.update({f"{_MEASURE}{name}": value for name, value in record.measures})
    return attrs


def _read_records(study: optuna.Study, constraint_names: Sequence[str]) -> tuple[Record, ...]:
    """Every evaluation of ``study``, in (batch, index) order; repeats of an arch skipped."""
    out, seen = [], set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if "arch" not in attrs or attrs.get("duplicate_of") is not None or attrs["arch_key"] in seen:
            continue
        seen.add(attrs["arch_key"])
        out.append(_record(trial, constraint_names))
    out.sort(key=lambda r: (r.batch, r.index, r.trial))
    return tuple(out)


def _record(trial: FrozenTrial, constraint_names: Sequence[str]) -> Record:
    attrs, cons = trial.user_attrs, trial.constraints
    measures = tuple((k[len(_MEASURE):], float(v)) for k, v in sorted(attrs.items())
                     if k.startswith(_MEASURE))
    return Record(Architecture.from_json(attrs["arch"]), tuple(float(v) for v in trial.values),
                  tuple(float(cons[n]) for n in constraint_names), float(attrs["violation"]),
                  int(attrs["batch"]), int(attrs["index"]), trial.number, measures)


def read_study(study_name: str, storage: str) -> StoredStudy:
    """Read a stored search study (for ``nas front`` and notebooks).

    Args:
        study_name: the study's name.
        storage: SQLAlchemy URL or SQLite file path.

    Raises:
        StorageError: the storage cannot be opened or holds no study of that name
            (the message lists the studies it holds).
    """
    url = storage_url(storage)
    store = _open_storage(url, create=False)
    names = [s.study_name for s in store.get_all_studies()]
    if study_name not in names:
        raise StorageError(f"no study {study_name!r} in {url}; studies: "
                           f"{', '.join(sorted(names)) or '(none)'}")
    study = optuna.load_study(study_name=study_name, storage=store)
    provenance = dict(study.user_attrs)
    constraints = tuple(provenance.get("constraints", ()))
    return StoredStudy(study_name, url,
                       tuple(study.metric_names or [f"value{i}" for i in range(len(study.directions))]),
                       tuple(d.name.lower() for d in study.directions), constraints, provenance,
                       _read_records(study, constraints))


class StudySession:
    """Opens (or resumes) the study of one search and reads/writes its records.

    Args:
        space: the search space (its name and fingerprint are checked on resume).
        names, directions: the objectives.
        constraint_names: the constraints, as their strings (``"latency_ms <= 15"``).
        storage: SQLAlchemy URL or SQLite path; ``None`` keeps the study in memory.
        study_name: the study's name in the storage.
        resume: continue an existing study (a missing one is created); without it an
            existing study of that name is an error.
        provenance: JSON-able metadata stored as study user attrs; on resume, the
            stored space fingerprint, objectives and engine must match.
    """

    def __init__(self, space: SearchSpace, names: list[str], directions: list[str],
                 constraint_names: list[str], storage: str | None, study_name: str,
                 resume: bool = False, provenance: dict[str, Any] | None = None) -> None:
        self.space = space
        self.names, self.directions = list(names), list(directions)
        self.constraint_names = list(constraint_names)
        self.url = storage_url(storage)
        self.storage = _open_storage(self.url, create=True)
        existing = {s.study_name for s in self.storage.get_all_studies()}
        if study_name in existing and not resume:
            raise StorageError(f"study {study_name!r} already exists in {self.url}; pass resume=True "
                               f"(CLI: --resume) to continue it, or choose another study name")
        self.resumed = study_name in existing
        self.study = optuna.create_study(storage=self.storage, study_name=study_name,
                                         directions=directions, load_if_exists=True)
        self.study_id = self.storage.get_study_id_from_name(study_name)
        stored = [d.name.lower() for d in self.study.directions]
        if stored != self.directions:
            raise StorageError(f"study {study_name!r} has directions {stored}, "
                               f"the problem has {self.directions}")
        provenance = dict(provenance or {})
        if self.resumed:
            self._check_provenance(provenance)
        else:
            with warnings.catch_warnings():  # experimental since 3.2, stable in use
                warnings.simplefilter("ignore")
                self.study.set_metric_names(self.names)
            for key, value in provenance.items():
                self.study.set_user_attr(key, value)

    @property
    def persistent(self) -> bool:
        """Whether the study outlives the process (``False`` in memory)."""
        return self.url is not None

    def _check_provenance(self, provenance: dict[str, Any]) -> None:
        stored = dict(self.study.user_attrs)

        def core(objectives: list[dict[str, Any]]) -> list[tuple]:
            return [(o.get("name"), o.get("direction"), o.get("type")) for o in objectives]

        provenance = dict(provenance)
        for key in ("objectives", "measures"):  # a changed source warns; a changed objective fails
            if key in stored and key in provenance:
                if stored[key] != provenance[key]:
                    log.warning("resuming study %r: the %s' sources changed (%s -> %s)",
                                self.study.study_name, key, stored[key], provenance[key])
                stored[key], provenance[key] = core(stored[key]), core(provenance[key])
        for key in _RESUME_KEYS:
            if key in provenance and key in stored and stored[key] != provenance[key]:
                raise StorageError(
                    f"cannot resume study {self.study.study_name!r}: its {key} is {stored[key]!r} "
                    f"but this search has {provenance[key]!r}")

    # writing -----------------------------------------------------------------------
    def _distributions(self, arch: Architecture) -> tuple[dict[str, Any], dict[str, CategoricalDistribution]]:
        """Decisions as Optuna categorical params (names and labels as ``space.suggest``)."""
        params = {path: _label(value) for path, value in arch.items()}
        dists = {path: CategoricalDistribution([_label(c) for c in options])
                 for path, options in self.space.choices(arch).items()}
        return params, dists

    def _constraints(self, record: Record) -> dict[str, float]:
        return dict(zip(self.constraint_names, record.constraints, strict=True))

    def add(self, record: Record) -> None:
        """Write one evaluation as one COMPLETE trial (a single storage call: atomic)."""
        params, dists = self._distributions(record.arch)
        trial = optuna.trial.create_trial(
            values=list(record.values), params=params, distributions=dists,
            user_attrs=_user_attrs(record), constraints=self._constraints(record) or None)
        self.study.add_trial(trial)

    def complete(self, trial: optuna.Trial, record: Record, *, duplicate: bool = False) -> None:
        """Complete a trial an engine opened with ``study.ask()`` as the evaluation ``record``.

        Args:
            trial: the running trial whose parameters proposed ``record.arch``.
            record: the evaluation (for a repeat, the first evaluation of that arch).
            duplicate: the architecture was evaluated before; the trial is marked
                ``duplicate_of`` and is not read back as an evaluation.
        """
        for key, value in _user_attrs(record).items():
            trial.set_user_attr(key, value)
        if duplicate:
            trial.set_user_attr("duplicate_of", record.arch.key)
        for key, value in self._constraints(record).items():
            trial.set_constraint(key, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study.tell(trial, list(record.values))

    def save_engine_state(self, batch: int, evaluations: int, state: dict[str, Any]) -> None:
        """Store the engine's state after ``batch`` (``evaluations`` distinct ones so far)."""
        payload = json.dumps({"batch": batch, "evaluations": evaluations, "engine": state})
        self.storage.set_study_system_attr(self.study_id, ENGINE_STATE_KEY, payload)

    def fail_running(self) -> int:
        """Mark trials left RUNNING by a killed process as FAIL (they were never scored)."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in running:
            self.study.tell(trial.number, state=TrialState.FAIL)
        return len(running)

    # reading -----------------------------------------------------------------------
    def engine_state(self) -> dict[str, Any] | None:
        """``{"batch", "evaluations", "engine"}`` saved by :meth:`save_engine_state`, if any."""
        raw = self.storage.get_study_system_attrs(self.study_id).get(ENGINE_STATE_KEY)
        return None if raw is None else json.loads(raw)

    def records(self) -> list[Record]:
        """Every stored evaluation, in (batch, index) order; repeats of an arch skipped."""
        return list(_read_records(self.study, self.constraint_names))

    def stored(self) -> StoredStudy:
        """The study as stored now (what :func:`read_study` returns for it)."""
        return StoredStudy(self.study.study_name, self.url, tuple(self.names), tuple(self.directions),
                           tuple(self.constraint_names), dict(self.study.user_attrs),
                           _read_records(self.study, self.constraint_names))
