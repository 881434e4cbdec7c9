"""Search studies in an Optuna RDB storage: one trial per evaluation, resumable.

Layout of a study (all of it visible in optuna-dashboard):

* study directions and metric names = the problem's objectives;
* study user attrs: provenance (space name and fingerprint, objectives with their
  sources' metadata such as a latency table's fingerprint or a predictor's id,
  constraints, engine and its settings, seed, caller's extras);
* one COMPLETE trial per evaluated architecture: ``params`` = the architecture's
  decisions as categorical parameters (the same names :meth:`SearchSpace.suggest`
  uses), ``values`` = raw objective values, Optuna constraints = one value per
  constraint (``<= 0`` feasible), user attrs ``arch`` (JSON), ``arch_key``,
  ``batch``, ``index``, ``violation`` and each measure's value;
* study system attr ``nas:engine_state``: the engine's ``state_dict`` after the
  last completed batch, with the batch number and the evaluation count.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from nas.errors import StorageError
from search_spaces import Architecture, SearchSpace

# Our progress bars and stage summaries replace Optuna's per-study INFO lines.
optuna.logging.set_verbosity(optuna.logging.WARNING)

__all__ = ["Record", "StudySession", "storage_url"]

log = logging.getLogger(__name__)

ENGINE_STATE_KEY = "nas:engine_state"
PROVENANCE_KEY = "nas:provenance"


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


def storage_url(storage: str | None) -> str | None:
    """A SQLAlchemy URL; a bare path means a SQLite file (``runs/s.db`` -> ``sqlite:///runs/s.db``)."""
    if storage is None or "://" in storage:
        return storage
    return f"sqlite:///{storage}"


@dataclass(frozen=True)
class Record:
    """One evaluation as stored: raw objective values and Optuna-style constraint values."""

    arch: Architecture
    values: tuple[float, ...]
    constraints: tuple[float, ...]
    violation: float
    batch: int
    index: int
    trial: int = -1
    measures: tuple[tuple[str, float], ...] = ()


def _label(value: Any) -> Any:
    """Optuna categorical choices must be scalars: tuples become ``"a,b"`` like ``suggest``."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


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
        self.names, self.constraint_names = list(names), list(constraint_names)
        url = storage_url(storage)
        if url is not None and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.storage = (optuna.storages.InMemoryStorage() if url is None
                            else optuna.storages.get_storage(url))
        except Exception as exc:  # SQLAlchemy raises many kinds; report one line
            raise StorageError(f"cannot open storage {url!r}: {exc}") from None
        if url is not None and url.startswith("sqlite:"):
            _sqlite_wal(self.storage)
        existing = {s.study_name for s in self.storage.get_all_studies()}
        if study_name in existing and not resume:
            raise StorageError(f"study {study_name!r} already exists in {url}; pass resume=True "
                               f"(CLI: --resume) to continue it, or choose another study name")
        self.resumed = study_name in existing
        self.study = optuna.create_study(storage=self.storage, study_name=study_name,
                                         directions=directions, load_if_exists=True)
        self.study_id = self.storage.get_study_id_from_name(study_name)
        if [d.name.lower() for d in self.study.directions] != list(directions):
            raise StorageError(f"study {study_name!r} has directions "
                               f"{[d.name.lower() for d in self.study.directions]}, "
                               f"the problem has {directions}")
        provenance = dict(provenance or {})
        if self.resumed:
            self._check_provenance(provenance)
        else:
            with warnings.catch_warnings():  # experimental since 3.2, stable in use
                warnings.simplefilter("ignore")
                self.study.set_metric_names(self.names)
            for key, value in provenance.items():
                self.study.set_user_attr(key, value)
        self._choices: dict[str, tuple] = {}

    def _check_provenance(self, provenance: dict[str, Any]) -> None:
        stored = dict(self.study.user_attrs)

        def core(objectives: list[dict[str, Any]]) -> list[tuple]:
            return [(o.get("name"), o.get("direction"), o.get("type")) for o in objectives]

        provenance = dict(provenance)
        for key in ("objectives", "measures"):
            if key in stored and key in provenance:
                if stored[key] != provenance[key]:
                    log.warning("resuming study %r: the %s' sources changed (%s -> %s)",
                                self.study.study_name, key, stored[key], provenance[key])
                stored[key], provenance[key] = core(stored[key]), core(provenance[key])
        for key in ("space", "space_fingerprint", "objectives", "measures", "constraints", "engine"):
            if key in provenance and key in stored and stored[key] != provenance[key]:
                raise StorageError(
                    f"cannot resume study {self.study.study_name!r}: its {key} is {stored[key]!r} "
                    f"but this search has {provenance[key]!r}")

    # writing -----------------------------------------------------------------------
    def params(self, arch: Architecture) -> tuple[dict[str, Any], dict[str, CategoricalDistribution]]:
        """Decisions as Optuna categorical params (names and labels as ``space.suggest``)."""
        choices = self.space.choices(arch)
        params = {path: _label(value) for path, value in arch.items()}
        dists = {path: CategoricalDistribution([_label(c) for c in options])
                 for path, options in choices.items()}
        return params, dists

    def user_attrs(self, record: Record) -> dict[str, Any]:
        attrs = {"arch": record.arch.to_json(), "arch_key": record.arch.key,
                 "batch": record.batch, "index": record.index, "violation": record.violation}
        attrs.update({f"measure.{name}": value for name, value in record.measures})
        return attrs

    def constraints(self, record: Record) -> dict[str, float]:
        return dict(zip(self.constraint_names, record.constraints, strict=True))

    def add(self, record: Record) -> None:
        """Write one evaluation as one COMPLETE trial (a single storage call: atomic)."""
        params, dists = self.params(record.arch)
        trial = optuna.trial.create_trial(
            values=list(record.values), params=params, distributions=dists,
            user_attrs=self.user_attrs(record), constraints=self.constraints(record) or None)
        self.study.add_trial(trial)

    def save_engine_state(self, batch: int, evaluations: int, state: dict[str, Any]) -> None:
        payload = json.dumps({"batch": batch, "evaluations": evaluations, "engine": state})
        self.storage.set_study_system_attr(self.study_id, ENGINE_STATE_KEY, payload)

    # reading -----------------------------------------------------------------------
    def engine_state(self) -> dict[str, Any] | None:
        raw = self.storage.get_study_system_attrs(self.study_id).get(ENGINE_STATE_KEY)
        return None if raw is None else json.loads(raw)

    def fail_running(self) -> int:
        """Mark trials left RUNNING by a killed process as FAIL (they were never scored)."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in running:
            self.study.tell(trial.number, state=TrialState.FAIL)
        return len(running)

    def records(self) -> list[Record]:
        """Every stored evaluation, in (batch, index) order; repeats of an arch skipped."""
        out, seen = [], set()
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            attrs = trial.user_attrs
            if "arch" not in attrs or attrs.get("duplicate_of") is not None:
                continue
            arch = Architecture.from_json(attrs["arch"])
            if arch.key in seen:
                continue
            seen.add(arch.key)
            cons = trial.constraints
            measures = tuple((k[len("measure."):], float(v)) for k, v in sorted(attrs.items())
                             if k.startswith("measure."))
            out.append(Record(arch, tuple(float(v) for v in trial.values),
                              tuple(float(cons[n]) for n in self.constraint_names),
                              float(attrs["violation"]), int(attrs["batch"]), int(attrs["index"]),
                              trial.number, measures))
        out.sort(key=lambda r: (r.batch, r.index, r.trial))
        return out


def records_arrays(records: list[Record], m: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.array([r.values for r in records], dtype=float).reshape(len(records), m)
    cons = np.array([r.constraints for r in records], dtype=float).reshape(len(records), c)
    viol = np.array([r.violation for r in records], dtype=float)
    return values, cons, viol
