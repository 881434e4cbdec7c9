"""Running experiments: the pipeline of ``nas run`` (OFA or DARTS), ``nas search`` and
``nas supernet train``, each from one validated :class:`nas.experiment.Experiment`."""

from nas.run._commands import search_experiment, train_experiment_supernet
from nas.run._darts import DartsRunResult
from nas.run._pipeline import RunResult, run_experiment
from nas.run._stages import StageCache, atomic_write_text, stable_hash

__all__ = [
    "DartsRunResult",
    "RunResult",
    "StageCache",
    "atomic_write_text",
    "run_experiment",
    "search_experiment",
    "stable_hash",
    "train_experiment_supernet",
]
