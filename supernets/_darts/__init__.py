"""DARTS-style continuous relaxation of cell search spaces (private implementation).

Public names are re-exported by :mod:`supernets`.
"""

from supernets._darts.config import DartsConfig
from supernets._darts.history import load_alpha_history, save_alpha_history
from supernets._darts.search import DartsResult, DartsSearch, search_darts, table_latency
from supernets._darts.supernet import DartsSupernet, LatencyLookup
from supernets._darts.train import StandaloneResult, train_standalone

__all__ = [
    "DartsConfig",
    "DartsResult",
    "DartsSearch",
    "DartsSupernet",
    "LatencyLookup",
    "StandaloneResult",
    "load_alpha_history",
    "save_alpha_history",
    "search_darts",
    "table_latency",
    "train_standalone",
]
