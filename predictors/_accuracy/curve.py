"""Learning curves: rank quality of predictors against the number of training archs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from predictors._metrics import evaluate_predictor
from predictors.errors import PredictorError

__all__ = ["learning_curve"]

PredictorFactory = Callable[[int], Any]
"""``factory(seed) -> unfitted predictor``."""


def learning_curve(factories: dict[str, PredictorFactory], archs: Sequence[Any], y: Any,
                   sizes: Sequence[int] = (25, 50, 100, 200), repeats: int = 3,
                   test_frac: float = 0.3, seed: int = 0,
                   progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Fit each predictor on growing random training subsets; score on a fixed held-out set.

    Args:
        factories: ``{label: factory(seed) -> predictor}``; the predictor is fitted
            with ``fit(archs, y)`` (a factory may pretrain it first).
        archs, y: the labelled data set.
        sizes: training-set sizes; sizes larger than the training pool are skipped.
        repeats: random training subsets per size (different seeds).
        test_frac: fraction of the data held out for testing (same for all).
        seed: seed of the split and of the subsets.
        progress: optional callback receiving one line per fitted model.

    Returns:
        Rows ``{"model", "n_train", "repeat", "kendall_tau", "spearman", "mae"}``.
    """
    archs = list(archs)
    y = np.asarray(y, float)
    if len(archs) != y.size:
        raise PredictorError(f"learning_curve got {len(archs)} archs but {y.size} targets")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(archs))
    n_test = max(2, int(round(test_frac * len(archs))))
    test, pool = order[:n_test], order[n_test:]
    test_archs, test_y = [archs[i] for i in test], y[test]
    rows = []
    for n in sizes:
        if n > pool.size:
            continue
        for r in range(repeats):
            subset = np.random.default_rng([seed, n, r]).choice(pool, n, replace=False)
            for label, factory in factories.items():
                predictor = factory(seed + r)
                predictor.fit([archs[i] for i in subset], y[subset])
                scores = evaluate_predictor(predictor, test_archs, test_y)
                rows.append({"model": label, "n_train": int(n), "repeat": r, **scores})
                if progress is not None:
                    progress(f"{label} n={n} repeat={r} tau={scores['kendall_tau']:.3f}")
    return rows
