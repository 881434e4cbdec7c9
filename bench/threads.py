"""Torch threads per process: steps/s of the README quickstart's OFA training step with 1
and with 2 intra-op threads, interleaved, and their ratio.

    python bench/threads.py [--quick] [--repeats 5] [--steps 3]

The quickstart's step (``experiments/quickstart.yaml``: ``mobilenetv3_ofa`` width 0.25,
digits, batch 64, the sandwich rule with one random subnet) is timed in blocks of
``--steps`` steps, alternating 1 and 2 threads block by block, so both see the same
machine load; the figures are medians over the blocks. Run it on a quiet and on a
loaded machine: ``supernets.runtime.default_threads`` is chosen from both
(docs/decisions/threads-default.md). The last line is ``threads_2_vs_1_speedup: <x>``
(above 1: two threads are faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _results import ROOT, BenchRun

from nas.experiment import load_experiment
from search_spaces import get_space
from supernets import OFASupernet, Runtime, sandwich_step
from supernets.data import load_dataset, make_loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1 block of 1 step each")
    parser.add_argument("--repeats", type=int, default=5, help="blocks per thread count")
    parser.add_argument("--steps", type=int, default=3, help="training steps per block")
    parser.add_argument("--experiment", default=str(ROOT / "experiments" / "quickstart.yaml"))
    args = parser.parse_args()
    repeats, steps = (1, 1) if args.quick else (args.repeats, args.steps)
    run = BenchRun("threads", quick=args.quick)
    exp = load_experiment(Path(args.experiment), "supernet")
    config = exp.supernet.ofa_config(exp.seed)
    phase = config.phases[0]
    space = get_space(exp.space.name, **exp.space.options)
    data = load_dataset(exp.data.name, exp.data.root, seed=exp.seed)
    rt = Runtime(exp.compute, data_parallel=False, set_threads=False)
    net = rt.prepare(OFASupernet.from_space(space, data.num_classes, data.input_shape,
                                            seed=config.seed)).train()
    opt = torch.optim.SGD(net.parameters(), lr=phase.lr, momentum=config.momentum, nesterov=True)
    batches = [rt.batch(b) for b, _ in zip(make_loader(data.train, config.batch_size,
                                                       seed=exp.seed), range(steps))]
    rates: dict[int, list[float]] = {1: [], 2: []}
    step = 0
    for _ in range(repeats):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            for x, y in batches:
                sandwich_step(net, opt, x, y, phase, config, np.random.default_rng([0, step]),
                              step, rt)
                step += 1
            rates[threads].append(len(batches) / (time.perf_counter() - start))
            print(f"{threads} thread(s): {rates[threads][-1]:.3f} steps/s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    shown = Path(args.experiment).resolve()
    shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    run.note(f"{shown}: batch {config.batch_size}, {repeats} interleaved blocks of "
             f"{len(batches)} steps per thread count, medians; cores {os.cpu_count()}")
    run.figure("steps/s, 1 thread", round(one, 3), "steps/s")
    run.figure("steps/s, 2 threads", round(two, 3), "steps/s")
    run.figure("threads_2_vs_1_speedup", round(two / one, 3), "x", headline=True)
    run.finish()


if __name__ == "__main__":
    main()
