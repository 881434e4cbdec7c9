"""Child process of the writers tests: one worker of a shared study on nb201.

Usage: ``_worker_child.py STORAGE BUDGET SEED SLOW EVENTS_FILE``. Every architecture it
evaluates is appended to EVENTS_FILE (``pid key`` lines) before its evaluation ends, so
the parent can count evaluations, including those of a worker killed mid-batch.
"""

from __future__ import annotations

import os
import sys
import time

from _resume_child import toy_problem

from nas.search import evaluate_batch, get_engine
from nas.search._worker import run_worker


def main(storage: str, budget: int, seed: int, slow: float, events: str) -> None:
    problem = toy_problem()

    def evaluator(archs):
        with open(events, "a") as out:
            out.write("".join(f"{os.getpid()} {a.key}\n" for a in archs))
        time.sleep(slow)  # the parent kills one worker here, mid-batch
        return evaluate_batch(problem, archs)

    engine = get_engine("evolution", problem.space, seed=seed, population_size=10)
    stored = run_worker(problem, engine, budget, storage=storage, study_name="shared",
                        batch_size=6, stale_after=1.5, progress=False, evaluator=evaluator)
    print(stored, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
