"""``nas run``: one experiment file drives the whole hardware-aware pipeline."""

from nas.run._config import ExperimentConfig, load_experiment, validate_components
from nas.run._export import export_subnet, load_exported
from nas.run._pipeline import RunResult, run_experiment
from nas.run._stages import StageCache, stable_hash

__all__ = [
    "ExperimentConfig",
    "RunResult",
    "StageCache",
    "export_subnet",
    "load_exported",
    "load_experiment",
    "run_experiment",
    "stable_hash",
    "validate_components",
]
