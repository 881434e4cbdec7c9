"""Hardware-aware NAS: objectives, search engines, storage, experiments, CLI and Python API.

Names are imported on first use (PEP 562), so that ``import nas`` (and the ``nas``
command line, whose ``--help`` must start in well under a second) does not import
torch; ``from nas import run_search`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import Any

from nas.errors import ConfigError, NasError, ObjectiveError, SearchError, StorageError, SweepError

_LAZY = {
    **dict.fromkeys(("CallableObjective", "Flops", "MeasuredLatency", "Objective", "Params",
                     "PredictedAccuracy", "SupernetAccuracy", "TableLatency", "TabularObjective",
                     "ZeroCostScore"), "nas.objectives"),
    **dict.fromkeys(("Constraint", "Problem", "SearchEngine", "SearchResult", "get_engine",
                     "hypervolume", "list_engines", "load_result", "non_dominated_sort",
                     "register_engine", "run_search"), "nas.search"),
    **dict.fromkeys(("Experiment", "load_experiment"), "nas.experiment"),
    **dict.fromkeys(("export_subnet", "load_exported"), "nas.export"),
}

__all__ = [
    "CallableObjective",
    "ConfigError",
    "Constraint",
    "Experiment",
    "Flops",
    "MeasuredLatency",
    "NasError",
    "Objective",
    "ObjectiveError",
    "Params",
    "PredictedAccuracy",
    "Problem",
    "SearchEngine",
    "SearchError",
    "SearchResult",
    "StorageError",
    "SupernetAccuracy",
    "SweepError",
    "TableLatency",
    "TabularObjective",
    "ZeroCostScore",
    "export_subnet",
    "get_engine",
    "hypervolume",
    "list_engines",
    "load_experiment",
    "load_exported",
    "load_result",
    "non_dominated_sort",
    "register_engine",
    "run_search",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from nas.manifest import version

        return version()
    raise AttributeError(f"module 'nas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
