"""``nas sweep``: Ray Tune sweeps over experiments, and Ray evaluation inside a search.

A sweep file varies dotted keys of a base experiment file (the one schema of
``nas.experiment``; grid and sampled values) and says which command its trials run
(``run`` or ``search``); each combination is one Ray Tune trial that runs the whole
experiment in its own folder, with retries of failed trials and resume
of a stopped sweep. Ray is imported only when a sweep runs.

Example:
    >>> from nas.sweep import run_sweep                                  # doctest: +SKIP
    >>> result = run_sweep("experiments/ray_sweep.yaml")
    >>> result.table[["trial", "status", "best_test_accuracy"]]
"""

from nas.sweep._config import (
    RaySection,
    ResourcesSection,
    SweepConfig,
    TrialSpec,
    expand_trials,
    load_sweep,
)
from nas.sweep._evaluator import RayEvaluator
from nas.sweep._runner import SweepResult, collect_results, ray_session, run_sweep
from nas.sweep._trial import run_trial, tune_trainable

__all__ = [
    "RayEvaluator",
    "RaySection",
    "ResourcesSection",
    "SweepConfig",
    "SweepResult",
    "TrialSpec",
    "collect_results",
    "expand_trials",
    "load_sweep",
    "ray_session",
    "run_sweep",
    "run_trial",
    "tune_trainable",
]
