"""Accuracy predictors (private implementation; import from ``predictors``)."""

from predictors._accuracy import gbdt, gp, mlp, ridge  # noqa: F401  (registers the models)
from predictors._accuracy.base import (
    PREDICTORS,
    AccuracyPredictor,
    get_predictor,
    list_predictors,
    load_predictor,
    register_predictor,
)
from predictors._accuracy.curve import learning_curve
from predictors._accuracy.gbdt import GBDTPredictor
from predictors._accuracy.gp import GPPredictor
from predictors._accuracy.mlp import MLPEnsemble
from predictors._accuracy.ridge import RidgePredictor

__all__ = ["AccuracyPredictor", "GBDTPredictor", "GPPredictor", "MLPEnsemble", "RidgePredictor",
           "get_predictor", "learning_curve", "list_predictors", "load_predictor",
           "register_predictor", "PREDICTORS"]
