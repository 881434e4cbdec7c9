"""supernets package: one-shot weight-sharing supernets over grammar search spaces."""

from supernets._darts import (
    DartsConfig,
    DartsResult,
    DartsSearch,
    DartsSupernet,
    LatencyLookup,
    StandaloneResult,
    load_alpha_history,
    search_darts,
    table_latency,
    train_standalone,
)
from supernets._ofa.checkpoint import SupernetState, load_supernet
from supernets._ofa.config import (
    OFATrainConfig,
    PhaseConfig,
    progressive_shrinking,
    sandwich_schedule,
)
from supernets._ofa.dynamic import DYNAMIC_OPS, DynamicOp, KernelTransform, register_dynamic_op
from supernets._ofa.evaluate import accuracy, calibration_batches, evaluate_subnet, recalibrate_bn
from supernets._ofa.supernet import OFASupernet
from supernets._ofa.train import TrainResult, sandwich_step, train_supernet
from supernets.errors import SupernetError
from supernets.runtime import ComputeConfig, Runtime

__all__ = [
    "DYNAMIC_OPS",
    "ComputeConfig",
    "DartsConfig",
    "DartsResult",
    "DartsSearch",
    "DartsSupernet",
    "DynamicOp",
    "KernelTransform",
    "LatencyLookup",
    "OFASupernet",
    "OFATrainConfig",
    "PhaseConfig",
    "Runtime",
    "StandaloneResult",
    "SupernetError",
    "SupernetState",
    "TrainResult",
    "accuracy",
    "calibration_batches",
    "evaluate_subnet",
    "load_alpha_history",
    "load_supernet",
    "progressive_shrinking",
    "recalibrate_bn",
    "register_dynamic_op",
    "sandwich_schedule",
    "sandwich_step",
    "search_darts",
    "table_latency",
    "train_standalone",
    "train_supernet",
]
