"""Search quality on real NAS-Bench-201 tables: hypervolume gap and regret at 100 and 300 evaluations.

Problems (bench/_search_problems.py, data from ../shared/data/nb201): maximise the
200-epoch test accuracy on CIFAR-100, and separately ImageNet16-120, and minimise the
measured latency of one device: an RTX 2080 Ti at batch 1 and at batch 256, a Xeon Gold
6240 and a Samsung A50 phone. Every engine of the project runs with its **default**
settings for the budget (``nas.search.make_engine(name, problem, budget=...)``, batches
of ``nas.search.default_batch_size(budget)``); Optuna's NSGA-II and TPE samplers (the
``optuna-nsga2``/``optuna-tpe`` engines, one trial per ask, their best setting) and random
search are the baselines. Optuna's GP is left out (seconds per multi-objective trial).
The guided engine is told that latency is cheap (a table) and accuracy expensive.

Metrics, mean over seeds: the hypervolume gap ``1 - HV / HV(true front)`` on objectives
normalised to [0, 1] over all 15,625 cells (reference point (1, 1)), and the regret: the
true best accuracy under the latency of the 10%, 25% and 50% quantile of all cells minus
the best found under it, in accuracy points (mean of the three). Engines whose behaviour
does not depend on the budget (random, Optuna's) are run once for 300 evaluations and
read at 100 as well.

Each (problem, engine, budget, seed) is one job whose result is written to
``bench/out/search_quality/<job>.json``: a rerun skips finished jobs (resumable), and
jobs run in ``--jobs`` processes (parallel-safe: one file per job, written atomically).

    python bench/search_quality.py [--seeds 10] [--jobs 2] [--quick] [--tune]

``--tune`` runs the same on the tuning devices (titanx batch 1, titanxp batch 256,
Xeon Silver 4114, Essential phone) with seeds 100.., the data the defaults were chosen on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

# one BLAS thread per job process: jobs run in parallel, and a multi-threaded BLAS on a
# shared machine made each small GP fit ~10x slower (set before numpy is imported)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this checkout's packages
from _results import BenchRun  # noqa: E402
from _search_problems import (  # noqa: E402
    DATASETS,
    NB201_DATA,
    REPORT_DEVICES,
    TUNE_DEVICES,
    nb201_table_problem,
)

OUT = Path(os.environ.get("SEARCH_QUALITY_OUT", Path(__file__).parent / "out" / "search_quality"))
ENGINES = ("guided", "nsga2", "evolution", "random", "optuna-nsga2", "optuna-tpe")
BASELINES = ("random", "optuna-nsga2", "optuna-tpe")
BUDGETS = (100, 300)
BUDGET_FREE = {"random", "optuna-nsga2", "optuna-tpe"}  # same proposals whatever the budget


def _job_name(dataset: str, device: str, engine: str, budget: int, seed: int, tag: str) -> str:
    return f"{tag}{dataset}-{device}-{engine}-{budget}-{seed}"


def run_job(dataset: str, device: str, engine: str, budget: int, seed: int, path: str,
            options: dict) -> dict:
    """One search; returns its metrics at every budget it covers and its engine time."""
    import torch

    from nas.search import default_batch_size, hypervolume, make_engine, run_search

    torch.set_num_threads(1)
    problem, truth = nb201_table_problem(dataset, device, path)
    extra = {"cheap": ["latency_ms"]} if engine == "guided" else {}
    eng = make_engine(engine, problem, seed=seed, budget=budget, **extra, **options)
    batch = 1 if engine.startswith("optuna") else default_batch_size(budget)
    evaluate = problem.evaluate
    spent = [0.0]

    def timed(archs):  # evaluation time, to separate the engine's own time
        t = time.perf_counter()
        out = evaluate(archs), {}
        spent[0] += time.perf_counter() - t
        return out

    t0 = time.perf_counter()
    result = run_search(problem, eng, budget, batch_size=batch, progress=False, evaluator=timed)
    wall = time.perf_counter() - t0
    hist = result.history
    acc, lat = hist["accuracy"].to_numpy(float), hist["latency_ms"].to_numpy(float)
    metrics = {}
    for b in BUDGETS if engine in BUDGET_FREE else (budget,):
        if b > len(acc):
            continue
        pts = truth.normalise(acc[:b], lat[:b])
        gap = 1.0 - hypervolume(pts, [1.0, 1.0]) / truth.front_hv
        regret = []
        for limit, best in zip(truth.latency_budgets, truth.best_under, strict=True):
            ok = lat[:b] <= limit
            found = acc[:b][ok].max() if ok.any() else float(truth.accuracy.min())
            regret.append(best - found)
        metrics[str(b)] = {"hv_gap": float(gap), "regret": [float(r) for r in regret]}
    return {"metrics": metrics, "evaluations": int(len(acc)), "wall_s": wall,
            "engine_s_per_eval": (wall - spent[0]) / max(len(acc), 1)}


def _run_and_store(name: str, args: tuple) -> tuple[str, dict]:
    out = run_job(*args)
    path = OUT / f"{name}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"job": list(args[:5]), **out}))
    tmp.replace(path)  # atomic: a killed job leaves no half file
    return name, out


def _jobs(devices, seeds, engines, tag, path, options, datasets=tuple(DATASETS)) -> dict[str, tuple]:
    jobs = {}  # seed-major: a run stopped early has every problem on its first seeds
    for seed in seeds:
        for dataset in datasets:
            for device in devices:
                for engine in engines:
                    for budget in ((max(BUDGETS),) if engine in BUDGET_FREE else BUDGETS):
                        name = _job_name(dataset, device, engine, budget, seed, tag)
                        jobs[name] = (dataset, device, engine, budget, seed, path,
                                      options.get(engine, {}))
    return jobs


def _collect(jobs: dict[str, tuple]) -> dict[tuple, list[dict]]:
    """(dataset, device, engine, budget) -> metrics of each finished seed."""
    table: dict[tuple, list[dict]] = {}
    for name, args in jobs.items():
        path = OUT / f"{name}.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        for b, m in record["metrics"].items():
            table.setdefault((*args[:3], int(b)), []).append(
                {**m, "engine_s_per_eval": record["engine_s_per_eval"]})
    return table


def _report(run: BenchRun, table: dict[tuple, list[dict]], devices, engines, datasets) -> None:
    print("\nHV gap (1 - HV/HV true, normalised) and regret (accuracy points, mean of the "
          "10/25/50% latency quantiles), mean over seeds; engine s/eval: engine time per evaluation")
    print(f"{'dataset':<10} {'device':<12} {'budget':>6}  " + "".join(f"{e:>22}" for e in engines))
    verdicts = []
    for dataset in datasets:
        for device in devices:
            for budget in BUDGETS:
                cells, stats = [], {}
                for engine in engines:
                    runs = table.get((dataset, device, engine, budget), [])
                    if not runs:
                        cells.append("-")
                        continue
                    gap = float(np.mean([r["hv_gap"] for r in runs]))
                    regret = float(np.mean([np.mean(r["regret"]) for r in runs]))
                    stats[engine] = (gap, regret, len(runs))
                    cells.append(f"{gap:.4f} / {regret:.2f} ({len(runs)})")
                    key = f"{dataset} {device} @{budget} {engine}"
                    run.figure(f"{key} hv_gap", round(gap, 5), "", note=f"{len(runs)} seeds")
                    run.figure(f"{key} regret", round(regret, 3), "accuracy points")
                print(f"{dataset:<10} {device:<12} {budget:>6}  " + "".join(f"{c:>22}" for c in cells))
                verdicts.append(_verdict(stats, dataset, device, budget))
    met = [v for v in verdicts if v is not None]
    if met:
        run.figure("guided meets the target (problems x budgets)", f"{sum(met)}/{len(met)}", "",
                   target="all", met=all(met))
    speed = [r["engine_s_per_eval"] for (_, _, e, _), rs in table.items() if e == "guided" for r in rs]
    if speed:
        run.figure("guided engine seconds per evaluation", round(float(np.mean(speed)), 4), "s",
                   note=f"mean over {len(speed)} runs; max {max(speed):.3f}", headline=True)


def _verdict(stats: dict, dataset: str, device: str, budget: int) -> bool | None:
    """The target: guided halves the best baseline's gap and regret at 300, never worse at 100."""
    base = [stats[b] for b in BASELINES if b in stats]
    if "guided" not in stats or not base:
        return None
    gap, regret, _ = stats["guided"]
    best_gap, best_regret = min(b[0] for b in base), min(b[1] for b in base)
    factor = 0.5 if budget == max(BUDGETS) else 1.0
    return bool(gap <= factor * best_gap and regret <= factor * best_regret + 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per problem and engine (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), help="engines to run")
    parser.add_argument("--devices", nargs="+", help="devices (default: the four reported ones)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS),
                        help="datasets (default both)")
    parser.add_argument("--tune", action="store_true", help="the tuning devices and seeds 100..")
    parser.add_argument("--options", default="{}", help='JSON engine options, e.g. \'{"guided": {...}}\'')
    parser.add_argument("--data", default=str(NB201_DATA), help="path of nb201.csv.gz")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 1 device")
    args = parser.parse_args()
    devices = args.devices or list(TUNE_DEVICES if args.tune else REPORT_DEVICES)
    first = 100 if args.tune else 0
    seeds = range(first, first + (2 if args.quick else args.seeds))
    if args.quick:
        devices = devices[:1]
    options = json.loads(args.options)
    variant = f"opt{zlib.crc32(args.options.encode()):08x}" if options else ""
    tag = ("tune-" if args.tune else "") + (f"{variant}-" if variant else "")
    run = BenchRun("search_quality" + ("_tune" if args.tune else "") + (f"_{variant}" if variant else ""),
                   quick=args.quick)
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(devices, seeds, args.engines, tag, args.data, options, args.datasets)
    todo = {n: a for n, a in jobs.items() if not (OUT / f"{n}.json").is_file()}
    print(f"{len(jobs)} jobs, {len(jobs) - len(todo)} already done, {args.jobs} processes", flush=True)
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    with ProcessPoolExecutor(args.jobs) as pool, tqdm(total=len(todo), desc="search jobs") as bar:
        futures = [pool.submit(_run_and_store, n, a) for n, a in todo.items()]
        for fut in as_completed(futures):
            fut.result()
            bar.update(1)
    print(f"ran {len(todo)} jobs in {time.perf_counter() - t0:.0f} s")
    _report(run, _collect(jobs), devices, args.engines, args.datasets)
    run.note(f"seeds {list(seeds)}; devices {devices}; engines {args.engines}; options {options}")
    run.finish()


if __name__ == "__main__":
    main()
