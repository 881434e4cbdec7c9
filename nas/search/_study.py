"""Read a stored search back as a :class:`SearchResult` (for ``nas front`` and notebooks)."""

from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

from nas.errors import StorageError
from nas.search._result import SearchResult
from nas.storage import storage_url

__all__ = ["history_frame", "load_result"]


def history_frame(study: optuna.Study, names: list[str], constraints: list[str]) -> pd.DataFrame:
    """One row per distinct evaluated architecture, in (batch, index) order."""
    rows, seen = [], set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if "arch" not in attrs or attrs.get("duplicate_of") is not None:
            continue
        if attrs["arch_key"] in seen:
            continue
        seen.add(attrs["arch_key"])
        row = {"trial": trial.number, "batch": attrs["batch"], "index": attrs["index"],
               "arch_key": attrs["arch_key"], "arch": attrs["arch"]}
        row.update(zip(names, trial.values, strict=True))
        cons = trial.constraints
        row.update({c: cons.get(c) for c in constraints})
        row.update({k[len("measure."):]: v for k, v in attrs.items() if k.startswith("measure.")})
        row["violation"] = float(attrs["violation"])
        row["feasible"] = row["violation"] <= 0
        rows.append(row)
    base = ["trial", "batch", "index", "arch_key", "arch", *names, *constraints]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=[*base, "violation", "feasible"])
    frame = frame.sort_values(["batch", "index", "trial"], kind="stable")
    extra = [c for c in frame.columns if c not in base and c not in ("violation", "feasible")]
    return frame[[*base, *extra, "violation", "feasible"]].reset_index(drop=True)


def load_result(study_name: str, storage: str) -> SearchResult:
    """Open a stored search study and return its history, front and metadata.

    Raises:
        StorageError: the storage cannot be opened or holds no study of that name
            (the message lists the studies it holds).
    """
    url = storage_url(storage)
    try:
        store = optuna.storages.get_storage(url)
    except Exception as exc:
        raise StorageError(f"cannot open storage {url!r}: {exc}") from None
    names = [s.study_name for s in store.get_all_studies()]
    if study_name not in names:
        raise StorageError(f"no study {study_name!r} in {url}; studies: "
                           f"{', '.join(sorted(names)) or '(none)'}")
    study = optuna.load_study(study_name=study_name, storage=store)
    metric_names = study.metric_names or [f"value{i}" for i in range(len(study.directions))]
    directions = [d.name.lower() for d in study.directions]
    constraints = list(study.user_attrs.get("constraints", []))
    frame = history_frame(study, metric_names, constraints)
    return SearchResult(frame, metric_names, directions, constraints, study_name, url,
                        dict(study.user_attrs))
