"""The first stages of the OFA pipeline: supernet, latency tables, predictor, random baseline.

Each stage is cached in the run folder under a key of its inputs (see
:mod:`nas.run._stages`) and returns a typed summary the later stages take.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nas.config import to_dict
from nas.errors import ConfigError
from nas.run._context import RunContext
from nas.run._stages import stable_hash
from search_spaces import Architecture

if TYPE_CHECKING:
    from hardware import LatencyTable
    from predictors import AccuracyPredictor
    from supernets import OFASupernet

__all__ = ["DeviceTable", "FittedPredictor", "TrainedSupernet", "baseline_stage",
           "evaluate_archs", "predictor_stage", "supernet_stage", "table_stages"]


@dataclass(frozen=True)
class TrainedSupernet:
    """The supernet of the run and the cache key of the stage that made (or loaded) it."""

    supernet: OFASupernet
    key: str


@dataclass(frozen=True)
class DeviceTable:
    """A device's latency table and its stage key; ``imported``: the table was measured
    elsewhere through a profiling bundle (``nas lut import``), so this machine cannot
    re-time its subnets."""

    table: LatencyTable
    key: str
    imported: bool = False


@dataclass(frozen=True)
class FittedPredictor:
    """The accuracy predictor, its stage key and its held-out quality."""

    predictor: AccuracyPredictor
    key: str
    quality: dict[str, float]


def evaluate_archs(ctx: RunContext, supernet: OFASupernet, archs: list[Architecture],
                   split: str = "val", desc: str = "evaluating") -> np.ndarray:
    """Accuracy of each subnet with inherited weights (BN recalibrated per subnet), on the
    run's device (``compute.device``)."""
    from supernets import evaluate_subnet

    return np.array([evaluate_subnet(supernet, a, ctx.data, split, seed=ctx.seed,
                                     device=ctx.device)
                     for a in ctx.bar(archs, desc=desc, unit="subnet")])


# supernet -----------------------------------------------------------------------------------
def supernet_stage(ctx: RunContext) -> TrainedSupernet:
    """Load ``supernet.checkpoint``, or train (or continue training) the supernet."""
    from supernets import load_supernet, train_supernet

    exp = ctx.exp
    if exp.supernet.checkpoint is not None:
        ckpt = Path(exp.supernet.checkpoint)
        supernet, state = load_supernet(ckpt, ctx.space)  # refuses another space
        if tuple(state.input_shape) != ctx.shape or state.num_classes != ctx.data.num_classes:
            raise ConfigError(
                f"supernet.checkpoint: {ckpt} was trained on input {tuple(state.input_shape)} "
                f"with {state.num_classes} classes, but data {ctx.data.name!r} has {ctx.shape} "
                f"and {ctx.data.num_classes}")
        ctx.log(f"[supernet] loaded {ckpt}")
        return TrainedSupernet(supernet, stable_hash("checkpoint", str(ckpt.resolve()), state.step))
    config = exp.supernet.ofa_config(exp.seed)
    key = stable_hash(config.to_dict(), ctx.space.fingerprint, to_dict(exp.space), to_dict(exp.data))
    folder = ctx.run_dir / "supernet" / key

    def train() -> dict[str, Any]:
        if exp.compute.processes > 1:
            steps = _train_data_parallel(ctx, folder)
        else:
            steps = train_supernet(ctx.space, config, ctx.data, folder, resume=True,
                                   progress=ctx.progress, space_options=exp.space.options,
                                   runtime=ctx.runtime,
                                   num_workers=exp.data.loader_options(
                                       ctx.runtime.device.type == "cuda")["num_workers"]).steps
        summary = {"dir": str(folder), "steps": int(steps)}
        where = f" in {exp.compute.processes} processes" if exp.compute.processes > 1 else ""
        ctx.log(f"[supernet] trained {summary['steps']} steps on {ctx.device}{where} -> {folder}")
        return summary

    ctx.cache.run("supernet", key, train)
    supernet, _ = load_supernet(folder, ctx.space)
    return TrainedSupernet(supernet, key)


def _train_data_parallel(ctx: RunContext, folder: Path) -> int:
    """Train the run's supernet in ``compute.processes`` processes on this machine (torch's
    elastic launcher, through ``nas.launch``); each runs ``train_experiment_supernet`` on
    the run's resolved experiment (``config.yaml``). Returns the steps done."""
    import json

    from nas.launch import TrainJob, launch_local

    launch_local(TrainJob(str(ctx.run_dir / "config.yaml"), str(folder)), ctx.exp.compute.processes)
    return int(json.loads((folder / "supernet.json").read_text())["step"])


# latency tables -----------------------------------------------------------------------------
def table_stages(ctx: RunContext) -> dict[str, DeviceTable]:
    """One latency table per device: loaded from ``devices[i].table`` or profiled."""
    from hardware import LatencyTable, Profiler, get_device

    tables = {}
    for dev in ctx.exp.devices:
        if dev.table is not None:
            table = LatencyTable.load(dev.table, space=ctx.space, input_shape=ctx.shape)
            imported = bool(table.metadata.get("source", {}).get("bundle_id"))
            if not imported:  # a table of a device of this machine: it must be that device
                table.check_device(get_device(dev.kind, **dev.options))
            where = " (measured on another device through a bundle)" if imported else ""
            ctx.log(f"[table {dev.name}] loaded {dev.table} ({len(table)} layers){where}")
            tables[dev.name] = DeviceTable(table, stable_hash("table", str(Path(dev.table).resolve())),
                                           imported)
            continue
        key = stable_hash(ctx.space.fingerprint, dev.kind, dev.options, dev.profiler, ctx.shape,
                          ctx.data.num_classes, dev.n_calibration, ctx.seed)
        path = ctx.run_dir / "tables" / f"{dev.name}-{key}.csv"

        def build(dev=dev, path=path) -> dict[str, Any]:
            device = get_device(dev.kind, **dev.options)
            table = LatencyTable.build(
                ctx.space, device, ctx.shape, ctx.data.num_classes,
                profiler=Profiler(**dev.profiler), n_calibration=dev.n_calibration,
                rng=ctx.seed, progress=ctx.progress, space_options=dict(ctx.exp.space.options))
            table.save(path)
            cal = table.calibration
            ctx.log(f"[table {dev.name}] {len(table)} layers profiled; calibration "
                    f"{cal.get('model', cal)}")
            return {"path": str(path), "layers": len(table)}

        ctx.cache.run(f"table-{dev.name}", key, build)
        tables[dev.name] = DeviceTable(LatencyTable.load(path, space=ctx.space, input_shape=ctx.shape),
                                       key)
    return tables


# predictor ----------------------------------------------------------------------------------
def predictor_stage(ctx: RunContext, supernet: TrainedSupernet,
                    tables: dict[str, DeviceTable]) -> FittedPredictor:
    """Fit the accuracy predictor on supernet-evaluated subnets (quality on held-out ones)."""
    from predictors import evaluate_predictor, load_predictor

    pcfg = ctx.exp.predictor
    key = stable_hash(supernet.key, to_dict(pcfg), ctx.seed)
    folder = ctx.run_dir / "predictor" / key
    first_table = tables[ctx.exp.devices[0].name].table

    def make() -> dict[str, Any]:
        archs = ctx.distinct_archs(pcfg.train_archs, 1)
        acc = evaluate_archs(ctx, supernet.supernet, archs, "val", "supernet accuracy")
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"arch_key": [a.key for a in archs], "arch": [a.to_json() for a in archs],
                      "val_accuracy": acc}).to_csv(folder / "samples.csv", index=False)
        n_hold = int(round(len(archs) * pcfg.holdout))
        quality: dict[str, float] = {}
        if n_hold >= 5:
            probe = _new_predictor(ctx, first_table)
            probe.fit(archs[n_hold:], acc[n_hold:])
            quality = {k: float(v) for k, v in
                       evaluate_predictor(probe, archs[:n_hold], acc[:n_hold]).items()}
        predictor = _new_predictor(ctx, first_table).fit(archs, acc)
        predictor.save(folder / "predictor.npz")
        ctx.log(f"[predictor] {pcfg.name} on {len(archs)} subnets (val acc {acc.mean():.3f} +- "
                f"{acc.std():.3f}); held-out: " + ", ".join(f"{k} {v:.3f}" for k, v in quality.items()))
        return {"path": str(folder / "predictor.npz"), "quality": quality}

    result = ctx.cache.run("predictor", key, make)
    return FittedPredictor(load_predictor(result["path"], ctx.space), key, result["quality"])


def _new_predictor(ctx: RunContext, table: LatencyTable) -> AccuracyPredictor:
    from predictors import get_predictor

    pcfg = ctx.exp.predictor
    predictor = get_predictor(pcfg.name, ctx.space, seed=ctx.seed, **pcfg.options)
    if pcfg.pretrain_archs > 0:
        if not hasattr(predictor, "pretrain"):
            raise ConfigError(f"predictor.pretrain_archs: predictor {pcfg.name!r} cannot be pretrained")
        predictor.pretrain(ctx.distinct_archs(pcfg.pretrain_archs, 2), latency=table)
    return predictor


# random baseline ----------------------------------------------------------------------------
def baseline_stage(ctx: RunContext, supernet: TrainedSupernet, tables: dict[str, DeviceTable],
                   upstream_keys: list[str]) -> dict[str, Any]:
    """Test accuracy and table latency of ``report.random_archs`` random subnets."""
    n = ctx.exp.report.random_archs
    key = stable_hash(supernet.key, n, ctx.seed, sorted(upstream_keys))

    def make() -> dict[str, Any]:
        archs = ctx.distinct_archs(n, 3) if n else []
        frame = pd.DataFrame({"arch_key": [a.key for a in archs], "arch": [a.to_json() for a in archs]})
        frame["test_accuracy"] = (evaluate_archs(ctx, supernet.supernet, archs, "test", "random baseline")
                                  if archs else [])
        for name, entry in tables.items():
            frame[f"latency_ms_{name}"] = entry.table.predict(archs) if archs else []
        path = ctx.run_dir / "random_baseline.csv"
        frame.to_csv(path, index=False)
        summary = {"path": str(path), "n": n,
                   "mean_test_accuracy": float(frame["test_accuracy"].mean()) if n else None}
        ctx.log(f"[baseline] {n} random subnets: mean test accuracy "
                f"{summary['mean_test_accuracy'] if n else float('nan'):.3f}")
        return summary

    return ctx.cache.run("baseline", key, make)
