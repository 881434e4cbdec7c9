"""Conformance suite of the accuracy-predictor role, for registered predictors and your own.

Each check fits predictors on a small learnable task and raises ``AssertionError``
with a message saying which rule of :class:`predictors.AccuracyPredictor` failed.
This module does not need pytest; run it from any test::

    from predictors.testing import check_predictor

    def test_my_predictor_conforms():
        check_predictor(lambda space, seed: MyPredictor(space, seed=seed))

``make(space, seed)`` builds a fresh, unfitted predictor (registered, so that
``load_predictor`` can rebuild it). The default task is a smooth function of nb201's
encoding; pass :func:`learnable_task` of your own space otherwise. The project runs
:data:`PREDICTOR_CHECKS` over every predictor of ``predictors.PREDICTORS``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from predictors import AccuracyPredictor, PredictorError, kendall_tau, load_predictor, mae
from search_spaces import SearchSpace, get_space

__all__ = [
    "PREDICTOR_CHECKS",
    "LearnableTask",
    "PredictorFactory",
    "check_beats_constant",
    "check_determinism",
    "check_fit_predict",
    "check_predictor",
    "check_refit",
    "check_save_load",
    "learnable_task",
]

#: ``make(space, seed) -> AccuracyPredictor``: a fresh, unfitted predictor on ``space``.
PredictorFactory = Callable[[SearchSpace, int], AccuracyPredictor]

SEED = 3
MIN_TAU = 0.4        # Kendall tau on held-out archs the learnable task demands
MAX_MAE_RATIO = 0.9  # held-out error as a fraction of a constant (training mean) predictor's


def _expect(condition: bool, message: str) -> None:
    """An ``assert`` that ``python -O`` keeps."""
    if not condition:
        raise AssertionError(message)


@dataclass(frozen=True)
class LearnableTask:
    """Architectures with a learnable target, split into training and held-out parts."""

    space: SearchSpace
    train: list[Any]
    y_train: np.ndarray
    test: list[Any]
    y_test: np.ndarray


def learnable_task(space: SearchSpace | None = None, n_train: int = 100, n_test: int = 60,
                   seed: int = 0) -> LearnableTask:
    """``tanh`` of a random linear function of ``space.encode`` plus a little noise.

    Args:
        space: the search space (default nb201).
        n_train, n_test: sizes of the two parts (distinct samples of the space).
        seed: seed of the samples, the function and the noise.
    """
    space = space if space is not None else get_space("nb201")
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n_train + n_test)]
    x = space.encode_batch(archs)
    weights = rng.normal(size=x.shape[1])
    y = np.tanh(x @ weights / 4.0) + 0.05 * rng.normal(size=len(archs))
    return LearnableTask(space, archs[:n_train], y[:n_train], archs[n_train:], y[n_train:])


def _task(task: LearnableTask | None) -> LearnableTask:
    return task if task is not None else learnable_task()


def _fitted(make: PredictorFactory, task: LearnableTask, y: np.ndarray | None = None,
            seed: int = SEED) -> AccuracyPredictor:
    predictor = make(task.space, seed)
    out = predictor.fit(task.train, task.y_train if y is None else y)
    _expect(out is predictor, f"{type(predictor).__name__}.fit must return the predictor itself")
    return predictor


def check_fit_predict(make: PredictorFactory, task: LearnableTask | None = None) -> None:
    """``predict`` before ``fit`` is a :class:`PredictorError`; after it, ``(mean, std)``
    are finite float arrays of one value per architecture, ``std >= 0``; no archs, no values."""
    task = _task(task)
    predictor = make(task.space, SEED)
    _expect(isinstance(predictor, AccuracyPredictor), f"make() returned "
            f"{type(predictor).__name__}, not a predictors.AccuracyPredictor")
    try:
        predictor.predict(task.test[:2])
    except PredictorError:
        pass
    else:
        raise AssertionError("predict before fit must raise PredictorError")
    predictor = _fitted(make, task)
    mean, std = predictor.predict(task.test)
    for name, arr in (("mean", mean), ("std", std)):
        _expect(isinstance(arr, np.ndarray) and arr.shape == (len(task.test),),
                f"predict(archs) must return {name} of shape ({len(task.test)},), "
                f"got {getattr(arr, 'shape', type(arr).__name__)}")
        _expect(bool(np.all(np.isfinite(arr))), f"predict returned a non-finite {name}")
    _expect(bool(np.all(std >= 0)), f"predict returned a negative std: {std.min()}")
    empty = predictor.predict([])
    _expect(all(len(a) == 0 for a in empty), "predict([]) must return two empty arrays")


def check_determinism(make: PredictorFactory, task: LearnableTask | None = None) -> None:
    """The same seed and data give the same predictions."""
    task = _task(task)
    first = _fitted(make, task).predict(task.test)
    again = _fitted(make, task).predict(task.test)
    for name, a, b in zip(("mean", "std"), first, again, strict=True):
        _expect(np.allclose(a, b, rtol=1e-7, atol=1e-10), f"two predictors seeded {SEED} "
                f"fitted on the same data predict different {name}s "
                f"(largest difference {np.max(np.abs(a - b)):.3g})")


def check_save_load(make: PredictorFactory, task: LearnableTask | None = None) -> None:
    """``save`` writes a file of plain arrays (no pickle); ``load_predictor`` reads back
    a predictor of the same class with the same predictions."""
    task = _task(task)
    predictor = _fitted(make, task)
    with tempfile.TemporaryDirectory() as tmp:
        path = predictor.save(Path(tmp) / "predictor.npz")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = [data[key] for key in data.files]
        except ValueError as exc:
            raise AssertionError(f"saved predictor needs pickle to load: {exc}") from None
        loaded = load_predictor(path, task.space)
    _expect(all(isinstance(a, np.ndarray) for a in arrays), "saved predictor holds non-arrays")
    _expect(type(loaded) is type(predictor), f"load_predictor returned "
            f"{type(loaded).__name__}, not {type(predictor).__name__}")
    for name, a, b in zip(("mean", "std"), predictor.predict(task.test), loaded.predict(task.test),
                          strict=True):
        _expect(np.allclose(a, b, rtol=1e-9, atol=1e-12), f"the loaded predictor predicts "
                f"different {name}s (largest difference {np.max(np.abs(a - b)):.3g})")


def check_beats_constant(make: PredictorFactory, task: LearnableTask | None = None) -> None:
    """On held-out archs of a learnable target: Kendall tau >= ``MIN_TAU`` (0.4) and an
    error below ``MAX_MAE_RATIO`` (0.9) of a constant predictor's (the training mean)."""
    task = _task(task)
    mean, _ = _fitted(make, task).predict(task.test)
    tau, error = kendall_tau(task.y_test, mean), mae(task.y_test, mean)
    constant = mae(task.y_test, np.full(len(task.test), task.y_train.mean()))
    _expect(tau >= MIN_TAU, f"held-out Kendall tau {tau:.3f} < {MIN_TAU} on a learnable target")
    _expect(error < MAX_MAE_RATIO * constant, f"held-out error {error:.4f} is not below "
            f"{MAX_MAE_RATIO} x the constant predictor's {constant:.4f}")


def check_refit(make: PredictorFactory, task: LearnableTask | None = None) -> None:
    """``fit`` again replaces the previous fit: a refitted predictor predicts as one
    fitted only on the new data."""
    task = _task(task)
    refitted = _fitted(make, task)
    refitted.fit(task.train, -task.y_train)
    fresh = _fitted(make, task, -task.y_train)
    a, b = refitted.predict(task.test)[0], fresh.predict(task.test)[0]
    _expect(np.allclose(a, b, rtol=1e-7, atol=1e-10), "a refitted predictor does not predict "
            f"as a fresh one fitted on the new data (largest difference {np.max(np.abs(a - b)):.3g})")
    _expect(kendall_tau(-task.y_test, a) > 0, "a predictor refitted on negated targets still "
            "ranks as before")


#: Every check by name, to parametrise a test over (predictor, check) pairs.
PREDICTOR_CHECKS: dict[str, Callable[[PredictorFactory, LearnableTask | None], None]] = {
    "fit_predict": check_fit_predict,
    "determinism": check_determinism,
    "save_load": check_save_load,
    "beats_constant": check_beats_constant,
    "refit": check_refit,
}


def check_predictor(make: PredictorFactory, task: LearnableTask | None = None) -> None:
    """Run every check of :data:`PREDICTOR_CHECKS` on the predictors ``make`` builds.

    Args:
        make: ``make(space, seed) -> AccuracyPredictor``, a fresh unfitted one each call.
        task: the data (default :func:`learnable_task` on nb201).

    Raises:
        AssertionError: naming the rule the predictor breaks.
    """
    task = _task(task)
    for check in PREDICTOR_CHECKS.values():
        check(make, task)
