"""Predictor quality on the OFA digits ground truth (bench/data/, see predictors_data.py).

1. Accuracy predictors: Kendall tau / Spearman / MAE on held-out archs at 25, 50,
   100 and 200 training archs (supernet-inherited accuracy), including the
   MLP ensemble with FBNetV3-style pretraining on free statistics; then the
   best model against standalone-trained accuracies.
2. Zero-cost proxies: tau of each proxy and of the learned combination (fitted
   on 10 / 20 / 40 labelled archs, 100 random splits) against inherited and
   standalone accuracy, paired with the single proxy picked on the same labels;
   plus a synthetic check. Scores are cached in bench/data/ofa_digits_proxies.csv
   (``--recompute-proxies`` to recompute, ``--proxy-archs`` how many).
3. Latency: few-shot adaptation to a new device (torch CPU, 2 threads,
   measured end to end) from reference-device tables (CPU 1 thread, ONNX
   Runtime) at 5/10/20 measurements; the same on synthetic devices; and the
   layer-feature predictor learned without a table.

    python bench/predictor_quality.py [--quick] [--threads 1] [--data bench/data/ofa_digits]
        [--png bench/out/predictors_curve.png]

``--data`` is a file prefix: ``<prefix>_supernet.csv``, ``<prefix>_meta.json`` and
``<prefix>_standalone.csv`` (e.g. ``bench/data/ofa_digits_aug`` for the digits_aug
ground truth). The reliability ceiling of the ground truth (the Kendall tau a perfect
predictor could reach against one noisy measurement, from two independent
half-measurements of the same archs) is printed first when the data carries it.

The last line is ``predictors_best_tau_at_100: <value>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from _results import BenchRun, results_option

HERE = Path(__file__).resolve().parent
# keep bench/ off the import path (a bench script must never shadow a package)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from predictors import (  # noqa: E402
    FewShotLatencyPredictor,
    LayerwiseLatencyPredictor,
    ProxyCombination,
    SyntheticDevice,
    evaluate_predictor,
    free_statistics,
    get_predictor,
    kendall_tau,
    learning_curve,
    mape,
    proxy_matrix,
    read_arch_table,
    split_half_reliability,
)
from search_spaces import get_space  # noqa: E402
from supernets.data import load_dataset  # noqa: E402

PROXIES = ("synflow", "snip", "grad_norm", "jacov", "naswot", "gradsign", "flops", "params")


class ColumnModel:
    """A reference device known only through a column of the CSV: ``predict(archs) -> ms``."""

    def __init__(self, frame: pd.DataFrame, column: str) -> None:
        self.ms = dict(zip(frame["key"], frame[column].astype(float), strict=True))

    def predict(self, archs) -> np.ndarray:
        return np.array([self.ms[a.key] for a in archs])


def print_reliability(frame: pd.DataFrame, prefix: str, run: BenchRun, show: bool) -> None:
    """The ceiling of any predictor's tau on this ground truth (see ``split_half_reliability``)."""
    extra = Path(f"{prefix}_reliability.json")
    if {"acc_val", "acc_test"} <= set(frame.columns):
        rel = split_half_reliability(frame.acc_val, frame.acc_test)
        source = f"val half vs test half, independent calibration draws, {len(frame)} archs"
    elif extra.is_file():
        rel = json.loads(extra.read_text())
        source = rel["source"]
    else:
        print("reliability ceiling: unknown (the data has no independent repeated measurement)")
        return
    print(f"reliability ({source}): tau between halves {rel['tau_halves']:.3f}; full measurement: "
          f"reliability r {rel['r_full']:.3f}, test-retest tau {rel['tau_retest']:.3f}, "
          f"ceiling tau of a perfect predictor {rel['tau_ceiling']:.3f}")
    run.figure("ground truth: test-retest tau", round(rel["tau_retest"], 3))
    run.figure("ground truth: ceiling tau of a perfect predictor", round(rel["tau_ceiling"], 3), show=show)


def section_accuracy(space, archs, y, standalone, args, run: BenchRun) -> float:
    print("\n== accuracy predictors (supernet-inherited accuracy) ==")
    sizes = (25, 50) if args.quick else (25, 50, 100, 200)
    repeats = 1 if args.quick else 3
    rng = np.random.default_rng([args.seed, 7])
    pre_archs = [space.sample(rng) for _ in range(200 if args.quick else 1500)]
    shape, classes = tuple(args.input_shape), 10
    t0 = time.perf_counter()
    pre_stats, _ = free_statistics(space, pre_archs, shape, classes)
    print(f"free statistics (log FLOPs, log params) of {len(pre_archs)} unlabelled archs: "
          f"{time.perf_counter() - t0:.1f} s")

    feats = ({"encoding": "onehot", "complexity_features": False} if args.features == "onehot" else {})
    print(f"features: {args.features}")

    def pretrained(seed: int):
        return get_predictor("mlp_ensemble", space, seed=seed, **feats).pretrain(pre_archs, pre_stats)

    factories = {name: (lambda seed, name=name: get_predictor(name, space, seed=seed, **feats))
                 for name in ("ridge", "gp", "gbdt", "mlp_ensemble")}
    factories["mlp_ensemble+pretrain"] = pretrained
    t0 = time.perf_counter()
    rows = learning_curve(factories, archs, y, sizes, repeats, test_frac=0.3, seed=args.seed)
    print(f"learning curves: {time.perf_counter() - t0:.0f} s; test set {round(0.3 * len(archs))} archs, "
          f"{repeats} random training subsets per size")
    print(f"{'model':<22}" + "".join(f"  tau@{n:<4}" for n in sizes) + "   rho@max  mae@max")
    best = {}
    for model in factories:
        taus = [np.mean([r["kendall_tau"] for r in rows if r["model"] == model and r["n_train"] == n])
                for n in sizes]
        last = [r for r in rows if r["model"] == model and r["n_train"] == sizes[-1]]
        print(f"{model:<22}" + "".join(f"  {t:8.3f}" for t in taus)
              + f"   {np.mean([r['spearman'] for r in last]):7.3f}  {np.mean([r['mae'] for r in last]):7.4f}")
        best[model] = dict(zip(sizes, taus, strict=True))
        for n, t in zip(sizes, taus, strict=True):
            run.figure(f"{model} tau@{n}", round(float(t), 3))
        run.figure(f"{model} rho@{sizes[-1]}", round(float(np.mean([r["spearman"] for r in last])), 3))
        run.figure(f"{model} MAE@{sizes[-1]}", round(float(np.mean([r["mae"] for r in last])), 4))
    from nas.plots import plot_learning_curve

    png = plot_learning_curve(args.png, rows, title=f"OFA {args.dataset}: inherited accuracy ({args.features} features)")
    print(f"plot: {png}")

    at = 100 if 100 in sizes else sizes[-1]
    return max(v[at] for v in best.values())


def section_standalone(space, archs, y, standalone, args, run: BenchRun) -> None:
    s_archs, s_y, s_frame = standalone
    print("\n-- standalone-trained accuracies --")
    tau_inh = kendall_tau(s_y, s_frame["inherited_accuracy"])
    print(f"{len(s_archs)} archs: tau(inherited, standalone) = {tau_inh:.3f}")
    run.figure("standalone: tau(inherited, standalone)", round(float(tau_inh), 3))
    keys = {a.key for a in s_archs}
    pool = [i for i, a in enumerate(archs) if a.key not in keys][:200]
    for name in ("ridge", "gp", "gbdt"):
        model = get_predictor(name, space, seed=args.seed).fit([archs[i] for i in pool], y[pool])
        scores = evaluate_predictor(model, s_archs, s_y)
        print(f"{name:<6} fitted on {len(pool)} inherited accuracies -> standalone tau "
              f"{scores['kendall_tau']:.3f}, rho {scores['spearman']:.3f}")
        run.figure(f"standalone: {name} fitted on {len(pool)} inherited, tau",
                   round(float(scores["kendall_tau"]), 3))




def proxy_table(space, archs, args) -> pd.DataFrame:
    """Proxy scores of the first ``args.proxy_archs`` archs: ``key`` + one column per proxy.

    Read from ``<--data>_proxies.csv`` (bench/data/ofa_digits_proxies.csv); archs missing there are
    scored (one batch of 32 digits, initialisation seed ``args.seed``, 1 thread)
    and appended every 10 archs, so an interrupted run resumes.
    ``--recompute-proxies`` starts the file afresh; ``--quick`` never writes it.
    """
    path = Path(f"{args.data}_proxies.csv")
    n = min(args.proxy_archs, len(archs))
    cached = pd.DataFrame(columns=["key", *PROXIES])
    if path.is_file() and not args.recompute_proxies:
        cached = pd.read_csv(path, dtype={"key": str})
    have = set(cached["key"])
    todo = [a for a in archs[:n] if a.key not in have]
    if args.quick:
        todo = todo[:max(0, 10 - (n - len(todo)))]
    if todo:
        data = load_dataset(args.dataset, seed=args.seed)
        x_b, y_b = data.train.tensors[0][:32], data.train.tensors[1][:32]
        t0 = time.perf_counter()
        for start in range(0, len(todo), 10):
            chunk = todo[start:start + 10]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mat = proxy_matrix(space, chunk, x_b, y_b, PROXIES, seed=args.seed, num_classes=10)
            rows = pd.DataFrame(mat, columns=list(PROXIES))
            rows.insert(0, "key", [a.key for a in chunk])
            cached = pd.concat([cached, rows], ignore_index=True) if len(cached) else rows
            if not args.quick:
                tmp = path.with_suffix(".tmp")
                cached.to_csv(tmp, index=False, float_format="%.9g")
                tmp.replace(path)
            done = start + len(chunk)
            print(f"  proxies: {done}/{len(todo)} archs, {(time.perf_counter() - t0) / done:.2f} s/arch",
                  flush=True)
    table = cached.set_index("key")
    keys = [a.key for a in archs[:n] if a.key in table.index]
    return table.loc[keys, list(PROXIES)].reset_index()


def _split_taus(scores, target, n_fit, splits, seed, fixed):
    """Per random split: (combination, picked single, fixed single) tau on the held-out archs."""
    rows, procedures = [], {}
    for r in range(splits):
        idx = np.random.default_rng([seed, n_fit, r]).permutation(len(target))
        fit, test = idx[:n_fit], idx[n_fit:]
        model = ProxyCombination(list(PROXIES), seed=r).fit(scores[fit], target[fit])
        procedures[model.procedure_] = procedures.get(model.procedure_, 0) + 1
        # fair baseline: the single proxy (with sign) that ranks the same labelled archs best
        fit_taus = [kendall_tau(target[fit], scores[fit, k]) for k in range(scores.shape[1])]
        k = int(np.argmax(np.abs(fit_taus)))
        rows.append((kendall_tau(target[test], model.predict(scores[test])),
                     (1.0 if fit_taus[k] >= 0 else -1.0) * kendall_tau(target[test], scores[test, k]),
                     fixed[1] * kendall_tau(target[test], scores[test, fixed[0]])))
    return np.array(rows), procedures


def _combination_table(scores, target, label_counts, splits, seed, run: BenchRun, label: str) -> None:
    fixed = _best_fixed(scores, target)
    best = fixed[0]
    print(f"  {'labels':>6} {'combination':>14} {'picked single':>14} {'hindsight':>10} "
          f"{'combo - picked':>16} {'combo - hindsight':>18}  chosen weighting")
    for n_fit in label_counts:
        if n_fit > len(target) - 5:
            continue
        res, procedures = _split_taus(scores, target, n_fit, splits, seed, fixed)
        mean, std = res.mean(0), res.std(0)
        d1, d2 = res[:, 0] - res[:, 1], res[:, 0] - res[:, 2]
        se = np.sqrt(len(res))
        print(f"  {n_fit:>6} {mean[0]:7.3f} +-{std[0]:.3f} {mean[1]:7.3f} +-{std[1]:.3f} {mean[2]:10.3f} "
              f"{d1.mean():+9.3f} +-{d1.std() / se:.3f} {d2.mean():+11.3f} +-{d2.std() / se:.3f}  "
              + ", ".join(f"{p} {c}" for p, c in sorted(procedures.items())))
        run.figure(f"proxies vs {label}, {n_fit} labels: combination tau", round(float(mean[0]), 3))
        run.figure(f"proxies vs {label}, {n_fit} labels: combination - picked single",
                   round(float(d1.mean()), 3), show=label == "inherited" and n_fit == 20,
                   note=f"paired, standard error {d1.std() / se:.3f}")
    print(f"  (hindsight = {PROXIES[best] if len(PROXIES) == scores.shape[1] else best} with its sign, "
          f"the best single proxy on all {len(target)} archs; +- after a mean: std over splits, "
          f"after a difference: standard error of the paired difference)")


def _synthetic_proxies(seed: int, kind: str, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """``kind='copies'``: two noisy monotone copies of the target + 4 noise proxies (+2 padding);
    ``'perfect'``: a perfect proxy, a weak one, and noise. Always ``len(PROXIES)`` columns."""
    rng = np.random.default_rng([seed, 99])
    y = rng.normal(size=n)
    if kind == "copies":
        cols = [np.exp(y + rng.normal(size=n)), -(y + rng.normal(size=n))]
    else:
        cols = [y ** 3, y + 2.0 * rng.normal(size=n)]
    cols += [rng.normal(size=n) for _ in range(len(PROXIES) - len(cols))]
    return np.stack(cols, axis=1), y


def section_proxies(space, archs, y, standalone, args, run: BenchRun) -> None:
    print("\n== zero-cost proxies ==")
    t0 = time.perf_counter()
    table = proxy_table(space, archs, args)
    index = {a.key: i for i, a in enumerate(archs)}
    rows = np.array([index[k] for k in table["key"]])
    scores = table[list(PROXIES)].to_numpy(dtype=float)
    print(f"{len(PROXIES)} proxies of {len(rows)} archs ({args.data}_proxies.csv; one batch of 32 "
          f"{args.dataset}, init seed {args.seed}): {time.perf_counter() - t0:.0f} s; "
          f"non-finite scores: {int((~np.isfinite(scores)).sum())}")
    splits = 5 if args.quick else args.proxy_splits
    counts = (10, 20) if args.quick else (10, 20, 40)
    targets = {"inherited": (y[rows], scores)}
    if standalone is not None:
        pos = {k: i for i, k in enumerate(table["key"])}
        have = [(i, pos[a.key]) for i, a in enumerate(standalone[0]) if a.key in pos]
        if len(have) >= 10:
            s_idx, t_idx = zip(*have, strict=True)
            targets["standalone"] = (standalone[1][list(s_idx)], scores[list(t_idx)])
    t0 = time.perf_counter()
    for label, (target, mat) in targets.items():
        print(f"-- against {label} accuracy ({len(target)} archs; {splits} random splits: fit on the "
              f"labelled archs, Kendall tau on the rest) --")
        print("  " + "  ".join(f"{p}={kendall_tau(target, mat[:, k]):+.3f}" for k, p in enumerate(PROXIES)))
        for k, p in enumerate(PROXIES):
            run.figure(f"proxy {p} tau vs {label}", round(float(kendall_tau(target, mat[:, k])), 3))
        _combination_table(mat, target, counts if label == "inherited" else (10, 15), splits, args.seed,
                           run, label)
    for kind in ("copies", "perfect"):
        print(f"-- synthetic check '{kind}' ({'two noisy copies of the target + noise' if kind == 'copies' else 'one perfect proxy, a weak one, noise'}; "
              f"300 archs, 5 draws x {max(1, splits // 5)} splits) --")
        mats = [_synthetic_proxies(s, kind) for s in range(5)]
        for n_fit in counts:
            res = np.concatenate([_split_taus(m, t, n_fit, max(1, splits // 5), args.seed,
                                              _best_fixed(m, t))[0] for m, t in mats])
            d1, d2 = res[:, 0] - res[:, 1], res[:, 0] - res[:, 2]
            se = np.sqrt(len(res))
            run.figure(f"synthetic '{kind}', {n_fit} labels: combination - picked single",
                       round(float(d1.mean()), 3))
            print(f"  {n_fit:>6} labels: combination {res[:, 0].mean():.3f}, picked single "
                  f"{res[:, 1].mean():.3f}, hindsight {res[:, 2].mean():.3f}; combo - picked "
                  f"{d1.mean():+.3f} +-{d1.std() / se:.3f}, combo - hindsight {d2.mean():+.3f} +-{d2.std() / se:.3f}")
    print(f"combination evaluation: {time.perf_counter() - t0:.0f} s")


def _best_fixed(scores, target):
    taus = [kendall_tau(target, scores[:, k]) for k in range(scores.shape[1])]
    best = int(np.argmax(np.abs(taus)))
    return best, (1.0 if taus[best] >= 0 else -1.0)


def section_latency(space, archs, frame, args, run: BenchRun) -> None:
    print("\n== latency ==")
    shape = tuple(args.input_shape)
    refs = {c: ColumnModel(frame, c) for c in frame.columns if c.endswith("_table_ms")}
    new_col = args.new_device
    refs.pop(new_col, None)
    if refs and new_col in frame:
        have = np.flatnonzero(frame[new_col].notna().to_numpy())
        m_archs, m_y = [archs[i] for i in have], frame[new_col].to_numpy()[have]
        print(f"new device: {new_col}, {len(m_archs)} archs; "
              f"references: {', '.join(refs)}")
        for name, ref in refs.items():
            print(f"  reference {name} alone: tau {kendall_tau(m_y, ref.predict(m_archs)):.3f}")
        few_shot_table(space, shape, refs, m_archs, m_y, args, run, label=new_col)
        half = len(m_archs) * 2 // 3
        for kind in ("linear", "mlp"):
            model = LayerwiseLatencyPredictor(space, shape, 10, kind=kind, seed=args.seed)
            model.fit(m_archs[:half], m_y[:half])
            pred = model.predict(m_archs[half:])
            print(f"  layer-feature predictor ({kind}, no table) fitted on {half} measured archs: "
                  f"tau {kendall_tau(m_y[half:], pred):.3f}, MAPE {mape(m_y[half:], pred):.1f}%")
            run.figure(f"{new_col}: layer-feature {kind} (no table), tau",
                       round(float(kendall_tau(m_y[half:], pred)), 3))
    print("-- synthetic devices (roofline per op + launch cost, 2% noise) --")
    syn_refs = {f"syn{i}": SyntheticDevice(i, space, shape, 10, spread=1.0) for i in range(3)}
    pool = archs[:120 if not args.quick else 40]
    for dev in range(3):
        device = SyntheticDevice(100 + dev, space, shape, 10, spread=1.0, noise=0.02)
        few_shot_table(space, shape, syn_refs, pool, device.measure(pool, dev), args, run,
                       label=f"synthetic device {dev}", truth=device.predict(pool))


def few_shot_table(space, shape, refs, m_archs, m_y, args, run: BenchRun, label, truth=None) -> None:
    truth = m_y if truth is None else truth
    print(f"  {label}: {'k':>3} {'tau':>7} {'MAPE%':>7} | {'1-ref rescaled':>15} | {'layerwise only':>15}")
    for k in (5, 10, 20):
        res = []
        for r in range(3 if args.quick else 20):
            idx = np.random.default_rng([args.seed, k, r]).permutation(len(m_archs))
            fit, test = idx[:k], idx[k:]
            fit_archs, test_archs = [m_archs[i] for i in fit], [m_archs[i] for i in test]
            model = FewShotLatencyPredictor(refs, space, shape, 10).fit(fit_archs, m_y[fit])
            pred = model.predict(test_archs)
            # baseline: the reference that ranks the k samples best, rescaled by the median ratio
            ref_preds = {n: m.predict(fit_archs) for n, m in refs.items()}
            best = max(ref_preds, key=lambda n: kendall_tau(m_y[fit], ref_preds[n]))
            ratio = np.median(m_y[fit] / ref_preds[best])
            base = ratio * refs[best].predict(test_archs)
            lw = LayerwiseLatencyPredictor(space, shape, 10).fit(fit_archs, m_y[fit]).predict(test_archs)
            res.append((kendall_tau(truth[test], pred), mape(truth[test], pred),
                        kendall_tau(truth[test], base), mape(truth[test], base),
                        kendall_tau(truth[test], lw), mape(truth[test], lw)))
        m = np.mean(res, axis=0)
        print(f"  {'':<{len(label)}}  {k:>3} {m[0]:7.3f} {m[1]:7.2f} | {m[2]:6.3f} {m[3]:7.2f}% | "
              f"{m[4]:6.3f} {m[5]:7.2f}%")
        run.figure(f"{label}: few-shot k={k}, tau", round(float(m[0]), 3),
                   show=k == 5 and not label.startswith("synthetic"))
        run.figure(f"{label}: few-shot k={k}, MAPE", round(float(m[1]), 2), "%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode")
    parser.add_argument("--data", type=str, default=str(HERE / "data" / "ofa_digits"),
                        help="file prefix of the ground truth (<prefix>_supernet.csv, _meta.json, "
                             "_standalone.csv)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, default=HERE / "out" / "predictors_curve.png")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["accuracy", "standalone", "proxies", "latency"])
    parser.add_argument("--features", choices=["default", "onehot"], default="default",
                        help="accuracy predictors' features: the library default (compact encoding + "
                             "log FLOPs/params) or the plain one-hot encoding (the earlier default)")
    parser.add_argument("--proxy-archs", type=int, default=600,
                        help="archs (first rows of the supernet CSV) scored by the zero-cost proxies")
    parser.add_argument("--proxy-splits", type=int, default=100,
                        help="random label/test splits per label count in the proxy section")
    parser.add_argument("--recompute-proxies", action="store_true",
                        help="recompute the cached proxy scores (<--data>_proxies.csv)")
    parser.add_argument("--new-device", default="lat_cpu2_measured_ms",
                        help="latency column playing the new device (the other *_table_ms are references)")
    results_option(parser, "predictor_quality")
    args = parser.parse_args()
    run = BenchRun(args.results, quick=args.quick)
    torch.set_num_threads(args.threads)
    args.png.parent.mkdir(parents=True, exist_ok=True)
    supernet_csv = Path(f"{args.data}_supernet.csv")
    if not supernet_csv.is_file():
        raise SystemExit(f"--data {args.data}: no {supernet_csv}")
    # the space options travel with the data (written by predictors_data.py)
    meta_path = Path(f"{args.data}_meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    options = meta.get("space_options",
                       {"width_mult": 0.25, "resolutions": [12, 16, 20, 24], "input_shape": [1, 8, 8]})
    args.input_shape, args.dataset = options["input_shape"], meta.get("data", "digits")
    space = get_space("mobilenetv3_ofa", **options)
    archs, y, frame = read_arch_table(supernet_csv, "accuracy", space)
    print(f"{supernet_csv.name}: {len(archs)} archs, inherited accuracy {y.min():.3f}..{y.max():.3f} "
          f"(std {y.std():.4f})")
    run.note(f"ground truth {supernet_csv.name}: {len(archs)} archs; sections skipped: {args.skip or 'none'}")
    print_reliability(frame, args.data, run, show="accuracy" not in args.skip)
    standalone = None
    standalone_csv = Path(f"{args.data}_standalone.csv")
    if standalone_csv.is_file():
        standalone = read_arch_table(standalone_csv, "accuracy", space)
        print(f"{standalone_csv.name}: {len(standalone[0])} archs, standalone accuracy "
              f"{standalone[1].min():.3f}..{standalone[1].max():.3f}")
    best = float("nan")
    if "accuracy" not in args.skip:
        best = section_accuracy(space, archs, y, standalone, args, run)
    if "standalone" not in args.skip and standalone is not None:
        section_standalone(space, archs, y, standalone, args, run)
    if "proxies" not in args.skip:
        section_proxies(space, archs, y, standalone, args, run)
    if "latency" not in args.skip:
        section_latency(space, archs, frame, args, run)
    if not np.isnan(best):
        run.figure("predictors_best_tau_at_100", round(best, 3), target=">= 0.8", headline=True,
                   note="best accuracy predictor's Kendall tau with 100 training archs")
    run.finish()
    if np.isnan(best):
        print("predictors_best_tau_at_100: nan")


if __name__ == "__main__":
    main()
