"""The last stages of the OFA pipeline: constrained searches per (device, budget) and seed,
each beside random search with the same budget, the choice of each budget's subnet among
every evaluation of the run, then its export (re-timed on its device)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from nas.config import to_dict
from nas.errors import ConfigError
from nas.objectives import PredictedAccuracy, SupernetAccuracy, TableLatency
from nas.run._compare import compare_histories, seed_list
from nas.run._context import RunContext, study_storage
from nas.run._ofa import DeviceTable, FittedPredictor, TrainedSupernet, evaluate_archs
from nas.run._stages import atomic_write_text, stable_hash
from nas.search import Problem, default_batch_size, make_engine, run_search
from search_spaces import Architecture

__all__ = ["budgets", "export_stage", "search_stages"]


def budgets(ctx: RunContext, table: DeviceTable) -> list[float]:
    """``search.budgets_ms``, else the ``budget_quantiles`` of random subnets' table latency."""
    scfg = ctx.exp.search
    if scfg.budgets_ms:
        return [float(b) for b in scfg.budgets_ms]
    archs = [ctx.space.sample(np.random.default_rng([ctx.seed, 4, i])) for i in range(500)]
    latency = table.table.predict(archs)
    return [float(f"{q:.4g}") for q in np.quantile(latency, scfg.budget_quantiles)]


def search_stages(ctx: RunContext, supernet: TrainedSupernet, tables: dict[str, DeviceTable],
                  predictor: FittedPredictor) -> list[dict[str, Any]]:
    """One record per (device, budget): the chosen subnet and the engine-vs-random table.

    Every (device, budget) is searched once per seed (``search.seeds``, default the
    experiment's seed) with the experiment's engine and with random search of the same
    budget. The chosen subnet of a budget is the most accurate feasible architecture
    among *every* evaluation of the run on that device (all budgets, seeds, engines and,
    with predicted accuracy, the random baseline), not only its own search's.
    """
    scfg = ctx.exp.search
    seeds = seed_list(ctx.seed, scfg.seeds)
    engines = [scfg.engine] if scfg.engine == "random" else [scfg.engine, "random"]
    chosen = []
    for device in ctx.exp.search_devices:
        runs: dict[float, list[dict[str, Any]]] = {}
        for budget in budgets(ctx, tables[device]):
            for seed in seeds:
                for engine in engines:
                    main = seed == ctx.seed and engine == scfg.engine
                    key = stable_hash(predictor.key, tables[device].key, to_dict(scfg), budget,
                                      seed, "engine-vs-random-v2", *([] if main else [engine]))
                    name = f"search-{device}-{budget:g}ms" + ("" if main else f"-{engine}-seed{seed}")
                    runs.setdefault(budget, []).append(ctx.cache.run(
                        name, key, lambda d=device, b=budget, k=key, s=seed, e=engine: _search(
                            ctx, supernet, tables[d], predictor, d, b, k, s, e)))
        pool = _pool(ctx, device, runs, predictor)
        table = tables[device].table
        noise = {"calibration": {"loo_error": table.calibration.get("loo_error")},
                 "machine_check": table.metadata.get("machine_check") or {}}
        chosen += [{**_choose(ctx, device, budget, items, pool), "table_noise": noise,
                    "table_imported": tables[device].imported}
                   for budget, items in runs.items()]
    return chosen


def _pool(ctx: RunContext, device: str, runs: dict[float, list[dict[str, Any]]],
          predictor: FittedPredictor) -> pd.DataFrame:
    """Every evaluation of the run on ``device``: all searches, plus the random baseline's
    subnets with their predicted accuracy (when the search used the predictor)."""
    frames = []
    for items in runs.values():
        for item in items:
            frame = pd.read_csv(item["history"])
            frame["found_by"] = f"{item['engine']} seed {item['seed']} (<= {item['budget_ms']:g} ms)"
            frames.append(frame)
    baseline = ctx.run_dir / "random_baseline.csv"
    column = f"latency_ms_{device}"
    if ctx.exp.search.accuracy == "predicted" and baseline.is_file():
        base = pd.read_csv(baseline)
        if len(base) and column in base.columns:
            archs = [Architecture.from_json(a) for a in base["arch"]]
            frames.append(pd.DataFrame({
                "arch_key": base["arch_key"], "arch": base["arch"],
                "accuracy": PredictedAccuracy(predictor.predictor, name="accuracy")(archs),
                "latency_ms": base[column], "found_by": "random baseline"}))
    return pd.concat(frames, ignore_index=True)


def _choose(ctx: RunContext, device: str, budget: float, items: list[dict[str, Any]],
            pool: pd.DataFrame) -> dict[str, Any]:
    """The record of one budget: its best feasible subnet over ``pool`` and the comparison."""
    feasible = pool[pool["latency_ms"] <= budget]
    if feasible.empty:
        raise ConfigError(f"search: no architecture meets latency_ms <= {budget:g} on {device}; "
                          "raise the budget")
    best = feasible.loc[feasible["accuracy"].idxmax()]
    main = items[0]
    histories = {}
    for item in items:
        histories.setdefault(item["engine"], []).append(pd.read_csv(item["history"]))
    table = compare_histories(histories, "accuracy", "latency_ms", [budget])
    ctx.log(f"[choose {device} <= {budget:g} ms] best feasible of {len(pool)} evaluations: "
            f"predicted accuracy {best['accuracy']:.3f} at {best['latency_ms']:.3f} ms, "
            f"found by {best['found_by']}")
    return {"device": device, "budget_ms": budget, "study": main["study"], "storage": main["storage"],
            "history": main["history"],
            "histories": [{k: i[k] for k in ("engine", "seed", "history")} for i in items],
            "arch": Architecture.from_json(best["arch"]).to_json(), "found_by": best["found_by"],
            "predicted_accuracy": float(best["accuracy"]), "table_latency_ms": float(best["latency_ms"]),
            "comparison": table.to_dict(orient="records")}


def _search(ctx: RunContext, supernet: TrainedSupernet, table: DeviceTable,
            predictor: FittedPredictor, device: str, budget: float, key: str, seed: int,
            engine_name: str) -> dict[str, Any]:
    scfg = ctx.exp.search
    if scfg.accuracy == "predicted":
        accuracy = PredictedAccuracy(predictor.predictor, name="accuracy")
    else:
        net = supernet.supernet
        accuracy = SupernetAccuracy(lambda archs: evaluate_archs(ctx, net, list(archs), "val"),
                                    name="accuracy")
    latency = TableLatency(table.table, name="latency_ms")
    problem = Problem(ctx.space, [accuracy, latency], [f"latency_ms <= {budget:g}"])
    options = scfg.options if engine_name == scfg.engine else {}
    engine = make_engine(engine_name, problem, seed=seed, budget=scfg.evaluations, **options)
    storage = study_storage(ctx.exp.search.storage, ctx.run_dir)
    main = seed == ctx.seed and engine_name == scfg.engine
    suffix = "" if main else f"-{engine_name}-seed{seed}"
    study = f"{ctx.exp.study}-{device}-{budget:g}ms{suffix}-{key}"
    evaluator = ctx.make_evaluator(problem) if ctx.make_evaluator is not None else None
    try:
        # search.batch_size None (a schema change proposed with issue 19): from the budget
        batch = scfg.batch_size if scfg.batch_size is not None else default_batch_size(scfg.evaluations)
        result = run_search(problem, engine, scfg.evaluations, batch_size=batch,
                            storage=storage, study_name=study, resume=True,
                            provenance={"predictor": predictor.key, "device": device},
                            progress=ctx.progress, evaluator=evaluator)
    finally:
        if hasattr(evaluator, "close"):
            evaluator.close()
    folder = ctx.run_dir / "searches" / f"{device}-{budget:g}ms{suffix}"
    result.export(folder)
    feasible = result.history[result.history["feasible"].astype(bool)]
    ctx.log(f"[search {device} <= {budget:g} ms, {engine_name} seed {seed}] {len(result)} evaluated, "
            f"{len(feasible)} feasible, front {len(result.front)}")
    return {"device": device, "budget_ms": budget, "engine": engine_name, "seed": seed,
            "study": study, "storage": storage, "history": str(folder / "history.csv")}


# export -------------------------------------------------------------------------------------
def export_stage(ctx: RunContext, supernet: TrainedSupernet, chosen: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Each chosen subnet: test accuracy, exported files, FLOPs/params, measured latency."""
    out = []
    for item in chosen:
        arch = Architecture.from_json(item["arch"])
        key = stable_hash(supernet.key, item, to_dict(ctx.exp.export), ctx.exp.report.remeasure)
        name = f"export-{item['device']}-{item['budget_ms']:g}ms"
        out.append(ctx.cache.run(name, key, lambda a=arch, i=item: _export(ctx, supernet, a, i)))
    return out


def _export(ctx: RunContext, supernet: TrainedSupernet, arch: Architecture,
            item: dict[str, Any]) -> dict[str, Any]:
    from hardware import Profiler, gap_beyond_noise, get_device
    from nas.export import export_subnet
    from supernets import evaluate_subnet

    exp = ctx.exp
    # evaluating recalibrates the supernet's batch-norm statistics for this subnet,
    # so the extracted module carries the right ones (nas.export checks it)
    test_acc = evaluate_subnet(supernet.supernet, arch, ctx.data, "test", seed=ctx.seed,
                               device=ctx.device)
    model = supernet.supernet.extract(arch)
    if exp.export.finetune_steps:
        test_acc = _finetune(model, ctx.data, exp.export.finetune_steps, ctx.seed, ctx.device)
    folder = ctx.run_dir / "subnets" / f"{item['device']}-{item['budget_ms']:g}ms"
    files = export_subnet(model, ctx.space, arch, folder, ctx.shape, ctx.data.num_classes,
                          exp.export.formats, exp.space.options, ctx.seed, device=ctx.device)
    cost = ctx.space.complexity(arch, ctx.shape, ctx.data.num_classes)
    measured = None
    if exp.report.remeasure and not item.get("table_imported"):  # a remote device: not here
        dev = next(d for d in exp.devices if d.name == item["device"])
        device = get_device(dev.kind, **dev.options)
        measured = Profiler(**dev.profiler).measure(model.cpu().eval(), ctx.shape, device).value_ms
    note = gap_beyond_noise(item.get("table_noise", {}), item["table_latency_ms"], measured)
    if note:
        ctx.log(f"[export {item['device']}] {note}")
    result = {**item, "test_accuracy": float(test_acc), "measured_latency_ms": measured,
              "latency_note": note, "flops": int(cost.flops), "params": int(cost.params),
              "files": files, "dir": str(folder)}
    atomic_write_text(folder / "summary.json", json.dumps(result, indent=1))
    ctx.log(f"[export {item['device']} <= {item['budget_ms']:g} ms] test accuracy {test_acc:.3f}, "
            f"latency table {item['table_latency_ms']:.3f} ms / measured "
            f"{measured if measured is None else round(measured, 3)} ms -> {folder}")
    return result


def _finetune(model: Any, data: Any, steps: int, seed: int, device: Any) -> float:
    """A few SGD steps of the extracted subnet alone (on ``device``); its test accuracy."""
    import torch

    from supernets import accuracy
    from supernets.data import make_loader

    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    done, epoch = 0, 0
    while done < steps:
        for x, y in make_loader(data.train, 64, seed=seed, epoch=epoch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x.to(device)), y.to(device)).backward()
            opt.step()
            done += 1
            if done >= steps:
                break
        epoch += 1
    return accuracy(model.eval(), data.test, device=device)
