"""Predictors: accuracy predictors, zero-cost proxies and latency predictors.

Public API::

    from predictors import get_predictor, compute_proxies, LayerwiseLatencyPredictor

``predictors`` imports only ``search_spaces``; batches, latency tables and
supernet evaluators from other packages are taken as duck-typed arguments.
"""

from predictors._accuracy import (
    PREDICTORS,
    AccuracyPredictor,
    GBDTPredictor,
    GPPredictor,
    MLPEnsemble,
    RidgePredictor,
    get_predictor,
    learning_curve,
    list_predictors,
    load_predictor,
    register_predictor,
)
from predictors._data import read_arch_table
from predictors._features import ArchFeaturizer, free_statistics
from predictors._latency import (
    FewShotLatencyPredictor,
    LayerFeaturizer,
    LayerwiseLatencyPredictor,
    MeasuredLatency,
    SyntheticDevice,
    read_latency_measurements,
)
from predictors._metrics import (
    evaluate_predictor,
    kendall_tau,
    mae,
    mape,
    spearman,
    split_half_reliability,
)
from predictors._proxies import (
    DEFAULT_PROXIES,
    PROXIES,
    Proxy,
    ProxyCombination,
    compute_proxies,
    get_proxy,
    list_proxies,
    proxy_matrix,
    register_proxy,
)
from predictors.errors import PredictorError

__all__ = [
    "PREDICTORS",
    "PROXIES",
    "DEFAULT_PROXIES",
    "FewShotLatencyPredictor",
    "LayerFeaturizer",
    "LayerwiseLatencyPredictor",
    "MeasuredLatency",
    "Proxy",
    "ProxyCombination",
    "SyntheticDevice",
    "compute_proxies",
    "get_proxy",
    "list_proxies",
    "proxy_matrix",
    "read_arch_table",
    "read_latency_measurements",
    "register_proxy",
    "AccuracyPredictor",
    "ArchFeaturizer",
    "GBDTPredictor",
    "GPPredictor",
    "MLPEnsemble",
    "PredictorError",
    "RidgePredictor",
    "evaluate_predictor",
    "free_statistics",
    "get_predictor",
    "kendall_tau",
    "learning_curve",
    "list_predictors",
    "load_predictor",
    "mae",
    "mape",
    "register_predictor",
    "spearman",
    "split_half_reliability",
]
