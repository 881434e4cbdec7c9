"""Completed trials written to an Optuna RDB study in one transaction (for the dashboard).

``study.add_trial`` costs tens of milliseconds per trial here (one query per parameter
to check its distribution against earlier trials), too slow to mirror even a front of
a few hundred architectures at every checkpoint. Trials validated by
``optuna.trial.create_trial`` are instead inserted with SQLAlchemy Core into Optuna's
own tables (their definitions are taken from Optuna's models, never copied), one
transaction for all of them. Only a known schema version is written so; otherwise, or
for any other storage, the caller falls back to ``add_trial``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import distribution_to_json
from optuna.trial import FrozenTrial

__all__ = ["insert_trials", "mirrored_keys"]

#: Optuna RDB schema versions whose trial tables this module writes.
KNOWN_SCHEMAS = {12}


def _backend(storage: Any) -> Any:
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def insert_trials(storage: Any, study_id: int, trials: Sequence[FrozenTrial]) -> bool:
    """Insert finished ``trials`` into ``study_id``; ``False`` (nothing written) where this
    storage or its schema is not one this module knows."""
    if not trials:
        return True
    backend = _backend(storage)
    if backend is None:
        return False
    try:
        from optuna.storages._rdb import models
    except ImportError:
        return False
    if getattr(models, "SCHEMA_VERSION", None) not in KNOWN_SCHEMAS:
        return False
    import sqlalchemy as sa

    t_trials, t_values = models.TrialModel.__table__, models.TrialValueModel.__table__
    with backend.engine.begin() as conn:
        # One writer per study (its owner lock), so numbering by count is race free.
        number = conn.execute(sa.select(sa.func.count()).select_from(t_trials)
                              .where(t_trials.c.study_id == study_id)).scalar_one()
        params, values, user, system = [], [], [], []
        for offset, trial in enumerate(trials):
            trial_id = conn.execute(t_trials.insert().values(
                number=number + offset, study_id=study_id, state=trial.state,
                datetime_start=trial.datetime_start, datetime_complete=trial.datetime_complete)
            ).inserted_primary_key[0]
            for name, value in trial.params.items():
                dist = trial.distributions[name]
                params.append({"trial_id": trial_id, "param_name": name,
                               "param_value": dist.to_internal_repr(value),
                               "distribution_json": distribution_to_json(dist)})
            for objective, value in enumerate(trial.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                values.append({"trial_id": trial_id, "objective": objective, "value": stored,
                               "value_type": kind})
            user += [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                     for k, v in trial.user_attrs.items()]
            system += [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                       for k, v in trial.system_attrs.items()]
        for table, rows in ((models.TrialParamModel.__table__, params), (t_values, values),
                            (models.TrialUserAttributeModel.__table__, user),
                            (models.TrialSystemAttributeModel.__table__, system)):
            if rows:
                conn.execute(table.insert(), rows)
    return True


def mirrored_keys(storage: Any, study_id: int) -> set[str] | None:
    """The ``arch_key`` user attrs of the study's trials, read with one query (``None``
    where this storage or its schema is not one this module knows)."""
    backend = _backend(storage)
    if backend is None:
        return None
    try:
        from optuna.storages._rdb import models
    except ImportError:
        return None
    if getattr(models, "SCHEMA_VERSION", None) not in KNOWN_SCHEMAS:
        return None
    import sqlalchemy as sa

    trials, attrs = models.TrialModel.__table__, models.TrialUserAttributeModel.__table__
    query = (sa.select(attrs.c.value_json).join(trials, trials.c.trial_id == attrs.c.trial_id)
             .where((trials.c.study_id == study_id) & (attrs.c.key == "arch_key")))
    with backend.engine.connect() as conn:
        return {json.loads(value) for (value,) in conn.execute(query)}
