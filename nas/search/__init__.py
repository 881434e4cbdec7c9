"""Search: problems, constraints, engines (ask/tell), Pareto tools and the search loop.

Example:
    >>> from nas.search import Problem, get_engine, run_search        # doctest: +SKIP
    >>> problem = Problem(space, [Params(space), acc], ["params <= 2e6"])
    >>> result = run_search(problem, get_engine("nsga2", space, seed=0), budget=500,
    ...                     storage="runs/search.db", study_name="demo")
    >>> result.front, result.hypervolume([2e6, 0.0])       # DataFrames, numbers
    >>> best = result.best("accuracy")                         # an EvaluatedArch
    >>> best.arch, best["accuracy"], best["params"]            # an Architecture, its values
"""

from nas.search._base import ENGINES, SearchEngine, get_engine, list_engines, register_engine
from nas.search._budget import default_batch_size, default_population, make_engine
from nas.search._engines import NSGA2, RandomSearch, RegularizedEvolution
from nas.search._guided import PredictorGuided, guided_defaults
from nas.search._optuna import OptunaEngine, OptunaGP, OptunaNSGA2, OptunaTPE
from nas.search._pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    non_dominated_sort,
    pareto_mask,
)
from nas.search._problem import Constraint, Evaluation, Problem
from nas.search._result import EvaluatedArch, SearchResult, load_result
from nas.search._runner import Evaluator, evaluate_batch, run_search
from nas.search._worker import run_worker

__all__ = [
    "ENGINES",
    "NSGA2",
    "Constraint",
    "EvaluatedArch",
    "Evaluation",
    "Evaluator",
    "OptunaEngine",
    "OptunaGP",
    "OptunaNSGA2",
    "OptunaTPE",
    "PredictorGuided",
    "Problem",
    "RandomSearch",
    "RegularizedEvolution",
    "SearchEngine",
    "SearchResult",
    "crowding_distance",
    "default_batch_size",
    "default_population",
    "dominates",
    "evaluate_batch",
    "get_engine",
    "guided_defaults",
    "hypervolume",
    "list_engines",
    "make_engine",
    "load_result",
    "non_dominated_sort",
    "pareto_mask",
    "register_engine",
    "run_search",
    "run_worker",
]
