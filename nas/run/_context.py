"""What the stages of one run share: a typed context, built whole before the first stage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from nas.config import expand_env, redact
from nas.experiment import Experiment
from nas.run._stages import StageCache
from search_spaces import Architecture, SearchSpace

if TYPE_CHECKING:
    from nas.search import Problem
    from supernets.data import DataSplits

__all__ = ["Logger", "RunContext", "study_storage"]


def study_storage(storage: str, run_dir: Path) -> str:
    """The study's SQLAlchemy URL: a relative ``search.storage`` is a SQLite file in the run
    folder, a URL (``postgresql://...``) stays as it is."""
    from nas.storage import storage_url

    storage = expand_env(storage, "search.storage")  # ${VAR}: read now, never written
    return storage_url(storage if "://" in storage else str((run_dir / storage).resolve()))


class Logger:
    """Writes one time-stamped line per event to ``run.log`` (and prints it when ``echo``)."""

    def __init__(self, path: Path, echo: bool) -> None:
        self.path, self.echo = path, echo

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        line = redact(line)
        with self.path.open("a") as fh:
            fh.write(f"{stamp} {line}\n")
        if self.echo:
            print(line, flush=True)


@dataclass(frozen=True)
class RunContext:
    """The inputs every stage of a run reads.

    Attributes:
        exp: the validated experiment.
        run_dir: the run folder.
        cache: records finished stages (``.stages/``).
        log: one line per stage.
        progress: progress bars (None: on a terminal).
        data: the data splits.
        space: the search space.
        make_evaluator: builds each search's batch evaluator from its problem (None: in
            this process).
        runtime: the ``supernets.Runtime`` of ``exp.compute`` in this process (device,
            precision, threads) for the stages that run networks (None: the CPU).
    """

    exp: Experiment
    run_dir: Path
    cache: StageCache
    log: Callable[[str], None]
    progress: bool | None
    data: DataSplits
    space: SearchSpace
    make_evaluator: Callable[[Problem], Any] | None = None
    runtime: Any = None

    @property
    def device(self) -> Any:
        """The ``torch.device`` the run's networks run on (the CPU without a runtime)."""
        import torch

        return self.runtime.device if self.runtime is not None else torch.device("cpu")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.input_shape)

    @property
    def seed(self) -> int:
        return self.exp.seed

    def bar(self, iterable: Iterable[Any], **kw: Any) -> Iterable[Any]:
        return tqdm(iterable, disable=None if self.progress is None else not self.progress, **kw)

    def distinct_archs(self, n: int, seed_offset: int) -> list[Architecture]:
        """``n`` distinct random architectures, seeded by ``(seed, seed_offset)``."""
        rng = np.random.default_rng([self.seed, seed_offset])
        archs: dict[str, Architecture] = {}
        for _ in range(50 * n):
            arch = self.space.sample(rng)
            archs.setdefault(arch.key, arch)
            if len(archs) == n:
                break
        return list(archs.values())
