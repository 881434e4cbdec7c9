"""Quality of DARTS-style search on digits with the nb201 space, against random architectures.

For each seed: search the supernet with first-order DARTS (derive by argmax, and by
perturbation-based selection from the same supernet) and with PC-DARTS (K=4, edge
normalisation, argmax); train each derived architecture from scratch and 20 random
architectures of the space with the same recipe; report the relative improvement
over the random average, RI = 100 (acc - mean_random) / mean_random (Yang et al.,
"NAS evaluation is frustratingly hard"). Then a latency-aware sweep: the table
latency of the architecture derived with lambda in {0, small, large}, with a table
measured on this CPU for every candidate layer.

Usage: python bench/darts_quality.py [--quick] [--seeds 3] [--random 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import BenchRun  # noqa: E402

from search_spaces import LayerSpec, get_op, get_space  # noqa: E402
from supernets import DartsConfig, DartsSupernet, search_darts, table_latency, train_standalone  # noqa: E402
from supernets.data import load_dataset  # noqa: E402


class MeasuredTable:
    """Per-layer CPU latency (ms, median of repeats, batch 1), measured once per LayerSpec."""

    def __init__(self, repeats: int = 30) -> None:
        self.repeats = repeats
        self.ms: dict[LayerSpec, float] = {}

    def lookup(self, spec: LayerSpec) -> float:
        if spec not in self.ms:
            module = get_op(spec.op).build(spec.in_shape, spec.param_dict).eval()
            x = torch.randn(1, *spec.in_shape)
            times = []
            with torch.no_grad():
                for _ in range(5):
                    module(x)
                for _ in range(self.repeats):
                    start = time.perf_counter()
                    module(x)
                    times.append(time.perf_counter() - start)
            self.ms[spec] = 1000 * statistics.median(times)
        return self.ms[spec]


def _search(space, data, run_dir, epochs, seed, **kw):
    cfg = DartsConfig(epochs=epochs, warmup_epochs=max(1, epochs // 4), batch_size=64, seed=seed,
                      **{k: v for k, v in kw.items() if k not in ("latency_table", "latency_weight")})
    return search_darts(space, cfg, data, run_dir, resume=False, progress=False,
                        latency_table=kw.get("latency_table"), latency_weight=kw.get("latency_weight", 0.0))


def quality(args, space, data, tmp: Path) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    ri: dict[str, list[float]] = {"DARTS (1st order, argmax)": [], "DARTS + perturbation": [],
                                  "PC-DARTS K=4 (argmax)": []}
    ri_median: dict[str, list[float]] = {name: [] for name in ri}
    for seed in range(args.seeds):
        t0 = time.perf_counter()

        def train(arch, seed=seed):
            return train_standalone(space, arch, data, epochs=args.train_epochs, seed=seed).test_accuracy

        rng = np.random.default_rng(1000 + seed)
        random_accs = [train(space.sample(rng)) for _ in range(args.random)]
        mean_random = float(np.mean(random_accs))
        median_random = float(np.median(random_accs))
        plain = _search(space, data, tmp / f"darts{seed}", args.search_epochs, seed)
        perturbed = _search(space, data, tmp / f"darts{seed}", args.search_epochs, seed,
                            derive="perturbation", tune_steps=args.tune_steps, eval_batches=5)
        pc = _search(space, data, tmp / f"pc{seed}", args.search_epochs, seed, partial_channels=4)
        archs = dict(zip(ri, (plain.arch, perturbed.arch, pc.arch), strict=True))
        print(f"seed {seed}: random mean test acc {mean_random:.4f} (sd {np.std(random_accs):.4f}, "
              f"median {median_random:.4f}, min {min(random_accs):.4f}, max {max(random_accs):.4f}, "
              f"n={args.random})")
        for name, arch in archs.items():
            acc = train(arch)
            ri[name].append(100 * (acc - mean_random) / mean_random)
            ri_median[name].append(100 * (acc - median_random) / median_random)
            ops = ",".join(arch[p].replace("nor_conv_", "c").replace("_connect", "").replace("avg_pool_3x3", "pool")
                           for p in sorted(arch))
            print(f"  {name:<28} test acc {acc:.4f}  RI {ri[name][-1]:+.2f}%  "
                  f"(vs median {ri_median[name][-1]:+.2f}%)  [{ops}]")
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return ri, ri_median


def latency_sweep(args, space, data, tmp: Path) -> list[tuple[float, float]]:
    table = MeasuredTable()
    probe = DartsSupernet.from_space(space, num_classes=data.num_classes, input_shape=data.input_shape)
    with torch.no_grad():
        uniform_ms = float(probe.expected_latency(table))  # measures every candidate layer once
    rows = []
    for factor in (0.0, 0.1, 10.0):
        weight = factor / uniform_ms  # lambda * expected latency ~ factor x (cross-entropy scale)
        result = _search(space, data, tmp / f"lat{factor}", args.search_epochs, 0,
                         latency_table=table, latency_weight=weight)
        lat = table_latency(space, result.arch, table, data.input_shape, data.num_classes)
        acc = train_standalone(space, result.arch, data, epochs=args.train_epochs, seed=0).test_accuracy
        rows.append((weight, lat))
        print(f"  lambda {weight:10.4f} /ms: derived table latency {lat:.4f} ms, test acc {acc:.4f}  "
              f"[{','.join(result.arch[p] for p in sorted(result.arch))}]")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode (1 seed, 3 random archs, 2 epochs)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--random", type=int, default=20)
    parser.add_argument("--search-epochs", type=int, default=10)
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("--tune-steps", type=int, default=5)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.random, args.search_epochs, args.train_epochs, args.tune_steps = 1, 3, 2, 1, 1
    run = BenchRun("darts_quality", quick=args.quick)
    torch.set_num_threads(args.threads)
    data = load_dataset("digits")
    space = get_space("nb201", channels=args.channels, cells_per_stage=1, input_shape=data.input_shape)
    print(f"nb201 (channels={args.channels}, 1 cell per stage) on digits 8x8; search {args.search_epochs} "
          f"epochs (first quarter weights only), standalone training {args.train_epochs} epochs; "
          f"{args.seeds} seed(s), {args.random} random archs per seed; {args.threads} thread(s)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ri, ri_median = quality(args, space, data, Path(tmp))
        print("relative improvement over the random-architecture average (mean +- sd over seeds):")
        for name, values in ri.items():
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"  {name:<28} RI {np.mean(values):+.2f}% +- {sd:.2f}  beats random in "
                  f"{sum(v > 0 for v in values)}/{len(values)} seeds; vs the random median "
                  f"{np.mean(ri_median[name]):+.2f}%")
            run.figure(f"{name}: RI over the random mean", round(float(np.mean(values)), 2), "%",
                       note=f"sd {sd:.2f} over {len(values)} seeds")
            run.figure(f"{name}: seeds beating the random mean", f"{sum(v > 0 for v in values)}/{len(values)}")
            run.figure(f"{name}: RI over the random median", round(float(np.mean(ri_median[name])), 2), "%")
        print("latency-aware search (measured per-layer CPU table, seed 0):")
        rows = latency_sweep(args, space, data, Path(tmp))
    monotone = all(b[1] <= a[1] for a, b in zip(rows, rows[1:], strict=False))
    print(f"derived latency monotone non-increasing in lambda: {monotone}")
    print(f"total {time.perf_counter() - start:.0f} s")
    for weight, latency in rows:
        run.figure(f"latency-aware: derived table latency at lambda {weight:.4g}/ms", round(latency, 4), "ms")
    run.figure("latency-aware: derived latency monotone in lambda", str(monotone))
    run.note(f"nb201 channels={args.channels}, 1 cell per stage, digits; search {args.search_epochs} epochs, "
             f"standalone {args.train_epochs} epochs; {args.seeds} seeds, {args.random} random archs per seed")
    best = max(np.mean(v) for v in ri.values())
    run.figure("darts_quality_best_ri_percent", round(float(best), 2), "%", headline=True)
    run.finish()


if __name__ == "__main__":
    main()
