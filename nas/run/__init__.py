"""Running experiments: the pipeline of ``nas run`` (OFA or DARTS), ``nas search`` and
``nas supernet train``, each from one validated :class:`nas.experiment.Experiment`."""

from nas.run._commands import search_experiment, train_experiment_supernet
from nas.run._compare import compare_histories, seed_list
from nas.run._darts import DartsRunResult
from nas.run._pipeline import RunResult, run_experiment
from nas.run._seeds import SeedsResult, search_seeds
from nas.run._stages import StageCache, atomic_write_text, stable_hash

__all__ = [
    "DartsRunResult",
    "RunResult",
    "SeedsResult",
    "StageCache",
    "atomic_write_text",
    "compare_histories",
    "run_experiment",
    "search_experiment",
    "search_seeds",
    "seed_list",
    "stable_hash",
    "train_experiment_supernet",
]
