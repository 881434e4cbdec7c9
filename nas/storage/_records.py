"""The records of a study: :class:`Record`, :class:`StoredStudy` and their stored forms.

One evaluation is stored as one row of the evaluation log (:mod:`nas.storage._log`);
studies written before the log existed (one COMPLETE Optuna trial per evaluation) are
still read, from their trials. Optuna trials mirrored for the dashboard carry the same
user attrs as those older trials (see :func:`trial_attrs`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.storage._log import LogRow, decode_payload, encode_payload
from search_spaces import Architecture

__all__ = ["Record", "StoredStudy"]

_MEASURE = "measure."


@dataclass(frozen=True)
class Record:
    """One evaluation as stored: raw objective values and Optuna-style constraint values.

    Attributes:
        arch: the architecture.
        values: raw objective values, in the problem's objective order.
        constraints: one Optuna-style value per constraint (``<= 0`` feasible).
        violation: total relative violation, 0 when feasible.
        batch, index: the ask that proposed it and its position there (first-seen); for a
            study written by workers (:func:`nas.search.run_worker`), ``batch`` is the
            order in which the architecture was claimed and ``index`` is 0.
        trial: its number in the study (order of storing; -1 before it is stored).
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

    def payload(self) -> str:
        """The log's ``payload`` column for this record."""
        return encode_payload(self.values, self.constraints, self.violation, self.measures)

    def row(self, trial: int) -> dict[str, Any]:
        """The log's columns for this record stored as ``trial``."""
        return {"arch_key": self.arch.key, "batch": self.batch, "idx": self.index,
                "trial": trial, "arch": self.arch.to_json(), "payload": self.payload()}


@dataclass(frozen=True)
class StoredStudy:
    """A search study as stored: objectives, constraints, provenance and evaluations.

    Attributes:
        study_name: the study's name.
        storage: its SQLAlchemy URL (``None`` in memory).
        names, directions: the objectives.
        constraints: the constraints as strings (``"latency_ms <= 15"``).
        provenance: the study's user attrs (see :mod:`nas.storage._study`).
        rows: the evaluations as compact rows ``(arch_key, batch, index, trial, payload,
            arch JSON)`` in (batch, index) order; :attr:`records` and :meth:`columns`
            read them.
    """

    study_name: str
    storage: str | None
    names: tuple[str, ...]
    directions: tuple[str, ...]
    constraints: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    rows: tuple[LogRow, ...] = field(default=(), repr=False)

    @cached_property
    def records(self) -> tuple[Record, ...]:
        """One :class:`Record` per distinct evaluated architecture, in (batch, index) order."""
        return tuple(record_of_row(row) for row in self.rows)

    def columns(self) -> dict[str, list[Any]]:
        """The evaluations column by column, without building architectures: ``trial``,
        ``batch``, ``index``, ``arch_key``, ``arch`` (canonical JSON), each objective, each
        constraint, each measure (by name) and ``violation``."""
        keys, batches, indexes, trials, payloads, archs = zip(*self.rows) if self.rows else [()] * 6
        out: dict[str, list[Any]] = {"trial": list(trials), "batch": list(batches),
                                     "index": list(indexes), "arch_key": list(keys),
                                     "arch": list(archs)}
        decoded = [decode_payload(p) for p in payloads]
        for i, name in enumerate(self.names):
            out[name] = [d[0][i] for d in decoded]
        for i, name in enumerate(self.constraints):
            out[name] = [d[1][i] for d in decoded]
        measures: dict[str, list[float]] = {}
        for row, d in enumerate(decoded):
            for name, value in d[3]:
                measures.setdefault(name, [float("nan")] * len(decoded))[row] = value
        out.update(sorted(measures.items()))
        out["violation"] = [d[2] for d in decoded]
        return out


def record_of_row(row: LogRow, arch: Architecture | None = None) -> Record:
    """The :class:`Record` of a log row (its arch parsed unless given)."""
    key, batch, index, trial, payload, arch_json = row
    values, constraints, violation, measures = decode_payload(payload)
    return Record(arch if arch is not None else Architecture.from_json(arch_json),
                  tuple(values), tuple(constraints), float(violation), int(batch), int(index),
                  int(trial), tuple((str(n), float(v)) for n, v in measures))


def _label(value: Any) -> Any:
    """Optuna categorical choices must be scalars: tuples become ``"a,b"`` like ``suggest``."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def trial_attrs(record: Record) -> dict[str, Any]:
    """User attrs of a trial that stores ``record`` (mirrored or an Optuna engine's)."""
    attrs = {"arch": record.arch.to_json(), "arch_key": record.arch.key,
             "batch": record.batch, "index": record.index, "violation": record.violation}
    attrs.update({f"{_MEASURE}{name}": value for name, value in record.measures})
    return attrs


def trial_params(record: Record, choices: dict[str, Sequence[Any]]) -> tuple[dict, dict]:
    """Decisions as Optuna categorical params and distributions (names as ``space.suggest``)."""
    params = {path: _label(value) for path, value in record.arch.items()}
    dists = {path: optuna.distributions.CategoricalDistribution([_label(c) for c in options])
             for path, options in choices.items()}
    return params, dists


def legacy_rows(study: optuna.Study, constraint_names: Sequence[str]) -> Iterator[LogRow]:
    """Log rows of a study stored as one COMPLETE trial per evaluation (before the log)."""
    out, seen = [], set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if "arch" not in attrs or attrs.get("duplicate_of") is not None or attrs["arch_key"] in seen:
            continue
        seen.add(attrs["arch_key"])
        out.append(_legacy_row(trial, constraint_names))
    out.sort(key=lambda r: (r[1], r[2], r[3]))
    yield from out


def _legacy_row(trial: FrozenTrial, constraint_names: Sequence[str]) -> LogRow:
    attrs, cons = trial.user_attrs, trial.constraints
    measures = [(k[len(_MEASURE):], float(v)) for k, v in sorted(attrs.items())
                if k.startswith(_MEASURE)]
    payload = encode_payload([float(v) for v in trial.values],
                             [float(cons[n]) for n in constraint_names],
                             float(attrs["violation"]), measures)
    return (attrs["arch_key"], int(attrs["batch"]), int(attrs["index"]), trial.number, payload,
            attrs["arch"])
