"""How the choice of calibration networks affects a latency table's calibration.

Times a pool of random ``mobilenetv3_ofa`` subnets end to end (two independent
round-robin passes, the table's statistic), then, offline and many times over,
draws calibration networks from one half of the pool with each design, fits
:func:`hardware.fit_calibration` on their pass-1 timings and scores the other
half against its pass-2 timings (independent noise; put on pass 1's scale by
the calibration networks' drift between the passes, as ``validate`` does):

- ``quantile``: evenly spaced quantiles of the plain layer sum (the design before
  2026-11-22);
- ``contrast``: :meth:`hardware.LatencyTable.spanning_archs`' design (bins of
  the layer sum, the two most different layer mixes from each).

Reported per design and number of networks: the mean and spread of the chosen
``gamma``, held-out Kendall tau and share within +-10%; plus the tau of a fixed
``gamma`` over the whole pool and the pass-vs-pass noise ceiling.

Then per-op-group calibration, the model with one multiplier per group of layers
(``mbconv`` blocks grouped by kernel, by expand ratio or by stride; every other
layer one more group) instead of one for the whole sum:
``m = sum_g a_g * S_g + b``, fitted on 16 random calibration networks by least
squares on relative residuals, ridge-shrunk towards the common multiplier
(``--group-ridge``), scored like the designs above.

    python bench/lut_calibration.py --clock thread            # ~11 min on a loaded 2-core VM
    python bench/lut_calibration.py --pool-file pool.json     # reuse a timed pool

Last line: ``lut_calibration_gamma_sd_contrast_16: <sd>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import BenchRun  # noqa: E402

from hardware import (  # noqa: E402
    LatencyTable,
    Profiler,
    contrast_design,
    fit_calibration,
    get_device,
    transform_layers,
    validate,
)
from search_spaces import get_space  # noqa: E402


def time_pool(args) -> dict:
    torch.set_num_threads(args.threads)
    space = get_space("mobilenetv3_ofa", width_mult=args.width_mult, resolutions=[args.resolution])
    shape = (3, args.resolution, args.resolution)
    device = get_device("cpu", threads=args.threads, **({"clock": args.clock} if args.clock != "wall" else {}))
    profiler = Profiler(statistic="p10")
    start = time.perf_counter()
    table = LatencyTable.build(space, device, shape, num_classes=1000, profiler=profiler, n_calibration=0,
                               rng=0, progress=False)
    gen = np.random.default_rng(args.seed)
    archs = [space.sample(gen) for _ in range(args.pool)]
    report = validate(table, archs=archs, device=device, profiler=profiler, group_size=args.pool,
                      repeats=2, progress=False, drift_reference="none")
    print(f"timed {len(table)} layers and {args.pool} networks x 2 passes in "
          f"{time.perf_counter() - start:.0f} s ({args.clock} clock, {args.threads} thread(s))")
    return {"layers": [table.layer_latencies(a).tolist() for a in archs],
            "passes": np.asarray(report.info.get("raw_passes_ms", report.info["passes_ms"])).tolist(),
            "settings": {k: v for k, v in vars(args).items() if k != "pool_file"}}


def quantile_design(sums: np.ndarray, _concave: np.ndarray, k: int) -> list[int]:
    order = np.argsort(sums)
    return order[np.unique(np.linspace(0, len(order) - 1, k).round().astype(int))].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=240, help="networks timed")
    parser.add_argument("--pool-file", type=Path, default=None, help="read (or write) the timed pool here")
    parser.add_argument("--clock", default="thread", choices=("wall", "thread"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--group-ridge", type=float, default=1.0,
                        help="ridge weight of the per-op-group multipliers towards the common one")
    args = parser.parse_args()
    run = BenchRun("lut_calibration")
    if args.pool_file and args.pool_file.exists():
        pool = json.loads(args.pool_file.read_text())
        print(f"read the timed pool from {args.pool_file}: {pool['settings']}")
    else:
        pool = time_pool(args)
        if args.pool_file:
            args.pool_file.write_text(json.dumps(pool))
    layers = [np.asarray(t) for t in pool["layers"]]
    passes = np.asarray(pool["passes"])
    n = len(layers)
    plain = np.array([t.sum() for t in layers])
    t_ref = float(np.median(np.concatenate(layers)))
    concave = np.array([transform_layers(t, 0.5, t_ref).sum() for t in layers])
    ceiling = float(kendalltau(passes[0], passes[1]).statistic)
    print(f"noise ceiling (tau pass 1 vs pass 2): {ceiling:.3f}")
    run.note(f"pool of {n} networks x 2 passes, settings {pool['settings']}; {args.draws} draws")
    run.figure("noise ceiling: tau pass 1 vs pass 2", round(ceiling, 3), show=True)
    truth = np.median(passes, axis=0)
    fixed = {g: float(kendalltau([transform_layers(t, g, t_ref).sum() for t in layers], truth).statistic)
             for g in (1.0, 0.8, 0.6, 0.4)}
    print("fixed gamma over the whole pool, tau vs the pass median: "
          + ", ".join(f"{g}: {tau:.3f}" for g, tau in fixed.items()))
    for g, tau in fixed.items():
        run.figure(f"fixed gamma {g} over the pool, tau", round(tau, 3))
    rng = np.random.default_rng(0)
    splits = [rng.permutation(n) for _ in range(args.draws)]
    last = float("nan")
    print(f"{'design':<9} {'nets':>4} {'gamma mean':>10} {'sd':>5} {'g=1':>5} {'tau':>6} {'+-':>5} {'within10':>8}")
    for k in (8, 16, 24):
        for name, design in (("quantile", quantile_design), ("contrast", contrast_design)):
            gammas, taus, within = [], [], []
            for perm in splits:
                cand, test = perm[: n // 2], perm[n // 2:]
                cal = cand[design(plain[cand], concave[cand], k)]
                fit = fit_calibration(plain[cal], passes[0][cal], [layers[i] for i in cal])
                pred = np.array([fit["a"] * transform_layers(layers[i], fit["gamma"], fit["t_ref_ms"]).sum()
                                 + fit["b"] for i in test])
                # pass 2 on pass 1's scale by the calibration networks' drift, as `validate` does
                measured = passes[1][test] * np.median(passes[0][cal] / passes[1][cal])
                gammas.append(fit["gamma"])
                taus.append(kendalltau(pred, measured).statistic)
                within.append(np.mean(np.abs(pred / measured - 1) < 0.1))
            g = np.asarray(gammas)
            print(f"{name:<9} {k:>4} {g.mean():>10.2f} {g.std():>5.2f} {np.mean(g == 1):>5.2f} "
                  f"{np.mean(taus):>6.3f} {np.std(taus):>5.3f} {100 * np.mean(within):>7.1f}%")
            if name == "contrast" and k == 16:
                last = float(g.std())
            run.figure(f"{name} {k}: gamma mean", round(float(g.mean()), 2))
            run.figure(f"{name} {k}: held-out tau", round(float(np.mean(taus)), 3),
                       show=(name, k) == ("contrast", 16), note=f"sd {np.std(taus):.3f}")
            run.figure(f"{name} {k}: within +-10%", round(100 * float(np.mean(within)), 1), "%")
            if (name, k) != ("contrast", 16):
                run.figure(f"{name} {k}: gamma sd", round(float(g.std()), 3))
    per_group(args, layers, passes, splits, run)
    run.figure("lut_calibration_gamma_sd_contrast_16", round(last, 3), headline=True,
               note="sd of the chosen gamma, contrast design, 16 networks")
    run.finish()


def _group(spec, how: str) -> str:
    if how == "none":
        return "all"
    return f"{how} {dict(spec.params)[how]}" if spec.op == "mbconv" else "other"


def per_group(args, layers: list[np.ndarray], passes: np.ndarray, splits: list[np.ndarray],
              run: BenchRun) -> None:
    """Held-out tau / share within +-10% of per-op-group multipliers (see the module doc)."""
    space = get_space("mobilenetv3_ofa", width_mult=args.width_mult, resolutions=[args.resolution])
    gen = np.random.default_rng(args.seed)  # the pool's archs, drawn as time_pool drew them
    specs = [space.layers(space.sample(gen)) for _ in layers]
    if any(len(s) != len(t) for s, t in zip(specs, layers, strict=True)):
        raise SystemExit("the pool file does not hold this --seed/--width-mult/--resolution's archs")
    n, k = len(layers), 16
    rng = np.random.default_rng(1)
    print(f"per-op-group calibration ({k} random calibration networks, {len(splits)} draws, ridge "
          f"{args.group_ridge} towards the common multiplier):")
    for how in ("none", "kernel", "expand", "stride"):
        names = sorted({_group(sp, how) for net in specs for sp in net})
        sums = np.zeros((n, len(names)))
        for i, (net, times) in enumerate(zip(specs, layers, strict=True)):
            for sp, t in zip(net, times, strict=True):
                sums[i, names.index(_group(sp, how))] += t
        taus, within = [], []
        for perm in splits:
            cal = rng.choice(perm[: n // 2], k, replace=False)
            test = perm[n // 2:]
            m = passes[0][cal]
            design = np.hstack([sums[cal], np.ones((k, 1))]) / m[:, None]  # relative residuals
            common = np.median(m / sums[cal].sum(1))
            lam = np.sqrt(args.group_ridge)
            prior = np.hstack([lam * np.eye(len(names)), np.zeros((len(names), 1))])
            coef = np.linalg.lstsq(np.vstack([design, prior]),
                                   np.concatenate([np.ones(k), lam * common * np.ones(len(names))]),
                                   rcond=None)[0]
            pred = np.hstack([sums[test], np.ones((len(test), 1))]) @ coef
            measured = passes[1][test] * np.median(passes[0][cal] / passes[1][cal])
            taus.append(kendalltau(pred, measured).statistic)
            within.append(np.mean(np.abs(pred / measured - 1) < 0.1))
        print(f"  groups by {how:<7} ({len(names):>2} multipliers): tau {np.mean(taus):.3f} "
              f"+- {np.std(taus):.3f}, within +-10% {100 * np.mean(within):.1f}%")
        run.figure(f"per-op-group multipliers by {how}: held-out tau", round(float(np.mean(taus)), 3),
                   note=f"{len(names)} multipliers, sd {np.std(taus):.3f}")


if __name__ == "__main__":
    main()
