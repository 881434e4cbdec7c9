"""Search problems shared by bench/search_speed.py and bench/search_quality.py.

:func:`nb201_table_problem` (search_quality): real NAS-Bench-201 tables from
``../shared/data/nb201`` (200-epoch test accuracy on CIFAR-100 or ImageNet16-120
against the measured latency of one real device), with every cell's true values for
the exact front. The rest are surrogates (search_speed):

The search benches measure the engines, not a device or a trained model, so their
"latency table" and "fitted predictor" are stand-ins with known, cheap values:

* :class:`StandInLatencyTable`: a per-``LayerSpec`` dict of milliseconds computed
  from each layer's fvcore FLOPs and parameters (``0.9 ns per MAC + 4 ns per
  parameter + 0.02 ms per layer``), summed over ``space.layers(arch)``: the
  same ``predict(archs) -> ms`` contract and the same per-layer lookup as a real
  table, with made-up device constants.
* :class:`ForestPredictor`: a scikit-learn random forest fitted on
  ``space.encode`` features to a synthetic accuracy (a saturating function of
  FLOPs plus a per-decision term), with the spread of its trees as ``std``.

When ``hardware`` is importable, :func:`hardware_table` puts the same stand-in
per-layer milliseconds into a real ``hardware.LatencyTable`` (its layers enumerated
by ``SearchSpace.realisable_layers``, its vectorised ``predict``): profiling 380
MobileNetV3 layers on this shared machine is not a search benchmark.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

from nas.objectives import (
    CallableObjective,
    Params,
    PredictedAccuracy,
    TableLatency,
    TabularObjective,
)
from nas.search import Problem
from search_spaces import Architecture, LayerSpec, SearchSpace, get_space, layer_complexity


class StandInLatencyTable:
    """Per-layer latency dict (ms) derived from FLOPs/params; ``predict`` sums it per arch."""

    metadata = {"device": "stand-in (FLOPs/params model)", "fingerprint": "standin-v1"}

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.table: dict[LayerSpec, float] = {}

    def lookup(self, spec: LayerSpec) -> float:
        ms = self.table.get(spec)
        if ms is None:
            ms = self.table[spec] = standin_ms(spec)
        return ms

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        lookup = self.lookup
        return np.fromiter((sum(lookup(s) for s in self.space.layers(a)) for a in archs),
                           dtype=float, count=len(archs))


def standin_ms(spec: LayerSpec) -> float:
    flops, params = layer_complexity(spec)
    return 0.9e-6 * flops + 4e-6 * params + 0.02


def hardware_table(space: SearchSpace):
    """A real ``hardware.LatencyTable`` over every layer of ``space``, stand-in latencies."""
    import pandas as pd

    from hardware import LatencyTable, fit_calibration

    found = space.realisable_layers(space.input_shape, space.num_classes, "auto", rng=0)
    entries = pd.DataFrame({"key": [s.key for s in found.specs],
                            "latency_ms": [standin_ms(s) for s in found.specs]})
    metadata = {
        "space": {"name": space.name, "fingerprint": space.fingerprint, "options": {},
                  "enumeration": {"method": found.method, "n_samples": found.n_samples}},
        "device": {"kind": "stand-in", "model": "0.9 ns/MAC + 4 ns/param + 0.02 ms/layer"},
        "input_shape": list(space.input_shape), "num_classes": space.num_classes,
        "statistic": "model", "calibration": fit_calibration([], []),
    }
    return LatencyTable(entries, metadata, space)


class ForestPredictor:
    """Random forest on ``space.encode`` features; ``predict -> (mean, std over trees)``."""

    id = "bench-random-forest-v1"

    def __init__(self, space: SearchSpace, seed: int = 0, n_train: int = 400) -> None:
        self.space = space
        rng = np.random.default_rng(seed)
        archs = [space.sample(rng) for _ in range(n_train)]
        x = space.encode_batch(archs)
        flops = np.array([sum(layer_complexity(s)[0] for s in space.layers(a)) for a in archs])
        w = np.random.default_rng(seed + 1).normal(0, 0.004, size=x.shape[1])
        y = 0.80 - 0.25 * np.exp(-flops / np.median(flops)) + x @ w
        self.model = RandomForestRegressor(n_estimators=24, max_depth=10, random_state=seed,
                                           n_jobs=1).fit(x, y)

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        # Each fitted tree's own ``tree_.predict`` (the same numbers as ``tree.predict``):
        # sklearn's per-call input validation cost ~0.7 ms per tree, 24 trees per batch.
        x = self.space.encode_batch(list(archs))
        trees = np.stack([t.tree_.predict(x).reshape(len(x), -1)[:, 0] for t in self.model.estimators_])
        return trees.mean(axis=0), trees.std(axis=0)


def mobilenet_problem(latency_bound: float | None = None,
                      real_table: bool = False) -> tuple[Problem, list[float]]:
    """Table latency (min) x predicted accuracy (max) on ``mobilenetv3_ofa``.

    ``real_table``: use :func:`hardware_table` (a real ``hardware.LatencyTable``)
    instead of :class:`StandInLatencyTable`; both give the same milliseconds.

    Returns the problem and the hypervolume reference point in raw units:
    (the latency bound, the 5th percentile of accuracy over 300 random archs).
    """
    space = get_space("mobilenetv3_ofa")
    table = hardware_table(space) if real_table else StandInLatencyTable(space)
    latency = TableLatency(table)
    accuracy = PredictedAccuracy(ForestPredictor(space))
    rng = np.random.default_rng(123)
    sample = [space.sample(rng) for _ in range(300)]
    lat = latency(sample)
    bound = float(np.round(np.median(lat), 1)) if latency_bound is None else latency_bound
    reference = [bound, float(np.percentile(accuracy(sample), 5))]
    return Problem(space, [latency, accuracy], [f"latency_ms <= {bound}"]), reference


NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def nb201_problem() -> tuple[Problem, list[float], list[Architecture]]:
    """Params (min) x a synthetic tabular accuracy (max) on the full ``nb201`` space.

    (``cells_per_stage=1``: the same 15,625 cells; parameters of the smaller network.)

    The accuracy rewards convolutions, especially on edges into the output node,
    with interactions (a dead path through "none" edges costs), plus a fixed
    per-architecture jitter: a landscape with a non-trivial front. Returns the
    problem, the reference point (params of the largest cell, accuracy 0.3) and all
    15,625 architectures (for the exact front).
    """
    space = get_space("nb201", cells_per_stage=1)  # one cell per stage: cheap params
    paths = sorted(space.sample(0))
    archs = [Architecture(dict(zip(paths, combo, strict=True)))
             for combo in itertools.product(NB201_OPS, repeat=len(paths))]
    gain = {"none": 0.0, "skip_connect": 0.03, "nor_conv_1x1": 0.05, "nor_conv_3x3": 0.08,
            "avg_pool_3x3": 0.02}
    jitter = np.random.default_rng(7).uniform(0, 0.02, size=len(archs))
    acc = {}
    for arch, j in zip(archs, jitter, strict=True):
        into_out = [arch[p] for p in paths if p.startswith("cell.edge_3_")]
        value = 0.3 + sum(gain[arch[p]] for p in paths) + 0.04 * (
            "nor_conv_3x3" in into_out) - 0.1 * all(o == "none" for o in into_out) + j
        acc[arch.key] = value
    accuracy = CallableObjective("accuracy", lambda b: [acc[a.key] for a in b], "maximize",
                                 metadata={"table": "synthetic nb201 accuracy"})
    params = Params(space)
    p_all = params(archs)
    problem = Problem(space, [params, accuracy], [f"params <= {float(np.median(p_all)):.0f}"])
    return problem, [float(p_all.max()) * 1.01, 0.3], archs


# real NAS-Bench-201 tables -------------------------------------------------------------------
NB201_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201" / "nb201.csv.gz"

#: Devices the bench reports on (the issue's four kinds) and, disjoint, the devices the
#: budget-aware defaults were chosen on (never reported).
REPORT_DEVICES = {"2080ti_1": "GPU, batch 1", "2080ti_256": "GPU, batch 256",
                  "gold_6240": "server CPU", "samsung_a50": "phone"}
TUNE_DEVICES = {"titanx_1": "GPU, batch 1", "titanxp_256": "GPU, batch 256",
                "silver_4114": "server CPU", "essential_ph_1": "phone"}
DATASETS = {"cifar100": "CIFAR-100", "imagenet16": "ImageNet16-120"}
QUANTILES = (0.10, 0.25, 0.50)


@lru_cache(maxsize=1)
def nb201_table(path: str = str(NB201_DATA)) -> pd.DataFrame:
    """The NAS-Bench-201 table (15,625 rows); a clear error when the data is absent."""
    if not Path(path).is_file():
        raise SystemExit(f"nb201 data not found at {path}: see ../shared/data/nb201/README.md")
    return pd.read_csv(path)


@dataclass(frozen=True)
class TableTruth:
    """What the exact front of a table problem needs: every cell's true values."""

    accuracy: np.ndarray          # (15625,) test accuracy, %
    latency: np.ndarray           # (15625,) ms
    low: np.ndarray               # normalisation: min of (-accuracy, latency) over all cells
    high: np.ndarray              # and max
    front_hv: float               # hypervolume of the true front (normalised, reference 1, 1)
    latency_budgets: tuple[float, ...]   # latency at QUANTILES
    best_under: tuple[float, ...]        # true best accuracy under each budget

    def normalise(self, accuracy: np.ndarray, latency: np.ndarray) -> np.ndarray:
        """(n, 2) minimised, normalised points: (1 - acc scaled, latency scaled)."""
        f = np.stack([-np.asarray(accuracy, float), np.asarray(latency, float)], axis=1)
        return (f - self.low) / (self.high - self.low)


def nb201_table_problem(dataset: str, device: str, path: str = str(NB201_DATA)
                        ) -> tuple[Problem, TableTruth]:
    """Maximise ``dataset`` test accuracy, minimise ``device`` latency, on nb201 (no constraint).

    Accuracy and latency are looked up in the table by the standard NAS-Bench-201
    string; the engines see accuracy as expensive and latency as cheap.
    """
    from nas.search import hypervolume

    df = nb201_table(path)
    lat_col = f"lat_{device}"
    if dataset not in DATASETS or lat_col not in df.columns:
        raise SystemExit(f"unknown dataset {dataset!r} or device {device!r}; datasets: "
                         f"{list(DATASETS)}, devices: {[c[4:] for c in df.columns if c.startswith('lat_')]}")
    space = get_space("nb201")
    accuracy = TabularObjective(df, dataset, name="accuracy", direction="maximize")
    latency = TabularObjective(df, lat_col, name="latency_ms", direction="minimize")
    acc, lat = df[dataset].to_numpy(float), df[lat_col].to_numpy(float)
    f = np.stack([-acc, lat], axis=1)
    low, high = f.min(axis=0), f.max(axis=0)
    front_hv = hypervolume((f - low) / (high - low), [1.0, 1.0])
    budgets = tuple(float(np.quantile(lat, q)) for q in QUANTILES)
    best = tuple(float(acc[lat <= b].max()) for b in budgets)
    truth = TableTruth(acc, lat, low, high, front_hv, budgets, best)
    return Problem(space, [accuracy, latency]), truth
