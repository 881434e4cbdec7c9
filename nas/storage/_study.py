"""Search studies: an Optuna study for provenance and the dashboard, an evaluation log for records.

This module and :mod:`nas.storage._records` / :mod:`nas.storage._log` are the one
owner of the study format: every evaluation of a search is written and read here,
nowhere else. Layout of a study:

* the Optuna study: directions and metric names = the problem's objectives; user attrs =
  provenance (space name and fingerprint, objectives with their sources' metadata such
  as a latency table's fingerprint or a predictor's id, constraints, engine and its
  settings, seed, caller's extras); system attr ``nas:engine_state``: the engine's
  ``state_dict`` at the last checkpoint, with the batch number and the evaluation count;
* the evaluation log (table ``nas_evaluations`` in the same database): one row per
  evaluated architecture, written one transaction per batch: this is what
  :func:`read_study` and a resumed search read;
* COMPLETE Optuna trials for the dashboard: the evaluations on the feasible Pareto front
  at each checkpoint (:meth:`StudySession.mirror`), or every evaluation of the engines
  that record their own trials (the Optuna samplers; a repeat proposal carries
  ``duplicate_of`` and is not an evaluation). ``params`` = the architecture's decisions as
  categorical parameters (the names :meth:`SearchSpace.suggest` uses), ``values`` = raw
  objective values, Optuna constraints = one value per constraint (``<= 0`` feasible),
  user attrs ``arch`` (JSON), ``arch_key``, ``batch``, ``index``, ``violation`` and
  ``measure.NAME`` for each measure.

Studies written before the log (every evaluation a trial) are read from their trials.
One process owns a study at a time (an OS or database lock, see :mod:`nas.storage._lock`),
or several workers share it (``role="worker"``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.errors import StorageError
from nas.storage._lock import OwnerLock
from nas.storage._log import EvaluationLog, LogRow
from nas.storage._mirror import insert_trials, mirrored_keys
from nas.storage._records import (
    Record,
    StoredStudy,
    legacy_rows,
    record_of_row,
    trial_attrs,
    trial_params,
)
from search_spaces import Architecture, SearchSpace

# Our progress bars and stage summaries replace Optuna's per-study INFO lines.
optuna.logging.set_verbosity(optuna.logging.WARNING)

__all__ = ["StudySession", "read_study", "storage_url"]

log = logging.getLogger(__name__)

ENGINE_STATE_KEY = "nas:engine_state"
# Provenance keys that must match when a study is resumed.
_RESUME_KEYS = ("space", "space_fingerprint", "objectives", "measures", "constraints", "engine")
_ROLES = ("owner", "worker")


def storage_url(storage: str | None) -> str | None:
    """A SQLAlchemy URL; a bare path means a SQLite file (``runs/s.db`` -> ``sqlite:///runs/s.db``)."""
    if storage is None or "://" in storage:
        return storage
    return f"sqlite:///{storage}"


def _sqlite_file(url: str | None) -> Path | None:
    if url is None or not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url[len("sqlite:///"):])


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
    path = _sqlite_file(url)
    if path is not None and create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif path is not None and not path.is_file():  # reading must not create an empty database
        raise StorageError(f"no study database at {path}")
    try:
        storage = optuna.storages.get_storage(url)
    except Exception as exc:  # SQLAlchemy raises many kinds; report one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot open storage {url!r}: {first}") from None
    if url.startswith("sqlite:"):
        _sqlite_wal(storage)
    return storage


def _study_lock(url: str | None, study_name: str, evaluation_log: EvaluationLog,
                shared: bool) -> OwnerLock | None:
    """This process's hold on the study (``None`` in memory or where no lock is known)."""
    what = f"study '{study_name}' in {url}"
    if (path := _sqlite_file(url)) is not None:
        tag = hashlib.sha1(study_name.encode()).hexdigest()[:12]
        return OwnerLock.file(path.with_name(f"{path.name}.{tag}.lock"), what, shared=shared)
    if evaluation_log.engine.dialect.name == "postgresql":
        return OwnerLock.postgres(evaluation_log.engine, study_name, what, shared=shared)
    if url is not None and url != "sqlite:///:memory:":
        log.warning("no owner lock for %s storage: keep to one writer per study",
                    evaluation_log.engine.dialect.name)
    return None


def _rows(study: optuna.Study, evaluation_log: EvaluationLog, constraint_names: Sequence[str],
          archs: bool) -> Iterator[LogRow]:
    """Done rows of the log, or of the trials of a study stored before the log."""
    if evaluation_log.count() == 0:
        yield from legacy_rows(study, constraint_names)
    else:
        yield from evaluation_log.done(archs=archs)


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
    evaluation_log = EvaluationLog(url, study_name, create=False)
    try:
        rows = tuple(_rows(study, evaluation_log, constraints, True))
    finally:
        evaluation_log.close()
    return StoredStudy(study_name, url,
                       tuple(study.metric_names or [f"value{i}" for i in range(len(study.directions))]),
                       tuple(d.name.lower() for d in study.directions), constraints, provenance,
                       rows)


class StudySession:
    """Opens (or resumes) the study of one search and reads/writes its records.

    The session holds the study for its process until :meth:`close` (or the process
    ends): a second session on the same study is refused with one line naming the
    study and its owner. Workers (``role="worker"``) share the study with each other.

    Args:
        space: the search space (its name and fingerprint are checked on resume).
        names, directions: the objectives.
        constraint_names: the constraints, as their strings (``"latency_ms <= 15"``).
        storage: SQLAlchemy URL or SQLite path; ``None`` keeps the study in memory.
        study_name: the study's name in the storage.
        resume: continue an existing study (a missing one is created); without it an
            existing study of that name is an error. Workers always resume.
        provenance: JSON-able metadata stored as study user attrs; on resume, the
            stored space fingerprint, objectives and engine must match.
        role: ``"owner"`` (one search, exclusive) or ``"worker"`` (shared with workers).
    """

    def __init__(self, space: SearchSpace, names: list[str], directions: list[str],
                 constraint_names: list[str], storage: str | None, study_name: str,
                 resume: bool = False, provenance: dict[str, Any] | None = None,
                 role: str = "owner") -> None:
        if role not in _ROLES:
            raise StorageError(f"role must be one of {', '.join(_ROLES)}, got {role!r}")
        self.space, self.role = space, role
        self.names, self.directions = list(names), list(directions)
        self.constraint_names = list(constraint_names)
        self.url = storage_url(storage)
        self.storage = _open_storage(self.url, create=True)
        self.log = EvaluationLog(self.url, study_name)
        self._lock = _study_lock(self.url, study_name, self.log, shared=role == "worker")
        try:
            self._open(study_name, resume or role == "worker", dict(provenance or {}))
        except BaseException:
            self.close()
            raise
        self._trial = self.log.count()
        self._mirrored = mirrored_keys(self.storage, self.study_id)
        if self._mirrored is None:  # in memory, or an Optuna schema we do not read directly
            self._mirrored = {t.user_attrs.get("arch_key") for t in self.study.get_trials(deepcopy=False)}

    def _open(self, study_name: str, resume: bool, provenance: dict[str, Any]) -> None:
        existing = {s.study_name for s in self.storage.get_all_studies()}
        if study_name in existing and not resume:
            raise StorageError(f"study {study_name!r} already exists in {self.url}; pass resume=True "
                               f"(CLI: --resume) to continue it, or choose another study name")
        self.resumed = study_name in existing
        self.study = optuna.create_study(storage=self.storage, study_name=study_name,
                                         directions=self.directions, load_if_exists=True)
        self.study_id = self.storage.get_study_id_from_name(study_name)
        stored = [d.name.lower() for d in self.study.directions]
        if stored != self.directions:
            raise StorageError(f"study {study_name!r} has directions {stored}, "
                               f"the problem has {self.directions}")
        if self.resumed:
            self._check_provenance(provenance)
        else:
            with warnings.catch_warnings():  # experimental since 3.2, stable in use
                warnings.simplefilter("ignore")
                self.study.set_metric_names(self.names)
            for key, value in provenance.items():
                self.study.set_user_attr(key, value)

    def close(self) -> None:
        """Release the study (its lock and connections); idempotent."""
        if getattr(self, "_lock", None) is not None:
            self._lock.release()
            self._lock = None
        self.log.close()

    def __enter__(self) -> StudySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    def add_batch(self, records: Sequence[Record]) -> None:
        """Write evaluations to the log in one transaction (a killed process keeps each
        batch whole or not at all); an architecture already stored is skipped."""
        rows = [r.row(self._trial + i) for i, r in enumerate(records)]
        self.log.add(rows)
        self._trial += len(rows)

    def add(self, record: Record) -> None:
        """Write one evaluation (see :meth:`add_batch`)."""
        self.add_batch([record])

    def mirror(self, records: Sequence[Record]) -> int:
        """Write ``records`` not mirrored yet as COMPLETE Optuna trials (for the dashboard),
        in one transaction where the storage allows; the number written."""
        trials = []
        for record in records:
            if record.arch.key in self._mirrored:
                continue
            params, dists = trial_params(record, self.space.choices(record.arch))
            constraints = dict(zip(self.constraint_names, record.constraints, strict=True))
            trials.append(optuna.trial.create_trial(
                values=list(record.values), params=params, distributions=dists,
                user_attrs=trial_attrs(record), constraints=constraints or None))
            self._mirrored.add(record.arch.key)
        if not insert_trials(self.storage, self.study_id, trials):
            for trial in trials:  # in memory, or an Optuna schema we do not write directly
                self.study.add_trial(trial)
        return len(trials)

    def complete(self, trial: optuna.Trial, record: Record, *, duplicate: bool = False) -> None:
        """Complete a trial an engine opened with ``study.ask()`` as the evaluation ``record``.

        Args:
            trial: the running trial whose parameters proposed ``record.arch``.
            record: the evaluation (for a repeat, the first evaluation of that arch).
            duplicate: the architecture was evaluated before; the trial is marked
                ``duplicate_of`` and is not read back as an evaluation.
        """
        for key, value in trial_attrs(record).items():
            trial.set_user_attr(key, value)
        if duplicate:
            trial.set_user_attr("duplicate_of", record.arch.key)
        for key, value in zip(self.constraint_names, record.constraints, strict=True):
            trial.set_constraint(key, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study.tell(trial, list(record.values))
        if not duplicate:
            self.log.add([record.row(trial.number)])
            self._mirrored.add(record.arch.key)

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

    def rows(self, *, archs: bool = False) -> Iterator[LogRow]:
        """Every stored evaluation as a compact row ``(arch_key, batch, index, trial, payload,
        arch JSON or None)``, in (batch, index) order, streamed (for a resumed search)."""
        return _rows(self.study, self.log, self.constraint_names, archs)

    def fetch(self, archs: Sequence[Architecture]) -> list[Record]:
        """The stored evaluations of ``archs`` (each must be stored), in their order."""
        rows = {row[0]: row for row in self.log.done(keys={a.key for a in archs})}
        missing = [a.key for a in archs if a.key not in rows]
        if missing:
            raise StorageError(f"study {self.study.study_name!r} holds no evaluation of "
                               f"{', '.join(missing[:5])}")
        return [record_of_row(rows[a.key], a) for a in archs]

    def records(self) -> list[Record]:
        """Every stored evaluation, in (batch, index) order; repeats of an arch skipped."""
        return [record_of_row(r) for r in self.rows(archs=True)]

    def stored(self) -> StoredStudy:
        """The study as stored now (what :func:`read_study` returns for it)."""
        return StoredStudy(self.study.study_name, self.url, tuple(self.names), tuple(self.directions),
                           tuple(self.constraint_names), dict(self.study.user_attrs),
                           tuple(self.rows(archs=True)))
