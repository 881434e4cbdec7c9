"""Child process of the resume test: runs (or resumes) a stored search on nb201."""

from __future__ import annotations

import sys
import time

from nas import testing
from nas.search import Problem, get_engine, run_search
from search_spaces import get_space


def toy_problem() -> Problem:
    """nas.testing's toy problem on nb201, with the bound (``cost <= 3``) these tests use."""
    return testing.toy_problem(get_space("nb201"), bound=3.0)


def main(engine: str, storage: str, budget: int, resume: bool, slow: float = 0.0) -> None:
    problem = toy_problem()
    if slow:  # give the parent time to kill us mid-search
        objective = problem.objectives[1]
        fn = objective.fn
        objective.fn = lambda archs: (time.sleep(slow), fn(archs))[1]
    result = run_search(problem, get_engine(engine, problem.space, seed=3, population_size=10),
                        budget=budget, batch_size=4, storage=storage, study_name="kill",
                        resume=resume, progress=False)
    print(len(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume", float(sys.argv[5]))
