"""supernets package: one-shot weight-sharing supernets over grammar search spaces."""

from supernets._ofa.config import OFATrainConfig, PhaseConfig, progressive_shrinking
from supernets._ofa.dynamic import DynamicOp, KernelTransform, register_dynamic_op
from supernets._ofa.evaluate import evaluate_subnet
from supernets._ofa.supernet import OFASupernet
from supernets._ofa.train import TrainResult, load_supernet, train_supernet
from supernets.errors import SupernetError

__all__ = [
    "DynamicOp",
    "KernelTransform",
    "OFASupernet",
    "OFATrainConfig",
    "PhaseConfig",
    "SupernetError",
    "TrainResult",
    "evaluate_subnet",
    "load_supernet",
    "progressive_shrinking",
    "register_dynamic_op",
    "train_supernet",
]
