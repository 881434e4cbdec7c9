"""``run_experiment``: the whole hardware-aware pipeline of one experiment file.

Stages, each cached in the run directory under a key of its inputs (see
:mod:`nas.run._stages`): supernet -> latency table per device -> predictor ->
random baseline -> one constrained search per (device, budget) -> export -> report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from nas.config import to_dict
from nas.errors import ConfigError
from nas.objectives import PredictedAccuracy, SupernetAccuracy, TableLatency
from nas.run._config import ExperimentConfig
from nas.run._stages import StageCache, atomic_write_text, stable_hash
from nas.search import Problem, get_engine, run_search
from search_spaces import Architecture, SearchSpace, get_space

__all__ = ["RunResult", "run_experiment"]


@dataclass
class RunResult:
    """What a run produced: chosen subnets per (device, budget) and the stage timings."""

    run_dir: Path
    chosen: list[dict[str, Any]]
    baseline: dict[str, Any]
    predictor_quality: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)


class _Logger:
    def __init__(self, path: Path, echo: bool) -> None:
        self.path, self.echo = path, echo

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self.path.open("a") as fh:
            fh.write(f"{stamp} {line}\n")
        if self.echo:
            print(line, flush=True)


def run_experiment(cfg: ExperimentConfig, run_dir: str | Path, progress: bool | None = None,
                   echo: bool = True,
                   make_evaluator: Callable[[Problem], Any] | None = None) -> RunResult:
    """Run (or continue) an experiment in ``run_dir``; finished stages are reused.

    Args:
        cfg: the validated experiment.
        run_dir: output folder (created); re-running with the same folder skips every
            stage whose inputs did not change and continues an interrupted one.
        progress: progress bars (default: on a terminal).
        echo: print the one-line stage summaries (always written to ``run.log``).
        make_evaluator: builds the batch evaluator of each search from its problem (see
            ``run_search(evaluator=...)``; e.g. ``nas.sweep.RayEvaluator``); one with a
            ``close()`` method is closed when its search ends. Default: in this process.
    """
    from supernets.data import load_dataset

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    log = _Logger(run_dir / "run.log", echo)
    cache = StageCache(run_dir, log)
    ctx = _Context(cfg, run_dir, cache, log, progress)
    ctx.make_evaluator = make_evaluator
    ctx.data = load_dataset(cfg.data.name, cfg.data.root, seed=cfg.seed)
    ctx.space = get_space(cfg.space.name, **cfg.space.options)
    log(f"[setup] space {ctx.space.name} ({ctx.space.size():.3g} archs), data {ctx.data.name} "
        f"{len(ctx.data.train)}/{len(ctx.data.val)}/{len(ctx.data.test)}, input {ctx.data.input_shape}")
    ctx.supernet_stage()
    ctx.table_stages()
    quality = ctx.predictor_stage()
    baseline = ctx.baseline_stage()
    chosen = ctx.search_stages()
    chosen = ctx.export_stage(chosen)
    from nas.run._report import write_report

    write_report(ctx, chosen, baseline, quality)
    log(f"[done] {len(chosen)} subnets in {run_dir}; report: {run_dir / 'report.md'}")
    return RunResult(run_dir, chosen, baseline, quality, dict(cache.timings))


class _Context:
    """State shared by the stages of one run."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, cache: StageCache,
                 log: Callable[[str], None], progress: bool | None) -> None:
        self.cfg, self.run_dir, self.cache, self.log, self.progress = cfg, run_dir, cache, log, progress
        self.data: Any = None
        self.space: SearchSpace | None = None
        self.supernet: Any = None
        self.keys: dict[str, str] = {}
        self.tables: dict[str, Any] = {}
        self.predictor: Any = None
        self.make_evaluator: Callable[[Problem], Any] | None = None

    def bar(self, iterable, **kw):
        return tqdm(iterable, disable=None if self.progress is None else not self.progress, **kw)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.input_shape)

    # supernet ----------------------------------------------------------------
    def supernet_stage(self) -> None:
        from supernets import OFATrainConfig, load_supernet, train_supernet

        cfg = self.cfg
        if cfg.supernet.checkpoint is not None:
            ckpt = Path(cfg.supernet.checkpoint)
            self.supernet, meta = load_supernet(ckpt, self.space)  # refuses another space
            if tuple(meta["input_shape"]) != self.shape or meta["num_classes"] != self.data.num_classes:
                raise ConfigError(
                    f"supernet.checkpoint: {ckpt} was trained on input {tuple(meta['input_shape'])} with "
                    f"{meta['num_classes']} classes, but data {self.data.name!r} has {self.shape} and "
                    f"{self.data.num_classes}")
            self.keys["supernet"] = stable_hash("checkpoint", str(ckpt.resolve()), meta.get("step"))
            self.log(f"[supernet] loaded {ckpt}")
            return
        train_cfg = OFATrainConfig.from_dict(
            {**cfg.supernet.train, "space": cfg.space.name, "space_options": dict(cfg.space.options),
             "data": cfg.data.name, "data_root": cfg.data.root, "seed": cfg.seed},
            where="supernet.train")
        key = stable_hash(train_cfg.to_dict(), self.space.fingerprint)
        folder = self.run_dir / "supernet" / key

        def train() -> dict[str, Any]:
            result = train_supernet(self.space, train_cfg, self.data, folder, resume=True,
                                    progress=self.progress)
            summary = {"dir": str(folder), "steps": int(getattr(result, "steps", 0) or 0)}
            self.log(f"[supernet] trained {summary['steps']} steps -> {folder}")
            return summary

        self.cache.run("supernet", key, train)
        self.supernet, _ = load_supernet(folder, self.space)
        self.keys["supernet"] = key

    # latency tables ------------------------------------------------------------
    def table_stages(self) -> None:
        from hardware import LatencyTable, Profiler, get_device

        for dev in self.cfg.devices:
            if dev.table is not None:
                device = get_device(dev.kind, **dev.options)
                table = LatencyTable.load(dev.table, space=self.space, device=device,
                                          input_shape=self.shape)
                self.keys[f"table-{dev.name}"] = stable_hash("table", str(Path(dev.table).resolve()))
                self.log(f"[table {dev.name}] loaded {dev.table} ({len(table)} layers)")
                self.tables[dev.name] = table
                continue
            key = stable_hash(self.space.fingerprint, dev.kind, dev.options, dev.profiler,
                              self.shape, self.data.num_classes, dev.n_calibration, self.cfg.seed)
            path = self.run_dir / "tables" / f"{dev.name}-{key}.csv"

            def build(dev=dev, path=path) -> dict[str, Any]:
                device = get_device(dev.kind, **dev.options)
                table = LatencyTable.build(
                    self.space, device, self.shape, self.data.num_classes,
                    profiler=Profiler(**dev.profiler), n_calibration=dev.n_calibration,
                    rng=self.cfg.seed, progress=self.progress, space_options=dict(self.cfg.space.options))
                table.save(path)
                cal = table.calibration
                self.log(f"[table {dev.name}] {len(table)} layers profiled; calibration {cal.get('model', cal)}")
                return {"path": str(path), "layers": len(table)}

            self.cache.run(f"table-{dev.name}", key, build)
            self.tables[dev.name] = LatencyTable.load(path, space=self.space, input_shape=self.shape)
            self.keys[f"table-{dev.name}"] = key

    # predictor -----------------------------------------------------------------------
    def evaluate(self, archs: list[Architecture], split: str = "val", desc: str = "evaluating") -> np.ndarray:
        from supernets import evaluate_subnet

        return np.array([evaluate_subnet(self.supernet, a, self.data, split, seed=self.cfg.seed)
                         for a in self.bar(archs, desc=desc, unit="subnet")])

    def distinct_archs(self, n: int, seed_offset: int) -> list[Architecture]:
        rng = np.random.default_rng([self.cfg.seed, seed_offset])
        archs: dict[str, Architecture] = {}
        for _ in range(50 * n):
            arch = self.space.sample(rng)
            archs.setdefault(arch.key, arch)
            if len(archs) == n:
                break
        return list(archs.values())

    def predictor_stage(self) -> dict[str, float]:
        from predictors import evaluate_predictor, get_predictor, load_predictor

        pcfg = self.cfg.predictor
        key = stable_hash(self.keys["supernet"], to_dict(pcfg), self.cfg.seed)
        folder = self.run_dir / "predictor" / key
        first_table = self.tables[self.cfg.devices[0].name]

        def make() -> dict[str, Any]:
            archs = self.distinct_archs(pcfg.train_archs, 1)
            acc = self.evaluate(archs, "val", "supernet accuracy")
            folder.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"arch_key": [a.key for a in archs], "arch": [a.to_json() for a in archs],
                          "val_accuracy": acc}).to_csv(folder / "samples.csv", index=False)
            n_hold = int(round(len(archs) * pcfg.holdout))
            quality: dict[str, float] = {}
            if n_hold >= 5:
                probe = self._new_predictor(get_predictor, first_table)
                probe.fit(archs[n_hold:], acc[n_hold:])
                quality = {k: float(v) for k, v in
                           evaluate_predictor(probe, archs[:n_hold], acc[:n_hold]).items()}
            predictor = self._new_predictor(get_predictor, first_table).fit(archs, acc)
            predictor.save(folder / "predictor.npz")
            self.log(f"[predictor] {pcfg.name} on {len(archs)} subnets (val acc {acc.mean():.3f} +- "
                     f"{acc.std():.3f}); held-out: " + ", ".join(f"{k} {v:.3f}" for k, v in quality.items()))
            return {"path": str(folder / "predictor.npz"), "quality": quality}

        result = self.cache.run("predictor", key, make)
        self.predictor = load_predictor(result["path"], self.space)
        self.keys["predictor"] = key
        return result["quality"]

    def _new_predictor(self, get_predictor, table) -> Any:
        pcfg = self.cfg.predictor
        predictor = get_predictor(pcfg.name, self.space, seed=self.cfg.seed, **pcfg.options)
        if pcfg.pretrain_archs > 0:
            if not hasattr(predictor, "pretrain"):
                raise ConfigError(f"predictor.pretrain_archs: predictor {pcfg.name!r} cannot be pretrained")
            predictor.pretrain(self.distinct_archs(pcfg.pretrain_archs, 2), latency=table)
        return predictor

    # random baseline ---------------------------------------------------------------------
    def baseline_stage(self) -> dict[str, Any]:
        n = self.cfg.report.random_archs
        key = stable_hash(self.keys["supernet"], n, self.cfg.seed, sorted(self.keys))

        def make() -> dict[str, Any]:
            archs = self.distinct_archs(n, 3) if n else []
            frame = pd.DataFrame({"arch_key": [a.key for a in archs], "arch": [a.to_json() for a in archs]})
            frame["test_accuracy"] = self.evaluate(archs, "test", "random baseline") if archs else []
            for name, table in self.tables.items():
                frame[f"latency_ms_{name}"] = table.predict(archs) if archs else []
            path = self.run_dir / "random_baseline.csv"
            frame.to_csv(path, index=False)
            summary = {"path": str(path), "n": n,
                       "mean_test_accuracy": float(frame["test_accuracy"].mean()) if n else None}
            self.log(f"[baseline] {n} random subnets: mean test accuracy "
                     f"{summary['mean_test_accuracy'] if n else float('nan'):.3f}")
            return summary

        return self.cache.run("baseline", key, make)

    # search --------------------------------------------------------------------------------
    def budgets(self, device: str) -> list[float]:
        if self.cfg.search.budgets_ms:
            return [float(b) for b in self.cfg.search.budgets_ms]
        archs = [self.space.sample(np.random.default_rng([self.cfg.seed, 4, i])) for i in range(500)]
        latency = self.tables[device].predict(archs)
        return [float(f"{q:.4g}") for q in np.quantile(latency, self.cfg.search.budget_quantiles)]

    def search_stages(self) -> list[dict[str, Any]]:
        scfg = self.cfg.search
        chosen = []
        for device in self.cfg.search_devices:
            for budget in self.budgets(device):
                key = stable_hash(self.keys["predictor"], self.keys[f"table-{device}"], to_dict(scfg),
                                  budget, self.cfg.seed)
                name = f"search-{device}-{budget:g}ms"
                chosen.append(self.cache.run(name, key, lambda d=device, b=budget, k=key: self._search(d, b, k)))
        return chosen

    def _search(self, device: str, budget: float, key: str) -> dict[str, Any]:
        scfg = self.cfg.search
        if scfg.accuracy == "predicted":
            accuracy = PredictedAccuracy(self.predictor, name="accuracy")
        else:
            accuracy = SupernetAccuracy(lambda archs: self.evaluate(list(archs), "val"), name="accuracy")
        latency = TableLatency(self.tables[device], name="latency_ms")
        problem = Problem(self.space, [accuracy, latency], [f"latency_ms <= {budget:g}"])
        engine = get_engine(scfg.engine, self.space, seed=self.cfg.seed, **scfg.options)
        storage = (scfg.storage if "://" in scfg.storage  # a shared RDB (PostgreSQL) URL
                   else f"sqlite:///{(self.run_dir / scfg.storage).resolve()}")
        study = f"{self.cfg.name}-{device}-{budget:g}ms-{key}"
        evaluator = self.make_evaluator(problem) if self.make_evaluator is not None else None
        try:
            result = run_search(problem, engine, scfg.evaluations, batch_size=scfg.batch_size,
                                storage=storage, study_name=study, resume=True,
                                provenance={"predictor": self.keys["predictor"], "device": device},
                                progress=self.progress, evaluator=evaluator)
        finally:
            if hasattr(evaluator, "close"):
                evaluator.close()
        folder = self.run_dir / "searches" / f"{device}-{budget:g}ms"
        result.export(folder)
        front = result.front
        if front.empty:
            raise ConfigError(f"search: no architecture meets latency_ms <= {budget:g} on {device}; "
                              "raise the budget")
        best = front.loc[front["accuracy"].idxmax()]
        self.log(f"[search {device} <= {budget:g} ms] {len(result)} evaluated, front {len(front)}, "
                 f"best predicted accuracy {best['accuracy']:.3f} at {best['latency_ms']:.3f} ms")
        return {"device": device, "budget_ms": budget, "study": study, "storage": storage,
                "history": str(folder / "history.csv"), "arch": best["arch"],
                "predicted_accuracy": float(best["accuracy"]), "table_latency_ms": float(best["latency_ms"])}

    # export ---------------------------------------------------------------------------------
    def export_stage(self, chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in chosen:
            arch = Architecture.from_json(item["arch"])
            key = stable_hash(self.keys["supernet"], item, to_dict(self.cfg.export), self.cfg.report.remeasure)
            name = f"export-{item['device']}-{item['budget_ms']:g}ms"
            out.append(self.cache.run(name, key, lambda a=arch, i=item: self._export(a, i)))
        return out

    def _export(self, arch: Architecture, item: dict[str, Any]) -> dict[str, Any]:
        from hardware import Profiler, get_device
        from nas.run._export import export_subnet
        from supernets import evaluate_subnet

        test_acc = evaluate_subnet(self.supernet, arch, self.data, "test", seed=self.cfg.seed)
        model = self.supernet.extract(arch)
        if self.cfg.export.finetune_steps:
            test_acc = _finetune(model, self.data, self.cfg.export.finetune_steps, self.cfg.seed)
        folder = self.run_dir / "subnets" / f"{item['device']}-{item['budget_ms']:g}ms"
        files = export_subnet(model, self.space, arch, folder, self.shape, self.data.num_classes,
                              self.cfg.export.formats, dict(self.cfg.space.options), self.cfg.seed)
        cost = self.space.complexity(arch, self.shape, self.data.num_classes)
        measured = None
        if self.cfg.report.remeasure:
            dev = next(d for d in self.cfg.devices if d.name == item["device"])
            device = get_device(dev.kind, **dev.options)
            measured = Profiler(**dev.profiler).measure(model.eval(), self.shape, device).value_ms
        result = {**item, "test_accuracy": float(test_acc), "measured_latency_ms": measured,
                  "flops": int(cost.flops), "params": int(cost.params), "files": files,
                  "dir": str(folder)}
        atomic_write_text(folder / "summary.json", json.dumps(result, indent=1))
        self.log(f"[export {item['device']} <= {item['budget_ms']:g} ms] test accuracy {test_acc:.3f}, "
                 f"latency table {item['table_latency_ms']:.3f} ms / measured "
                 f"{measured if measured is None else round(measured, 3)} ms -> {folder}")
        return result


def _finetune(model, data, steps: int, seed: int) -> float:
    """A few SGD steps of the extracted subnet alone; returns its test accuracy."""
    import torch
    from torch.utils.data import DataLoader

    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(data.train, batch_size=64, shuffle=True, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    done = 0
    while done < steps:
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            done += 1
            if done >= steps:
                break
    model.eval()
    with torch.inference_mode():
        x, y = data.test.tensors
        return float((model(x).argmax(1) == y).float().mean())
