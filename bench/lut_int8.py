"""FP32 vs INT8 latency on ``mobilenetv3_ofa`` subnets, through the bundle path.

SpaceEvo's point: INT8 latency ranks architectures differently from FP32. This bench
makes an FP32 and an INT8 bundle of ``mobilenetv3_ofa`` (one resolution, so the bundle
stays small), runs each bundle's own runner (``measure.py``, onnxruntime CPU, 1 thread),
imports both into latency tables, then measures ``--n`` random subnets end to end on
this machine's ONNX Runtime device at both precisions, two passes each (round-robin
within a pass). Reported:

- ``lut_int8_spearman_measured``: Spearman of measured FP32 vs measured INT8 latency
  (the headline), beside the FP32 noise ceiling (pass 2 vs pass 1): a value well below
  the ceiling means INT8 really reorders the architectures;
- ``lut_int8_spearman_tables``: the same between the two tables' predictions over
  ``--pool`` sampled subnets;
- each table's Spearman against its own measurements (does the INT8 table rank well?),
  and the median INT8 / FP32 speed-up.

    python bench/lut_int8.py                 # ~10 min on a loaded 2-core VM
    python bench/lut_int8.py --quick         # smoke run: few networks, short budgets

Last line: ``lut_int8_spearman_measured: <rho>``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import BenchRun  # noqa: E402

from hardware import Profiler, get_device, import_measurements, make_bundle  # noqa: E402
from search_spaces import get_space  # noqa: E402


def table_via_bundle(space, options, shape, precision, folder, budget, n_calibration):
    """make_bundle -> the bundle's runner (a subprocess, as on a device) -> import."""
    bundle = folder / f"bundle-{precision}"
    make_bundle(space, bundle, shape, precision=precision, n_calibration=n_calibration, rng=0,
                space_options=options, profiler=Profiler(time_budget_s=budget), progress=False)
    out = folder / f"{precision}.csv"
    subprocess.run([sys.executable, str(bundle / "measure.py"), str(bundle), "-o", str(out), "--quiet"],
                   check=True)
    return import_measurements(bundle, out, space=space, refuse_drift=None)


def measure(space, archs, shape, precision, budget):
    device = get_device("onnxruntime", threads=1, precision=precision)
    modules = [space.build(a, space.num_classes, shape) for a in archs]
    return np.array([m.value_ms for m in Profiler(time_budget_s=budget).measure_many(modules, shape, device)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--n", type=int, default=40, help="subnets measured end to end")
    p.add_argument("--pool", type=int, default=1000, help="subnets compared by the two tables")
    p.add_argument("--budget", type=float, default=0.3, help="seconds per model and pass")
    p.add_argument("--calibration", type=int, default=16)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.n, args.pool, args.budget, args.calibration = 8, 100, 0.02, 4
    run = BenchRun("lut_int8", quick=args.quick)
    options = {"resolutions": [args.resolution]}
    space = get_space("mobilenetv3_ofa", **options)
    shape = (3, args.resolution, args.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        tables = {prec: table_via_bundle(space, options, shape, prec, Path(tmp), args.budget, args.calibration)
                  for prec in ("fp32", "int8")}
    gen = np.random.default_rng(1)
    pool = [space.sample(gen) for _ in range(args.pool)]
    rho_tables = spearmanr(tables["fp32"].predict(pool), tables["int8"].predict(pool)).statistic
    archs = pool[:args.n]
    passes = {prec: [measure(space, archs, shape, prec, args.budget) for _ in range(2)]
              for prec in ("fp32", "int8")}
    truth = {prec: np.median(passes[prec], axis=0) for prec in passes}
    rho_measured = spearmanr(truth["fp32"], truth["int8"]).statistic
    ceiling = {prec: spearmanr(*passes[prec]).statistic for prec in passes}
    own = {prec: spearmanr(tables[prec].predict(archs), truth[prec]).statistic for prec in passes}
    speedup = float(np.median(truth["fp32"] / truth["int8"]))
    print(f"{len(tables['fp32'])} layers per table; {args.n} subnets measured, {args.pool} compared by the tables")
    print(f"Spearman FP32 vs INT8: measured {rho_measured:.3f}, tables {rho_tables:.3f}")
    print(f"noise ceiling (pass 2 vs 1): FP32 {ceiling['fp32']:.3f}, INT8 {ceiling['int8']:.3f}")
    print(f"each table vs its measurements: FP32 {own['fp32']:.3f}, INT8 {own['int8']:.3f}; "
          f"median INT8 speed-up {speedup:.2f}x")
    run.figure("lut_int8_spearman_tables", round(float(rho_tables), 3), "Spearman")
    run.figure("lut_int8_noise_ceiling_fp32", round(float(ceiling["fp32"]), 3), "Spearman")
    run.figure("lut_int8_noise_ceiling_int8", round(float(ceiling["int8"]), 3), "Spearman")
    run.figure("lut_int8_table_vs_measured_fp32", round(float(own["fp32"]), 3), "Spearman")
    run.figure("lut_int8_table_vs_measured_int8", round(float(own["int8"]), 3), "Spearman")
    run.figure("lut_int8_speedup", round(speedup, 2), "x")
    run.figure("lut_int8_spearman_measured", round(float(rho_measured), 3), "Spearman", headline=True)
    run.note(f"mobilenetv3_ofa resolution {args.resolution}, onnxruntime CPU 1 thread, static QDQ INT8")
    run.finish()


if __name__ == "__main__":
    main()
