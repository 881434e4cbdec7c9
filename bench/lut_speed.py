"""Architectures predicted per second by ``LatencyTable.predict`` on a batch of 10,000.

Baselines, on the same architectures and table:

* straightforward: for each arch, ``sum(lut[spec.key] for spec in space.layers(arch))``
  (a Python dict lookup per layer, layers derived per arch);
* lookup-only: the same sum over per-arch key lists computed beforehand, i.e. the
  dict lookups alone (a lower bound for any per-arch Python loop that still has to
  derive the layers somewhere).

The table's latencies are made up (the speed does not depend on them) unless
``--table FILE`` points to a built table of the same space.

    python bench/lut_speed.py            # full mobilenetv3_ofa space, batch 10,000
    python bench/lut_speed.py --quick

Last line: ``lut_speed: <archs per second, vectorised, warm index>``.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import BenchRun  # noqa: E402

from hardware import LatencyTable, fit_calibration, get_device  # noqa: E402
from search_spaces import get_space  # noqa: E402


def synthetic_table(space, shape, classes) -> LatencyTable:
    specs = space.realisable_layers(shape, classes).specs
    rows = [{"key": s.key, "op": s.op, "params": "{}", "in_shape": "", "out_shape": "",
             "latency_ms": 0.01 + zlib.crc32(s.key.encode()) % 997 / 100, "min_ms": 0.0, "p10_ms": 0.0,
             "median_ms": 0.0, "p90_ms": 0.0, "mean_ms": 0.0, "n_runs": 1} for s in specs]
    device = get_device("cpu")
    meta = {"format": "hwnas-latency-table", "version": 1,
            "space": {"name": space.name, "fingerprint": space.fingerprint, "options": {},
                      "enumeration": {"method": "grammar", "n_samples": 0}},
            "device": device.fingerprint(), "device_options": device.options(),
            "input_shape": list(shape), "num_classes": classes, "statistic": "p10",
            "created": "synthetic", "calibration": {**fit_calibration([1, 2, 3], [1.2, 2.3, 3.4])}}
    return LatencyTable(pd.DataFrame(rows, columns=list(LatencyTable.COLUMNS)), meta, space)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=1000, help="archs timed for the slow baseline")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--table", type=Path, default=None, help="a built table of the full OFA space")
    parser.add_argument("--quick", action="store_true", help="batch 1,000, baseline 100")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.baseline, args.repeats = 1000, 100, 2
    run = BenchRun("lut_speed", quick=args.quick)
    torch.set_num_threads(1)

    space = get_space("mobilenetv3_ofa")
    shape = (3, 224, 224)
    table = LatencyTable.load(args.table, space=space) if args.table else synthetic_table(space, shape, 1000)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(args.batch)]
    print(f"space mobilenetv3_ofa (default options: width 1.0, resolutions 128-224), input {shape}, "
          f"table of {len(table)} layers, batch {args.batch}")

    start = time.perf_counter()
    predicted = table.predict(archs)
    cold = time.perf_counter() - start
    warm = best_of(lambda: table.predict(archs), args.repeats)
    fresh = [space.sample(np.random.default_rng(1)) for _ in range(args.batch)]
    warm_new = best_of(lambda: table.predict(fresh), args.repeats)

    lut = dict(zip(table.entries["key"], table.entries["latency_ms"], strict=True))
    subset = archs[: args.baseline]
    start = time.perf_counter()
    naive = [sum(lut[s.key] for s in space.layers(a, shape, 1000)) for a in subset]
    naive_s = (time.perf_counter() - start) / len(subset) * args.batch
    cal = table.calibration
    np.testing.assert_allclose(cal["a"] * np.asarray(naive) + cal["b"], predicted[: len(subset)], rtol=1e-9)
    keys = [[s.key for s in space.layers(a, shape, 1000)] for a in subset]
    lookup_s = best_of(lambda: [sum(lut[k] for k in ks) for ks in keys], args.repeats)
    lookup_s = lookup_s / len(subset) * args.batch

    rate = args.batch / warm
    print(f"vectorised predict, first call (fills the index): {cold * 1e3:8.1f} ms = {args.batch / cold:12,.0f} archs/s")
    print(f"vectorised predict, warm (same archs):            {warm * 1e3:8.1f} ms = {rate:12,.0f} archs/s")
    print(f"vectorised predict, warm (new archs):             {warm_new * 1e3:8.1f} ms = {args.batch / warm_new:12,.0f} archs/s")
    print(f"baseline per-arch layers() + dict sum (from {len(subset)}): {naive_s * 1e3:8.1f} ms = "
          f"{args.batch / naive_s:12,.0f} archs/s  -> vectorised is {naive_s / warm:,.0f}x faster")
    print(f"lookup-only per-arch dict sum (keys precomputed):  {lookup_s * 1e3:8.1f} ms = "
          f"{args.batch / lookup_s:12,.0f} archs/s  -> ratio {lookup_s / warm:.2f}x")
    run.note(f"mobilenetv3_ofa default options, input {shape}, table of {len(table)} layers, batch "
             f"{args.batch}, best of {args.repeats}; baseline timed on {len(subset)} archs")
    run.figure("predict, first call", round(args.batch / cold), "archs/s", note="fills the index")
    run.figure("predict, warm, new archs", round(args.batch / warm_new), "archs/s")
    run.figure("baseline: per-arch layers() + dict sum", round(args.batch / naive_s), "archs/s")
    run.figure("lookup-only: dict sums over precomputed keys", round(args.batch / lookup_s), "archs/s")
    run.figure("speed-up over the per-arch baseline", round(naive_s / warm, 1), "x")
    run.figure("lut_speed", round(rate), "archs/s", target=">= 100000", headline=True,
               note="vectorised predict, warm index, same archs")
    run.finish()


if __name__ == "__main__":
    main()
