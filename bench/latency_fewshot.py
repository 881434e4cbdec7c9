"""Few-shot latency on a new device from other devices' measurement files (NAS-Bench-201).

Every ``lat_<device>`` column of ``../shared/data/nb201/nb201.csv.gz`` (real devices:
GPUs at batch 1/32/256, server CPUs, phones; see its README) can be the target. The
columns are written as measurement files (architecture string, milliseconds) and read
back with :func:`predictors.read_latency_measurements`, as a user's files would be. For a
target, the reference devices are every *other* device's columns (the target device's
other batch sizes are left out); ``n`` architectures of the target are "measured" (drawn
at random, ``--repeats`` draws), and scored by Spearman over all 15,625 architectures:

- ``fewshot``: :class:`predictors.FewShotLatencyPredictor` on the references (plus log
  FLOPs and memory traffic with ``--statistics``; slow: every architecture's layers);
- ``baseline``: the best single reference device, rescaled: the reference whose latencies
  rank the ``n`` measured architectures most like the target (Spearman on those ``n``),
  scaled by the median ratio (scaling does not change its ranking);
- the anchor: HELP (Lee et al., NeurIPS 2021), mean Spearman 0.932 from 10 samples on
  NAS-Bench-201 devices (its own device split, not these columns).

    python bench/latency_fewshot.py                      # all targets, 10 and 20 samples
    python bench/latency_fewshot.py --targets lat_samsung_a50,lat_gold_6240 --repeats 5
    python bench/latency_fewshot.py --cross-kind         # references of other device kinds only

``--cross-kind`` is the harder setting nearer HELP's (a new kind of device): a phone target
gets only GPU and CPU references, a GPU only CPUs and phones (results file
``latency_fewshot_cross_kind``).

Last line: ``latency_fewshot_spearman_10: <mean over targets>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import BenchRun  # noqa: E402

from predictors import FewShotLatencyPredictor, MeasuredLatency, read_latency_measurements  # noqa: E402
from search_spaces import get_space  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201.csv.gz"
HELP_ANCHOR = 0.932


def device_of(column: str) -> str:
    """``lat_1080ti_32`` -> ``1080ti``: columns of one device at other batch sizes."""
    name = column[len("lat_"):]
    head, _, tail = name.rpartition("_")
    return head if tail in ("1", "32", "256") and head else name


def load(path: Path, columns: list[str], space) -> tuple[list, dict[str, np.ndarray]]:
    """Architectures and each column's latencies, through measurement files."""
    frame = pd.read_csv(path)
    latencies = {}
    with tempfile.TemporaryDirectory() as tmp:
        archs = None
        for column in columns:
            file = Path(tmp) / f"{column}.csv"
            frame[["arch", column]].rename(columns={column: "latency_ms"}).to_csv(file, index=False)
            if archs is None:
                archs, ms = read_latency_measurements(file, space)
            else:
                ms = pd.read_csv(file)["latency_ms"].to_numpy(float)  # same rows, same order
            latencies[column] = ms
    return archs, latencies


KINDS = {"1080ti": "gpu", "2080ti": "gpu", "titanx": "gpu", "titanxp": "gpu", "gold_6240": "cpu",
         "silver_4114": "cpu", "silver_4210r": "cpu", "samsung_a50": "phone", "samsung_s7": "phone",
         "essential_ph": "phone"}


def kind_of(column: str) -> str:
    return KINDS.get(device_of(column), device_of(column))


def one_draw(archs, latencies, served, target, n, seed, space, statistics, cross_kind=False):
    """(fewshot, baseline) Spearman over all architectures for one draw of ``n``."""
    refs = [c for c in latencies if device_of(c) != device_of(target)
            and not (cross_kind and kind_of(c) == kind_of(target))]
    gen = np.random.default_rng(seed)
    pick = gen.choice(len(archs), n, replace=False)
    y = latencies[target]
    models = {c: served[c] for c in refs}
    few = FewShotLatencyPredictor(models, space=space if statistics else None)
    few.fit([archs[i] for i in pick], y[pick])
    fewshot = spearmanr(few.predict(archs), y).statistic
    on_sample = [spearmanr(latencies[c][pick], y[pick]).statistic for c in refs]
    best = refs[int(np.nanargmax(on_sample))]
    baseline = spearmanr(latencies[best], y).statistic
    return float(fewshot), float(baseline), best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--targets", default="", help="comma-separated lat_ columns (default: all)")
    p.add_argument("--sizes", default="10,20")
    p.add_argument("--repeats", type=int, default=10, help="random draws per target and size")
    p.add_argument("--statistics", action="store_true", help="add log FLOPs and traffic (slow)")
    p.add_argument("--cross-kind", action="store_true",
                   help="references only from other kinds of device (a phone target: GPUs and CPUs)")
    p.add_argument("--quick", action="store_true", help="3 targets, 3 draws (smoke run)")
    args = p.parse_args()
    name = "latency_fewshot_cross_kind" if args.cross_kind else "latency_fewshot"
    run = BenchRun(name, quick=args.quick)
    space = get_space("nb201")
    columns = [c for c in pd.read_csv(args.data, nrows=1).columns if c.startswith("lat_")]
    archs, latencies = load(args.data, columns, space)
    served = {c: MeasuredLatency(archs, ms, name=c) for c, ms in latencies.items()}
    targets = [t for t in args.targets.split(",") if t] or columns
    if args.quick:
        targets, args.repeats = targets[:3], 3
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{len(archs)} architectures, {len(columns)} device columns; {len(targets)} targets, "
          f"{args.repeats} draws each")
    print(f"{'target':<20} {'n':>3} {'few-shot':>9} {'baseline':>9}  (most chosen baseline reference)")
    means = {n: ([], []) for n in sizes}
    for target in targets:
        for n in sizes:
            draws = [one_draw(archs, latencies, served, target, n, seed, space, args.statistics,
                              args.cross_kind)
                     for seed in range(args.repeats)]
            few, base = np.mean([d[0] for d in draws]), np.mean([d[1] for d in draws])
            chosen = pd.Series([d[2] for d in draws]).mode()[0]
            means[n][0].append(few)
            means[n][1].append(base)
            print(f"{target:<20} {n:>3} {few:>9.3f} {base:>9.3f}  ({chosen})")
    for n in sizes:
        few, base = float(np.mean(means[n][0])), float(np.mean(means[n][1]))
        print(f"mean over targets, n={n}: few-shot {few:.3f}, baseline {base:.3f}"
              + (f", HELP's anchor {HELP_ANCHOR}" if n == 10 else ""))
        run.figure(f"{name}_baseline_{n}", round(base, 3), "Spearman")
        run.figure(f"{name}_spearman_{n}", round(few, 3), "Spearman",
                   target=f">= {HELP_ANCHOR}" if n == 10 else None, headline=n == sizes[0])
    refs = "other kinds of device only" if args.cross_kind else "every other device's columns"
    run.note(f"targets: {', '.join(targets)}; {args.repeats} draws; statistics={args.statistics}; "
             f"references: {refs}")
    run.finish()


if __name__ == "__main__":
    main()
