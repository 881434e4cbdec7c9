"""Peak memory and step time of DARTS vs PC-DARTS (K=4) search steps at the same batch.

Each configuration runs in a fresh subprocess (so one cannot inherit the other's
allocator pools). Memory is the increase of the process's peak resident set size
(``resource.getrusage(...).ru_maxrss``) over its resident size after the supernet,
its optimisers and the batch were built, i.e. what the search steps themselves
needed at their peak (activations, gradients, optimiser state). Step time is the
median of the timed first-order search steps (architecture step + weight step).

Usage: python bench/darts_memory.py [--quick] [--batch 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _results import BenchRun

ROOT = Path(__file__).resolve().parents[1]


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(k: int, batch: int, channels: int, layers: int, size: int, steps: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from search_spaces import get_space
    from supernets import DartsConfig, DartsSearch
    from supernets.data import DataSplits

    space = get_space("darts", channels=channels, layers=layers, input_shape=(3, size, size))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    ds = torch.utils.data.TensorDataset(x, y)
    data = DataSplits("synthetic", ds, ds, ds, (3, size, size), 10)
    search = DartsSearch(space, DartsConfig(epochs=1, batch_size=batch, partial_channels=k), data, None, 0.0)
    base = _rss_kib()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        search.arch_step(x, y, x, y)
        search.weight_step(x, y)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"K": k, "peak_increase_mib": (peak - base) / 1024, "base_rss_mib": base / 1024,
            "step_s": statistics.median(times[1:] if len(times) > 1 else times),
            "weights": sum(p.numel() for p in search.net.weight_parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: small network and batch")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--shape", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        batch, channels, layers, size, steps = map(int, args.shape.split(","))
        print(json.dumps(child(args.child, batch, channels, layers, size, steps, args.threads)))
        return
    run = BenchRun("darts_memory", quick=args.quick)
    if args.quick:
        batch, channels, layers, size, steps = args.batch or 4, 8, 3, 16, 2
    else:
        batch, channels, layers, size, steps = args.batch or 32, 16, 5, 32, 4
    shape = f"{batch},{channels},{layers},{size},{steps}"
    print(f"darts space: channels={channels} layers={layers} input 3x{size}x{size}, batch {batch}, "
          f"{steps} first-order search steps (arch + weight), {args.threads} thread(s), "
          "one fresh subprocess per configuration; memory = peak RSS increase over the built model")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rows = []
    for k in (1, 4):
        out = subprocess.run([sys.executable, __file__, "--child", str(k), "--shape", shape,
                              "--threads", str(args.threads)], capture_output=True, text=True, env=env,
                             check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'method':<14}{'K':>3}{'peak +MiB':>12}{'base MiB':>10}{'step s':>9}{'weights':>10}")
    for row in rows:
        name = "DARTS" if row["K"] == 1 else "PC-DARTS"
        print(f"{name:<14}{row['K']:>3}{row['peak_increase_mib']:>12.1f}{row['base_rss_mib']:>10.1f}"
              f"{row['step_s']:>9.3f}{row['weights']:>10}")
    ratio = rows[0]["peak_increase_mib"] / max(rows[1]["peak_increase_mib"], 1e-9)
    speed = rows[0]["step_s"] / rows[1]["step_s"]
    print(f"step time ratio DARTS / PC-DARTS: {speed:.2f}x")
    run.note(f"darts space channels={channels} layers={layers}, input 3x{size}x{size}, batch {batch}, "
             f"{steps} first-order search steps, {args.threads} thread(s)")
    for row in rows:
        name = "DARTS" if row["K"] == 1 else f"PC-DARTS K={row['K']}"
        run.figure(f"{name} peak memory increase", round(row["peak_increase_mib"], 1), "MiB")
        run.figure(f"{name} step", round(row["step_s"], 2), "s")
        run.figure(f"{name} weights", row["weights"], "")
    run.figure("step time DARTS / PC-DARTS", round(speed, 2), "x")
    run.figure("darts_memory_reduction_x", round(ratio, 2), "x", target=">= 2x", headline=True)
    run.finish()


if __name__ == "__main__":
    main()
