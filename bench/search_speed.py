"""Candidates evaluated per second by each search engine on ``mobilenetv3_ofa``.

Objectives: table latency (a real ``hardware.LatencyTable`` when ``hardware`` is
importable, filled with stand-in milliseconds; see bench/_search_problems.py) and a
fitted predictor's accuracy, constraint ``latency_ms <= median``; batched
ask -> evaluate -> tell without storage. Reports, per engine, the total
throughput, the engine's own time (ask + tell) and the objectives' time, then
Optuna's samplers (sequential, in-memory study) and the rate of a search that
writes every evaluation to a SQLite study.

    python bench/search_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import BenchRun  # noqa: E402
from _search_problems import mobilenet_problem  # noqa: E402

from nas.objectives import PredictedAccuracy, TableLatency  # noqa: E402
from nas.search import Problem, get_engine, run_search  # noqa: E402


def fresh(problem: Problem) -> Problem:
    """Same sources (layer table, fitted model), new per-architecture caches."""
    latency, accuracy = problem.objectives
    return Problem(problem.space, [TableLatency(latency.table),
                                   PredictedAccuracy(accuracy.predictor)], problem.constraints)


def ask_tell(problem: Problem, name: str, n: int, batch: int) -> dict[str, float]:
    engine = get_engine(name, problem.space, seed=0,
                        **({"population_size": batch} if name != "random" else {}))
    t_engine = t_obj = 0.0
    done = 0
    while done < n:
        t0 = time.perf_counter()
        archs = engine.ask(batch)
        t1 = time.perf_counter()
        ev = problem.evaluate(archs)
        values = problem.to_minimization(ev.values)
        t2 = time.perf_counter()
        engine.tell(archs, values, ev.violation)
        t3 = time.perf_counter()
        t_engine += (t1 - t0) + (t3 - t2)
        t_obj += t2 - t1
        done += len(archs)
    return {"n": done, "total": done / (t_engine + t_obj), "engine": done / t_engine,
            "objectives": done / t_obj, "engine_us": 1e6 * t_engine / done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    run = BenchRun("search_speed", quick=args.quick)
    torch.set_num_threads(1)
    n, n_optuna, n_store = (2000, 60, 40) if args.quick else (20000, 300, 200)
    batch = 100

    t0 = time.perf_counter()
    try:
        import hardware  # noqa: F401

        real = True
    except ImportError:
        real = False
    problem, _ = mobilenet_problem(real_table=real)
    lut = problem.objectives[0].table
    rng = np.random.default_rng(99)
    problem.evaluate([problem.space.sample(rng) for _ in range(1000 if args.quick else 3000)])
    print(f"setup (fit predictor, fill the layer table by fvcore): {time.perf_counter() - t0:.1f} s; "
          f"table: {type(lut).__module__}.{type(lut).__name__}, {len(lut.table) if not real else len(lut)} layers, "
          "stand-in milliseconds")
    space, archs = problem.space, [problem.space.sample(rng) for _ in range(500)]
    ops = {"sample": lambda a, b: space.sample(rng), "mutate": lambda a, b: space.mutate(a, rng),
           "crossover": lambda a, b: space.crossover(a, b, rng), "layers": lambda a, b: space.layers(a)}
    rates_ops = {}
    for op, fn in ops.items():
        t = time.perf_counter()
        for a, b in zip(archs, archs[1:] + archs[:1], strict=True):
            fn(a, b)
        rates_ops[op] = len(archs) / (time.perf_counter() - t)
    print("search_spaces operations alone (per second): "
          + ", ".join(f"{op} {r:.0f}" for op, r in rates_ops.items()))
    for op, r in rates_ops.items():
        run.figure(f"space.{op}", round(r), "archs/s")
    table, reps = space.decision_table, 20
    x = table.sample_batch(batch, rng)
    xa, xb = table.to_archs(x), table.sample_batch(batch, rng)
    batch_ops = {"sample_batch": lambda: table.sample_batch(batch, rng),
                 "mutate_batch": lambda: table.mutate_batch(x, rng),
                 "crossover_batch": lambda: table.crossover_batch(x, xb, rng),
                 "to_archs": lambda: table.to_archs(x), "encode_batch": lambda: space.encode_batch(xa)}
    rates_batch = {}
    for op, fn in batch_ops.items():
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        rates_batch[op] = reps * batch / (time.perf_counter() - t)
    print(f"decision-table batch operations (architectures per second, batches of {batch}): "
          + ", ".join(f"{op} {r:.0f}" for op, r in rates_batch.items()))
    for op, r in rates_batch.items():
        run.figure(f"decision_table.{op}", round(r), "archs/s", note=f"batches of {batch}")
    print(f"{'engine':<14} {'cands':>6} {'total/s':>9} {'engine/s':>9} {'engine us':>9} {'objectives/s':>12}")
    for name in ("random", "evolution", "nsga2"):
        r = ask_tell(fresh(problem), name, n, batch)
        print(f"{name:<14} {r['n']:>6} {r['total']:>9.0f} {r['engine']:>9.0f} "
              f"{r['engine_us']:>9.1f} {r['objectives']:>12.0f}")
        # the target (engine + batched objectives >= 10,000/s) is set for evolution and NSGA-II
        total = "search_speed_nsga2_candidates_per_s" if name == "nsga2" else f"{name} total"
        run.figure(total, round(r["total"]), "candidates/s", headline=name == "nsga2",
                   target=None if name == "random" else ">= 10000")
        run.figure(f"{name} engine alone", round(r["engine"]), "candidates/s")
        run.figure(f"{name} engine overhead", round(r["engine_us"], 1), "us/candidate")
        run.figure(f"{name} objectives", round(r["objectives"]), "candidates/s")
    for name in ("optuna-tpe", "optuna-nsga2"):
        t = time.perf_counter()
        run_search(fresh(problem), get_engine(name, problem.space, seed=0), n_optuna,
                   batch_size=1, progress=False)
        rate = n_optuna / (time.perf_counter() - t)
        print(f"{name:<14} {n_optuna:>6} {rate:>9.1f}   (sequential, in-memory study, incl. objectives)")
        run.figure(name, round(rate, 1), "trials/s", note="sequential, in-memory study, incl. objectives")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run_search(fresh(problem), get_engine("nsga2", problem.space, seed=0, population_size=20),
                   n_store, batch_size=20, storage=f"sqlite:///{tmp}/s.db", progress=False)
        rate = n_store / (time.perf_counter() - t)
    print(f"nsga2 + SQLite study: {rate:.1f} evaluations/s written (one trial each)")
    run.figure("nsga2 + SQLite study", round(rate, 1), "evaluations/s",
               note="every evaluation written as one trial")
    run.finish()


if __name__ == "__main__":
    main()
