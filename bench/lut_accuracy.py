"""How well a latency table predicts measured whole-network latency on this machine.

For each thread count: build a ``LatencyTable`` of ``mobilenetv3_ofa`` at one
resolution (timing the build; a reference network is timed in every group, see
``hardware._reference``), then measure ``n`` random subnets end to end in
``--repeats`` independent passes, round-robin with the same robust statistic,
together with the table's calibration networks (so a calibration fitted at
validation time can be compared), and report the share within +-10%, Kendall
tau, Spearman and MAPE for several variants, all from this one run:

- ``normalised by calibration nets`` (the library default of ``validate``): the
  table's prediction against the ground truth put on the table's build-time
  scale by the calibration networks, timed again in the same round-robin group;
- ``normalised by the reference network``: the same with the small reference
  network (timed in the same group) as the drift reference;
- ``raw``: the same table against the raw (un-normalised) ground truth;
- ``no reference``: what a table built without the reference would predict
  (raw layer and calibration timings) against raw ground truth;
- ``plain-sum calibration``: the calibration without the per-layer exponent
  (``gamma = 1``, the model before it was added);
- ``8 of N calibration nets``: the calibration refitted on every other network;
- ``calibrated at validation``: the calibration refitted on the calibration
  networks timed interleaved with the validation networks;
- ``min`` / ``median``: the table's min / median columns (and calibration) against
  the ground truth's min / median;
- ``pass 1 vs pass 2``: the noise ceiling of the ground truth itself.

It also prints the drift factors of the calibration networks and the reference's
own drift over the run (its time in every group).

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

from _results import BenchRun, results_option  # noqa: E402

from hardware import LatencyTable, Profiler, compare, fit_calibration, get_device, validate  # noqa: E402
from search_spaces import Architecture, get_space  # noqa: E402


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
    parser.add_argument("--repeats", type=int, default=2, help="independent ground-truth passes")
    parser.add_argument("--statistic", default="p10")
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=32, help="layers timed round-robin together")
    parser.add_argument("--no-reference", action="store_true", help="build without the reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-only", action="store_true", help="only time the table build")
    parser.add_argument("--plot-dir", type=Path, default=None, help="write scatter PNGs here")
    parser.add_argument("--quick", action="store_true", help="smoke run: width 0.5, 64 px, n=20")
    results_option(parser, "lut_accuracy")
    args = parser.parse_args()
    run = BenchRun(args.results, quick=args.quick)
    if args.quick:
        args.width_mult, args.resolution, args.n, args.calibration = 0.5, 64, 20, 6

    resolutions = args.resolutions or [args.resolution]
    space = get_space("mobilenetv3_ofa", width_mult=args.width_mult, resolutions=resolutions)
    shape = (3, args.resolution, args.resolution)
    print(f"space mobilenetv3_ofa width_mult={args.width_mult} resolutions={resolutions} "
          f"input {shape} classes {args.num_classes}; clock {args.clock}; statistic {args.statistic}; "
          f"n={args.n} x {args.repeats} passes; {args.calibration} calibration nets; "
          f"layers in round-robin groups of {args.chunk_size}; "
          f"reference {'off' if args.no_reference else 'on'}; torch {torch.__version__}")
    first_share = None
    for threads in args.threads:
        options = {"threads": threads} | ({"clock": args.clock} if args.clock != "wall" else {})
        device = get_device("cpu", **options)
        torch.set_num_threads(threads)
        profiler = Profiler(statistic=args.statistic)
        start = time.perf_counter()
        table = LatencyTable.build(space, device, shape, num_classes=args.num_classes,
                                   profiler=profiler, n_calibration=args.calibration,
                                   rng=args.seed, progress=False, reference=not args.no_reference,
                                   chunk_size=args.chunk_size)
        build_s = time.perf_counter() - start
        cal, ref = table.calibration, table.reference
        tag = f"[threads={threads}]"
        run.figure(f"{threads} thread(s): build", round(build_s, 1), "s",
                   note=f"{len(table)} layers; gamma {cal.get('gamma', 1.0)} chosen")
        print(f"{tag} table: {len(table)} layers built in {build_s:.1f} s; noise floor "
              f"{table.metadata['noise_floor_ms']:.4f} ms; calibration {cal['model']} a={cal['a']:.3f} "
              f"b={cal['b']:.3f} ms gamma={cal.get('gamma', 1.0)}; plain sum / measured = "
              f"{cal['sum_over_measured']:.3f}")
        if ref:
            print(f"{tag} reference at build {ref['ms']:.4f} ms; per layer group "
                  + " ".join(f"{ms:.3f}" for ms in ref["layer_groups_ms"])
                  + f"; calibration group {cal['reference_ms']:.3f}")
        if args.build_only:
            continue
        share = _validate(table, space, device, profiler, args, tag, run, f"{threads} thread(s)")
        if first_share is None:
            first_share = share
    run.note(f"mobilenetv3_ofa width {args.width_mult}, resolutions {resolutions}, input {shape}; clock "
             f"{args.clock}; statistic {args.statistic}; n={args.n} x {args.repeats} passes; "
             f"{args.calibration} calibration nets")
    run.figure("lut_accuracy", "build-only" if first_share is None else round(first_share, 3),
               headline=True, note="share within +-10%, library default, first thread count")
    run.finish()


def _validate(table: LatencyTable, space, device, profiler: Profiler, args, tag: str, run: BenchRun,
              label: str) -> float:
    gen = np.random.default_rng(args.seed + 1)
    val = [space.sample(gen) for _ in range(args.n)]
    cal = table.calibration
    cal_archs = [Architecture(a) for a in cal["archs"]]
    k = len(cal_archs)
    start = time.perf_counter()
    # the library default: the calibration networks are timed again beside the subnets
    # (one round-robin group) and put the timings on the table's build-time scale
    report = validate(table, archs=val, device=device, profiler=profiler, group_size=args.n,
                      repeats=args.repeats, progress=False)
    val_s = time.perf_counter() - start
    info = report.info
    passes = np.asarray(info["passes_ms"])
    raw_passes = np.asarray(info["raw_passes_ms"])
    truth, raw_truth = np.median(passes, axis=0), np.median(raw_passes, axis=0)
    cal_now = np.median(np.asarray(info["drift"]["calibration_raw_ms"])[:, 0], axis=0)  # (k,) raw, now
    predicted = table.predict(val)
    rows: list[tuple[str, object]] = []

    def add(name: str, pred, measured) -> None:
        rows.append((name, compare(pred, measured)))

    cal_layers = [table.layer_latencies(a) for a in cal_archs]

    def refit(tab: LatencyTable, sums_ms, measured, layers) -> np.ndarray:
        """The subnets' prediction of ``tab`` recalibrated on the given networks."""
        fitted = fit_calibration(sums_ms, measured, layers)
        return LatencyTable(tab.entries, {**tab.metadata, "calibration": fitted}, space).predict(val)

    add("normalised by calibration nets (default)", predicted, truth)
    if args.repeats >= 2:
        add("  same, vs pass 1 only", predicted, passes[0])
    if table.reference:
        ref_now = np.asarray(info["reference"]["groups_ms"])[:, 0]  # one group per pass
        by_ref = np.median(raw_passes * (table.reference["ms"] / ref_now)[:, None], axis=0)
        add("normalised by the reference network", predicted, by_ref)
    add("raw ground truth", predicted, raw_truth)
    if table.reference:
        # what a table built without the reference predicts: un-normalise layers and calibration
        speed = table.entries["reference_ms"].to_numpy() / table.reference["ms"]
        raw_table = LatencyTable(table.entries.assign(latency_ms=table.entries["latency_ms"] * speed),
                                 table.metadata, space)
        add("no reference (raw table, raw truth)",
            refit(raw_table, raw_table.predict_raw(cal_archs), cal["measured_raw_ms"],
                  [raw_table.layer_latencies(a) for a in cal_archs]), raw_truth)
    add("plain-sum calibration (gamma 1)", refit(table, cal["sum_ms"], cal["measured_ms"], None), truth)
    add(f"{len(cal['sum_ms'][::2])} of {k} calibration nets",
        refit(table, cal["sum_ms"][::2], cal["measured_ms"][::2], cal_layers[::2]), truth)
    add("calibrated at validation (interleaved)", refit(table, cal["sum_ms"], cal_now, cal_layers), raw_truth)
    add("  same, plain sum (gamma 1)", refit(table, cal["sum_ms"], cal_now, None), raw_truth)
    for stat in ("min", "median"):
        stat_table = LatencyTable(table.entries.assign(latency_ms=table.entries[f"{stat}_ms"]),
                                  table.metadata, space)
        stat_truth = np.median(np.asarray(info["passes_stats_ms"][stat]), axis=0)
        add(f"statistic {stat}", refit(stat_table, stat_table.predict_raw(cal_archs), cal["measured_stats_ms"][stat],
                                       [stat_table.layer_latencies(a) for a in cal_archs]), stat_truth)
    if args.repeats >= 2:
        add("noise ceiling: pass 2 vs pass 1 (normalised)", passes[1], passes[0])
        add("noise ceiling: pass 2 vs pass 1 (raw)", raw_passes[1], raw_passes[0])
        add("noise ceiling: pass 2 vs 1, statistic min",
            np.asarray(info["passes_stats_ms"]["min"])[1], np.asarray(info["passes_stats_ms"]["min"])[0])
    print(f"{tag} validation: {args.n} subnets + {k} calibration nets x {args.repeats} passes in "
          f"{val_s:.0f} s; measured {truth.min():.2f}-{truth.max():.2f} ms (normalised), "
          f"{raw_truth.min():.2f}-{raw_truth.max():.2f} ms (raw)")
    factors = [f for one_pass in info["drift"]["factors"] for f in one_pass]
    val_drift = np.median(raw_passes[1] / raw_passes[0]) if args.repeats >= 2 else float("nan")
    print(f"{tag} network drift: calibration nets at build / now (per pass) "
          + " ".join(f"{f:.3f}" for f in factors) + f"; subnets pass 2 / pass 1 {val_drift:.3f}")
    if table.reference:
        groups = info["reference"]["groups_ms"]
        every = [*table.reference["layer_groups_ms"], cal["reference_ms"], *[g for p in groups for g in p]]
        print(f"{tag} reference network: at build {table.reference['ms']:.3f} ms, calibration "
              f"{cal['reference_ms']:.3f}, validation passes " + " ".join(f"{g:.3f}" for p in groups for g in p)
              + f"; max/min over the run {max(every) / min(every):.3f}")
    print(f"{tag} {'variant':<46} {'within10':>8} {'MAPE':>7} {'tau':>6} {'rho':>6}")
    for i, (name, r) in enumerate(rows):
        print(f"{tag} {name:<46} {100 * r.within_10:>7.1f}% {r.mape:>6.2f}% {r.kendall_tau:>6.3f} "
              f"{r.spearman:>6.3f}")
        short = name.strip()
        ceiling = short.startswith("noise ceiling: pass 2 vs pass 1 (normalised)")
        # targets of the library default: >= 90% within +-10% and Kendall tau >= 0.9
        run.figure(f"{label}: {short}, within +-10%", round(100 * r.within_10, 1), "%",
                   target=">= 90%" if i == 0 else None)
        run.figure(f"{label}: {short}, MAPE", round(r.mape, 2), "%")
        run.figure(f"{label}: {short}, Kendall tau", round(r.kendall_tau, 3),
                   target=">= 0.9" if i == 0 else None, show=ceiling)
        run.figure(f"{label}: {short}, Spearman", round(r.spearman, 3))
    if args.plot_dir:
        main_report = rows[0][1]
        from nas.plots import plot_validation

        path = plot_validation(args.plot_dir / f"lut_accuracy_t{device.threads}_{args.clock}.png", main_report)
        print(f"{tag} wrote {path}")
    return rows[0][1].within_10


if __name__ == "__main__":
    main()
