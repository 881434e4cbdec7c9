"""The `AccuracyPredictor` interface, its safe file format and the predictor registry."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from predictors._features import ArchFeaturizer
from predictors.errors import PredictorError
from search_spaces import Registry, SearchSpace

__all__ = ["PREDICTORS", "AccuracyPredictor", "get_predictor", "list_predictors", "load_predictor",
           "register_predictor"]

FORMAT_VERSION = 1
_META = "__meta__"


class AccuracyPredictor(ABC):
    """Predicts a scalar quality (e.g. accuracy) of architectures from their features.

    Contract:
        * ``fit(archs, y)`` replaces any previous fit; it may be called again with
          more data. Targets are standardised internally.
        * ``predict(archs)`` returns ``(mean, std)``: two float arrays of
          ``len(archs)``; ``std`` is the model's uncertainty (ensemble spread,
          posterior std), never negative.
        * Same seed, same data: same predictions (single-threaded torch).
        * ``save(path)`` writes one ``.npz`` file holding arrays and a JSON
          header (no pickle); ``AccuracyPredictor.load(path, space)`` reads it
          back and refuses a space whose grammar fingerprint differs.

    Subclasses implement ``_fit``, ``_predict``, ``hparams`` and the array state
    (``_arrays`` / ``_set_arrays``), and are registered with
    :func:`register_predictor`; :func:`predictors.testing.check_predictor` checks one
    against this contract.

    Args:
        space: the search space of the architectures.
        graph_features: append graph features of ``space.graph`` to ``space.encode``.
        encoding: ``"onehot"``, ``"onehot+numeric"`` or ``"compact"`` (see
            :class:`ArchFeaturizer`); ``None``: the model's default.
        complexity_features: append log FLOPs and log params; ``None``: the model's default.
        input_shape, num_classes: shapes used for graph and complexity features.
        seed: seed of every random choice the model makes.
    """

    name: ClassVar[str] = ""
    # measured on two OFA ground truths (docs/decisions/accuracy-predictors.md): the compact
    # encoding plus log FLOPs / params lifted the tau at 100 archs of ridge, GP and
    # the MLP on both (GBDT keeps the one-hot encoding, see its class)
    default_encoding: ClassVar[str] = "compact"
    default_complexity_features: ClassVar[bool] = True

    def __init__(self, space: SearchSpace, *, graph_features: bool = False,
                 encoding: str | None = None, complexity_features: bool | None = None,
                 input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 seed: int = 0) -> None:
        self.space = space
        encoding = self.default_encoding if encoding is None else encoding
        complexity = self.default_complexity_features if complexity_features is None else complexity_features
        self.featurizer = ArchFeaturizer(space, graph_features, input_shape, num_classes,
                                         encoding=encoding, complexity=complexity)
        self.seed = int(seed)
        self._fitted = False
        self._x_mean = self._x_std = None
        self._y_mean, self._y_std = 0.0, 1.0

    # subclass hooks -----------------------------------------------------------------------
    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Fit on standardised features ``x`` (n, d) and standardised targets ``y`` (n,)."""

    @abstractmethod
    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised mean and std for standardised features."""

    @abstractmethod
    def hparams(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-able), saved with the model."""

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named numpy arrays."""

    @abstractmethod
    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the fitted state from :meth:`_arrays`' output."""

    def _feature_scaling(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std used to standardise features (default: of the fit set)."""
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std > 1e-8, std, 1.0)

    # public API ---------------------------------------------------------------------------
    def features(self, archs: Sequence[Any]) -> np.ndarray:
        """Raw (unstandardised) feature matrix of ``archs``."""
        return self.featurizer.transform(archs)

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return (x - self._x_mean) / self._x_std

    def fit(self, archs: Sequence[Any], y: Any) -> AccuracyPredictor:
        """Fit on architectures and their measured values; returns ``self``."""
        archs = list(archs)
        y = np.asarray(y, dtype=float).ravel()
        if len(archs) != y.size:
            raise PredictorError(f"fit got {len(archs)} archs but {y.size} targets")
        if y.size < 2:
            raise PredictorError(f"fit needs at least 2 architectures, got {y.size}")
        if not np.all(np.isfinite(y)):
            raise PredictorError(f"fit targets must be finite; {int((~np.isfinite(y)).sum())} are not")
        x = self.features(archs).astype(np.float64)
        self._x_mean, self._x_std = self._feature_scaling(x)
        self._y_mean = float(y.mean())
        self._y_std = float(y.std()) or 1.0
        self._fit(self._scale(x), (y - self._y_mean) / self._y_std)
        self._fitted = True
        return self

    def predict(self, archs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` arrays of the predicted value for each architecture."""
        if not self._fitted:
            raise PredictorError(f"predictor {self.name!r} is not fitted; call fit(archs, y) first")
        archs = list(archs)
        if not archs:
            return np.zeros(0), np.zeros(0)
        mean, std = self._predict(self._scale(self.features(archs).astype(np.float64)))
        return (np.asarray(mean, float) * self._y_std + self._y_mean,
                np.maximum(np.asarray(std, float), 0.0) * self._y_std)

    def save(self, path: str | Path) -> Path:
        """Write the fitted predictor to one ``.npz`` file (arrays + JSON header)."""
        if not self._fitted:
            raise PredictorError("cannot save an unfitted predictor")
        path = Path(path)
        meta = {"format": FORMAT_VERSION, "kind": "accuracy_predictor", "name": self.name,
                "hparams": self.hparams(), "featurizer": self.featurizer.config(),
                "seed": self.seed, "y_mean": self._y_mean, "y_std": self._y_std}
        arrays = {f"model.{k}": np.asarray(v) for k, v in self._arrays().items()}
        arrays["x_mean"], arrays["x_std"] = self._x_mean, self._x_std
        arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace) -> AccuracyPredictor:
        """Read a predictor written by :meth:`save` (any registered kind)."""
        return load_predictor(path, space)


PREDICTORS: Registry[type[AccuracyPredictor]] = Registry("predictor", PredictorError)
"""Accuracy-predictor classes by name; each is built as ``cls(space, **options)``."""


def register_predictor(name: str, *, replace: bool = False
                       ) -> Callable[[type[AccuracyPredictor]], type[AccuracyPredictor]]:
    """Class decorator registering an :class:`AccuracyPredictor` under ``name`` (sets ``name``)."""
    return PREDICTORS.register(name, replace=replace, name_attribute="name")


def list_predictors() -> list[str]:
    """Names of the registered accuracy predictors, sorted."""
    return PREDICTORS.names()


def get_predictor(name: str, space: SearchSpace, **kwargs: Any) -> AccuracyPredictor:
    """Create the registered predictor ``name`` for ``space`` with its keyword options."""
    return PREDICTORS.create(name, space, **kwargs)


def load_predictor(path: str | Path, space: SearchSpace) -> AccuracyPredictor:
    """Load a predictor saved with ``save``; the file is read with ``allow_pickle=False``."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise PredictorError(f"{path}: not a predictor file ({exc})") from None
    if _META not in arrays:
        raise PredictorError(f"{path}: not a predictor file (no {_META} header)")
    meta = json.loads(arrays.pop(_META).tobytes().decode())
    if meta.get("kind") != "accuracy_predictor" or meta.get("format") != FORMAT_VERSION:
        raise PredictorError(f"{path}: unsupported predictor file (kind {meta.get('kind')!r}, "
                             f"format {meta.get('format')!r}; expected format {FORMAT_VERSION})")
    feat = meta["featurizer"]
    predictor = get_predictor(meta["name"], space, graph_features=feat["graph"],
                              encoding=feat["encoding"], complexity_features=feat["complexity"],
                              input_shape=feat["input_shape"], num_classes=feat["num_classes"],
                              seed=meta["seed"], **meta["hparams"])
    predictor.featurizer = ArchFeaturizer.from_config(space, feat)
    predictor._x_mean, predictor._x_std = arrays.pop("x_mean"), arrays.pop("x_std")
    predictor._y_mean, predictor._y_std = meta["y_mean"], meta["y_std"]
    predictor._set_arrays({k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
    predictor._fitted = True
    return predictor
