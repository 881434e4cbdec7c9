"""Ray sweeps on this machine: start-up, per-trial overhead, and 1 vs 2 workers.

Measures, on one local Ray with 2 CPUs (``python bench/ray_scaling.py``, ``--quick``):

1. Ray start-up (``ray_session``).
0. Without Ray: the same work in 1 process and in 2 processes at once, i.e. the
   parallelism the (shared) machine offers at that moment.
2. Per-trial overhead: the same small ``nas search`` trials (nb201, params and FLOPs,
   16 evaluations) through ``run_sweep`` with one trial at a time, against
   ``run_trial`` called in a loop in this process: (Ray - in-process) / trials.
3. Scaling: evaluation-bound trials (each candidate costs forward passes of its
   network, ~0.25 s) with 1 and 2 concurrent trials; ratio of throughputs.
4. Evaluation inside one search: the same evaluation-bound search with its batches
   evaluated in this process and on 2 ``RayEvaluator`` actors.

Timings are wall-clock and noisy on a shared machine: compare ratios within one run.
The last line is ``ray_scaling_ratio: R`` (2 workers / 1 worker throughput).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from _results import BenchRun

from nas.objectives import CallableObjective, Params
from nas.search import Problem, get_engine, run_search
from nas.sweep import RayEvaluator, expand_trials, load_sweep, ray_session, run_sweep, run_trial
from search_spaces import get_space

SPACE = {"name": "nb201", "options": {"channels": 16, "cells_per_stage": 1, "input_shape": [1, 16, 16]}}


class ForwardWork:
    """An evaluation-bound objective: ``repeats`` forward passes of each candidate
    network on a fixed batch (a stand-in for supernet accuracy or measured latency)."""

    def __init__(self, space, repeats: int) -> None:
        self.space, self.repeats = space, repeats

    def __call__(self, archs) -> np.ndarray:
        torch.set_num_threads(1)
        x = torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        out = []
        for arch in archs:
            torch.manual_seed(0)
            model = self.space.build(arch).eval()
            with torch.inference_mode():
                for _ in range(self.repeats):
                    y = model(x)
            out.append(float(y.abs().mean()))
        return np.array(out)


def work_problem(repeats: int) -> Problem:
    space = get_space(SPACE["name"], **SPACE["options"])
    return Problem(space, [CallableObjective("work", ForwardWork(space, repeats)), Params(space)])


def work_trial(config) -> None:
    """A Tune trainable: an evaluation-bound random search in the trial's folder."""
    from ray import tune

    spec = config["trial"]
    exp = spec["experiment"]
    problem = work_problem(config["repeats"])
    engine = get_engine("random", problem.space, seed=exp["seed"])
    budget = exp["search"]["evaluations"]
    start = time.perf_counter()
    result = run_search(problem, engine, budget, batch_size=budget,
                        storage=str(Path(spec["trial_dir"]) / "s.db"), study_name="w", resume=True)
    tune.report({"evaluations": len(result), "seconds": time.perf_counter() - start})


def write_sweep(folder: Path, trials: int, budget: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    base = {"name": "bench", "seed": 0, "space": SPACE,
            "search": {"engine": "random", "objectives": [{"type": "params"}, {"type": "flops"}],
                       "evaluations": budget, "batch_size": budget, "study": "b"}}
    (folder / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"name": "bench", "base": "base.yaml", "command": "search",
             "grid": {"seed": list(range(trials))}}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def _plain_work(args: tuple[int, int]) -> float:
    """``n`` candidates of forward work in a plain process (no Ray); returns seconds."""
    n, repeats = args
    torch.set_num_threads(1)
    space = get_space(SPACE["name"], **SPACE["options"])
    archs = [space.sample(np.random.default_rng(i)) for i in range(n)]
    ForwardWork(space, repeats)(archs[:1])  # warm-up
    start = time.perf_counter()
    ForwardWork(space, repeats)(archs)
    return time.perf_counter() - start


def machine_ratio(n: int, repeats: int) -> tuple[float, float, float]:
    """The same work in 1 and in 2 plain processes at once: what the machine gives now."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_plain_work, [(1, 1)] * 2))  # start both processes
        one = list(pool.map(_plain_work, [(n, repeats)]))[0]
        start = time.perf_counter()
        list(pool.map(_plain_work, [(n, repeats)] * 2))
        two = time.perf_counter() - start
    return one, two, 2 * one / two


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: fewer trials")
    parser.add_argument("--trials", type=int, default=8, help="trials per measurement")
    parser.add_argument("--evaluations", type=int, default=24, help="candidates per work trial")
    parser.add_argument("--repeats", type=int, default=10, help="forward passes per candidate")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.evaluations, args.repeats = 2, 6, 2
    run = BenchRun("ray_scaling", quick=args.quick)
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    Path("runs").mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ray_bench_", dir="runs")).resolve()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min load average, 2 cores)")
    one, two, ceiling = machine_ratio(args.evaluations, args.repeats)
    print(f"without Ray, {args.evaluations} candidates in 1 process {one:.1f} s, the same in each "
          f"of 2 processes at once {two:.1f} s -> the machine gives {ceiling:.2f}x now")
    try:
        start = time.perf_counter()
        with ray_session(root / "ray_tmp", num_cpus=2):
            startup = time.perf_counter() - start
            print(f"ray start-up: {startup:.1f} s")

            # 2. per-trial overhead: small real trials, one at a time
            sweep = write_sweep(root / "small", args.trials, 16)
            t_ray, _ = timed(lambda: run_sweep(sweep, output=root / "small" / "ray",
                                               max_concurrent=1, echo=None))
            specs = expand_trials(load_sweep(sweep), root / "small" / "local")
            t_local, _ = timed(lambda: [run_trial(s) for s in specs])
            overhead = (t_ray - t_local) / args.trials
            print(f"{args.trials} small nas-search trials: Ray (1 at a time) {t_ray:.1f} s, "
                  f"in-process {t_local:.1f} s -> Ray overhead {overhead:.2f} s per trial")

            # 3. evaluation-bound trials, 1 vs 2 at a time
            work = write_sweep(root / "work", args.trials, args.evaluations)
            cfg = load_sweep(work)
            import dataclasses

            def run_work(concurrent: int) -> float:
                specs_cfg = dataclasses.replace(cfg, base=str(root / "work" / "base.yaml"))
                out = root / "work" / f"c{concurrent}"
                trainable = _with_repeats(args.repeats)
                seconds, result = timed(lambda: run_sweep(specs_cfg, output=out, echo=None,
                                                          max_concurrent=concurrent,
                                                          trainable=trainable))
                assert result.ok, result.failed
                return seconds, float(result.table["seconds"].mean())

            (t1, in1), (t2, in2) = run_work(1), run_work(2)
            evals = args.trials * args.evaluations
            print(f"{args.trials} evaluation-bound trials x {args.evaluations} candidates "
                  f"({args.repeats} forward passes each): 1 worker {t1:.1f} s "
                  f"({evals / t1:.2f} evals/s), 2 workers {t2:.1f} s ({evals / t2:.2f} evals/s)")
            print(f"  search time inside a trial: {in1:.2f} s with 1 worker, {in2:.2f} s with 2 "
                  f"(equal when the second core is free; longer when other jobs hold it)")
            ratio = t1 / t2

            # 4. one search, batches on 2 actors vs in this process
            budget = args.trials * args.evaluations // 2
            problem = work_problem(args.repeats)
            t_in, _ = timed(lambda: run_search(problem, get_engine("random", problem.space, seed=9),
                                               budget, batch_size=budget // 2))
            problem = work_problem(args.repeats)
            with RayEvaluator(problem, 2) as evaluator:
                evaluator(list(problem.space.sample(np.random.default_rng(1)) for _ in range(2)))
                t_act, _ = timed(lambda: run_search(problem, get_engine("random", problem.space,
                                                                        seed=9),
                                                    budget, batch_size=budget // 2,
                                                    evaluator=evaluator))
            print(f"one search, {budget} candidates in batches of {budget // 2}: in-process "
                  f"{t_in:.1f} s, 2 RayEvaluator actors {t_act:.1f} s -> {t_in / t_act:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    run.note(f"{args.trials} trials, {args.evaluations} candidates per work trial, {args.repeats} "
             "forward passes per candidate; one local Ray with 2 CPUs")
    run.figure("ray start-up", round(startup, 1), "s")
    run.figure("small trials via Ray, 1 at a time", round(t_ray, 1), "s")
    run.figure("small trials in-process", round(t_local, 1), "s")
    run.figure("evaluation-bound trials, 1 worker", round(evals / t1, 2), "evals/s")
    run.figure("evaluation-bound trials, 2 workers", round(evals / t2, 2), "evals/s")
    run.figure("search time inside a trial, 1 worker", round(in1, 2), "s")
    run.figure("search time inside a trial, 2 workers", round(in2, 2), "s")
    run.figure("one search: in-process / 2 RayEvaluator actors", round(t_in / t_act, 2), "x")
    run.figure("machine_ratio_without_ray", round(ceiling, 2), "x", headline=True,
               note="the same work in 2 plain processes vs 1: what the machine offered")
    run.figure("ray_overhead_s_per_trial", round(overhead, 2), "s", headline=True)
    run.figure("ray_scaling_ratio", round(ratio, 2), "x", target=">= 1.7x", headline=True)
    run.finish()


def _with_repeats(repeats: int):
    def trainable(config) -> None:
        work_trial({**config, "repeats": repeats})

    return trainable


if __name__ == "__main__":
    main()
