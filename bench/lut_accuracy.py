"""How well a latency table predicts measured whole-network latency on this machine.

For each thread count: build a ``LatencyTable`` of ``mobilenetv3_ofa`` at one
resolution (timing the build), then measure ``n`` random subnets end to end,
interleaved (round-robin) with the same robust statistic as the table, and
report MAPE, the share within +-10%, Kendall tau and Spearman rho.

    python bench/lut_accuracy.py                      # width 1.0, 128 px, threads 1 and 2, n=100
    python bench/lut_accuracy.py --quick              # smoke run
    python bench/lut_accuracy.py --clock thread --threads 1
    python bench/lut_accuracy.py --build-only --resolutions 128 160 192 224

Last line: ``lut_accuracy: <share within +-10% at the first thread count>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware import LatencyTable, Profiler, get_device, validate  # noqa: E402
from search_spaces import get_space  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=128, help="input H=W")
    parser.add_argument("--resolutions", type=int, nargs="+", default=None,
                        help="resolution decisions of the space (default: just --resolution)")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clock", default="wall", choices=("wall", "thread"))
    parser.add_argument("-n", type=int, default=100, help="random subnets to validate on")
    parser.add_argument("--group-size", type=int, default=100,
                        help="subnets timed round-robin together (default 100: all of them)")
    parser.add_argument("--statistic", default="p10")
    parser.add_argument("--calibration", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-only", action="store_true", help="only time the table build")
    parser.add_argument("--plot-dir", type=Path, default=None, help="write scatter PNGs here")
    parser.add_argument("--quick", action="store_true", help="smoke run: width 0.5, 64 px, n=20")
    args = parser.parse_args()
    if args.quick:
        args.width_mult, args.resolution, args.n, args.calibration = 0.5, 64, 20, 4

    resolutions = args.resolutions or [args.resolution]
    space = get_space("mobilenetv3_ofa", width_mult=args.width_mult, resolutions=resolutions)
    shape = (3, args.resolution, args.resolution)
    print(f"space mobilenetv3_ofa width_mult={args.width_mult} resolutions={resolutions} "
          f"input {shape} classes {args.num_classes}; clock {args.clock}; statistic {args.statistic}; "
          f"n={args.n} (round-robin groups of {args.group_size}); torch {torch.__version__}")
    first_share = None
    for threads in args.threads:
        options = {"threads": threads} | ({"clock": args.clock} if args.clock != "wall" else {})
        device = get_device("cpu", **options)
        torch.set_num_threads(threads)
        profiler = Profiler(statistic=args.statistic)
        start = time.perf_counter()
        table = LatencyTable.build(space, device, shape, num_classes=args.num_classes,
                                   profiler=profiler, n_calibration=args.calibration,
                                   rng=args.seed, progress=False)
        build_s = time.perf_counter() - start
        cal = table.calibration
        print(f"[threads={threads}] table: {len(table)} layers built in {build_s:.1f} s; "
              f"noise floor {table.metadata['noise_floor_ms']:.4f} ms; calibration {cal['model']} "
              f"a={cal['a']:.3f} b={cal['b']:.3f} ms; plain sum / measured = {cal['sum_over_measured']:.3f}")
        if args.build_only:
            continue
        start = time.perf_counter()
        report = validate(table, n=args.n, rng=np.random.default_rng(args.seed + 1),
                          device=device, profiler=profiler, group_size=args.group_size,
                          progress=False)
        val_s = time.perf_counter() - start
        raw = table.predict_raw([space.validate(a) for a in _archs(space, args)])
        raw_mape = 100 * float(np.mean(np.abs(raw - report.measured_ms) / report.measured_ms))
        print(f"[threads={threads}] {report.summary()}  (uncalibrated sum: MAPE {raw_mape:.1f}%; "
              f"measured {report.measured_ms.min():.2f}-{report.measured_ms.max():.2f} ms; "
              f"validation took {val_s:.0f} s)")
        if args.plot_dir:
            path = report.plot(args.plot_dir / f"lut_accuracy_t{threads}_{args.clock}.png")
            print(f"[threads={threads}] wrote {path}")
        if first_share is None:
            first_share = report.within_10
    if first_share is not None:
        print(f"lut_accuracy: {first_share:.3f}")
    else:
        print("lut_accuracy: build-only")


def _archs(space, args):
    gen = np.random.default_rng(args.seed + 1)  # the archs validate() sampled
    return [space.sample(gen) for _ in range(args.n)]


if __name__ == "__main__":
    main()
