"""supernets package."""

from supernets._darts import (
    DartsConfig,
    DartsResult,
    DartsSupernet,
    LatencyLookup,
    StandaloneResult,
    load_alpha_history,
    plot_alpha_history,
    search_darts,
    table_latency,
    train_standalone,
)
from supernets.errors import SupernetError

__all__ = [
    "DartsConfig",
    "DartsResult",
    "DartsSupernet",
    "LatencyLookup",
    "StandaloneResult",
    "SupernetError",
    "load_alpha_history",
    "plot_alpha_history",
    "search_darts",
    "table_latency",
    "train_standalone",
]
