"""Ground truth for bench/predictor_quality.py: OFA digits data sets in bench/data/.

Produces, for a reduced ``mobilenetv3_ofa`` on digits (8x8 images upsampled to
the chosen resolution):

* ``bench/data/ofa_digits_supernet.csv``: ``--archs`` unique random subnets with
  their supernet-inherited accuracy (BN recalibrated) on the held-out images
  (val + test), FLOPs, params, table latencies on reference devices (torch CPU
  1 thread, ONNX Runtime 1 thread), and, for the first ``--measured`` rows, the
  end-to-end measured latency on a "new" device (torch CPU 2 threads) that has
  no table.
* ``bench/data/ofa_digits_standalone.csv``: ``--standalone`` subnets trained
  from scratch, with their held-out accuracy and their inherited accuracy.

    python bench/predictors_data.py [--quick] [--archs 600] [--standalone 60]
    python bench/predictors_data.py --dataset digits_aug --epochs 10 --archs 500 --standalone 0 \
        --measured 0 --reuse-latency --sandwich-resolution extremes   # bench/data/ofa_digits_aug_*

``--dataset`` picks the data set (files ``bench/data/ofa_<dataset>_*``). Each arch's
val half is scored after one BN-calibration draw and its test half after another
(columns ``acc_val``, ``acc_test``; ``accuracy`` is their image-weighted mean), so the
split-half reliability of the ground truth comes for free. ``--probe N`` measures
calibration and image noise for several calibration sizes; ``--reliability N``
measures the reliability of an existing CSV's protocol (writes
``<prefix>_reliability.json``); ``--shard K/N`` and ``--from-parts N`` split the
evaluation over processes.

Needs ``supernets`` (OFASupernet, train_supernet, evaluate_subnet) and
``hardware`` (LatencyTable, Profiler, get_device). The last line is
``predictors_data_rows: <n>``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from _results import BenchRun
from torch.utils.data import TensorDataset
from tqdm import tqdm

from hardware import LatencyTable, Profiler, get_device
from nas.config import parse
from predictors import split_half_reliability
from search_spaces import get_space
from supernets import (
    OFATrainConfig,
    evaluate_subnet,
    load_supernet,
    sandwich_schedule,
    train_supernet,
)
from supernets.data import load_dataset
from supernets.errors import SupernetError

DATA = Path(__file__).resolve().parent / "data"
OUT = Path(__file__).resolve().parent / "out"


def heldout_accuracy(module: torch.nn.Module, data: TensorDataset) -> float:
    module.eval()
    x, y = data.tensors
    with torch.no_grad():
        return float((module(x).argmax(1) == y).float().mean())


def train_from_scratch(module: torch.nn.Module, train: TensorDataset, epochs: int, lr: float,
                       seed: int, batch: int = 64) -> torch.nn.Module:
    """SGD with Nesterov momentum and a cosine schedule; data order from ``seed``."""
    x, y = train.tensors
    steps_per_epoch = len(x) // batch
    total = max(1, epochs * steps_per_epoch)
    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=3e-5)
    gen = torch.Generator().manual_seed(seed)
    module.train()
    for step in range(total):
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(x), generator=gen)
        idx = order[(step % steps_per_epoch) * batch:(step % steps_per_epoch + 1) * batch]
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(module(x[idx]), y[idx]).backward()
        opt.step()
    return module.eval()


def score_subnet(supernet, arch, data, halves, calib_images: int, seeds: Sequence[int]) -> list[float]:
    """Inherited accuracy of ``arch`` on each held-out half after its own BN-calibration draw.

    Half ``k`` is scored after recalibrating the batch-norm statistics on
    ``calib_images`` training images drawn with ``seeds[k]`` (the same draws for every
    arch): the two halves are then two independent measurements, whose agreement
    across archs is the reliability of the ground truth, at no extra cost.
    """
    return [evaluate_subnet(supernet, arch, data, split=half, calib_images=calib_images, seed=seed)
            for half, seed in zip(halves, seeds, strict=True)]


def probe_protocol(supernet, archs, data, halves, sizes: Sequence[int], draws: int = 2) -> None:
    """Noise and cost of the scoring protocol on a few archs, to choose ``--calib-images``.

    Per calibration size: seconds per arch (one calibration, both halves scored), the
    calibration noise (std of the full held-out accuracy across draws), the image-sample
    noise of the full held-out set (from the two halves under the same draw) and the
    spread between archs, all in accuracy points.
    """
    print(f"probe on {len(archs)} archs, {draws} calibration draws per size; "
          f"held-out halves {len(halves[0])} + {len(halves[1])} images")
    w = np.array([len(halves[0]), len(halves[1])], float) / (len(halves[0]) + len(halves[1]))
    for size in sizes:
        t0 = time.perf_counter()
        res = np.array([[score_subnet(supernet, a, data, halves, size, (seed, seed))
                         for seed in range(100, 100 + draws)] for a in archs])  # (archs, draws, 2)
        seconds = (time.perf_counter() - t0) / len(archs) / draws
        full = res @ w  # (archs, draws)
        calib_var = float(full.var(axis=1, ddof=1).mean())
        image_var = float(np.var(res[:, :, 0] - res[:, :, 1], axis=0, ddof=1).mean() / 4)
        signal = max(0.0, float(full.mean(axis=1).var(ddof=1)) - image_var - calib_var / draws)
        print(f"  calib {size:5d}: {seconds:5.2f} s/arch; std (points): calibration "
              f"{100 * calib_var ** 0.5:.2f}, images {100 * image_var ** 0.5:.2f}, "
              f"between archs {100 * signal ** 0.5:.2f}", flush=True)


def measure_reliability(supernet, space, data, halves, csv_path: Path, n: int, calib_images: int,
                        seed: int) -> dict:
    """Split-half reliability of an existing ground truth's protocol (one calibration draw).

    For the first ``n`` archs of ``csv_path``: the val half and the test half under the
    protocol's draw (``seed``; together they reproduce the CSV's accuracy when the
    supernet is the same), and the test half again under an independent draw
    (``seed + 1``). The reliability is that of the halves with independent draws.
    """
    frame = pd.read_csv(csv_path)
    archs = [space.validate(json.loads(a)) for a in frame.arch[:n]]
    w = np.array([len(halves[0]), len(halves[1])], float) / (len(halves[0]) + len(halves[1]))
    rows = []
    for arch in tqdm(archs, desc="reliability", disable=None):
        val = evaluate_subnet(supernet, arch, data, split=halves[0], calib_images=calib_images, seed=seed)
        test = evaluate_subnet(supernet, arch, data, split=halves[1], calib_images=0)
        test2 = evaluate_subnet(supernet, arch, data, split=halves[1], calib_images=calib_images,
                                seed=seed + 1)
        rows.append((val, test, test2))
    val, test, test2 = np.array(rows).T
    reproduced = float(np.abs(w @ np.stack([val, test]) - frame.accuracy[:n].to_numpy()).max())
    rel = split_half_reliability(val, test2)
    same = split_half_reliability(val, test)
    print(f"{n} archs of {csv_path.name}: largest |accuracy - CSV| {reproduced:.4f} (0: same supernet)")
    print("reliability (val half draw 0 vs test half draw 1): "
          + ", ".join(f"{k} {v:.3f}" for k, v in rel.items()))
    print("  (halves under the same draw: " + ", ".join(f"{k} {v:.3f}" for k, v in same.items()) + ")")
    return {"source": f"split_half_reliability on the first {n} archs of {csv_path.name}: val half after "
                      f"calibration draw {seed} vs test half after draw {seed + 1} "
                      "(bench/predictors_data.py --reliability)",
            "max_abs_diff_to_csv": reproduced, **rel,
            "same_draw": same}


def unique_archs(space, n: int, seed: int) -> list:
    rng, seen, archs = np.random.default_rng(seed), set(), []
    while len(archs) < n:
        arch = space.sample(rng)
        if arch.key not in seen:
            seen.add(arch.key)
            archs.append(arch)
    return archs


def final_val_acc(run_dir: Path) -> dict[str, float]:
    """Validation accuracy of the largest and smallest subnets at the end of training."""
    rows = [r for r in pd.read_csv(run_dir / "metrics.csv").to_dict("records")
            if r.get("val_acc_largest") == r.get("val_acc_largest")]  # not NaN
    return {"largest": float(rows[-1]["val_acc_largest"]),
            "smallest": float(rows[-1]["val_acc_smallest"])} if rows else {}


def measure_latency(space, archs, frame: pd.DataFrame, options: dict, shape, classes: int,
                    args: argparse.Namespace) -> None:
    """Table latencies on the reference devices and end-to-end latency on the new device."""
    profiler = Profiler(min_runs=5, max_runs=40, time_budget_s=0.2)
    for column, name, opts in (("lat_cpu1_table_ms", "cpu", {"threads": 1}),
                               ("lat_ort1_table_ms", "onnxruntime", {"threads": 1})):
        t0 = time.perf_counter()
        try:
            table = LatencyTable.build(space, get_device(name, **opts), shape, classes, profiler=profiler,
                                       rng=args.seed, progress=False, space_options=options)
        except Exception as exc:  # noqa: BLE001  e.g. ONNX export unavailable: skip that device
            print(f"table on {name} {opts} failed: {type(exc).__name__}: {exc}")
            continue
        frame[column] = table.predict(archs)
        print(f"table {column}: {len(table)} layers "
              f"in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    new_device = get_device("cpu", threads=2)
    measured = profiler.measure_many([space.build(a, classes, shape) for a in archs[:args.measured]],
                                     shape, new_device)
    frame["lat_cpu2_measured_ms"] = [m.value_ms for m in measured] + [np.nan] * (len(archs) - len(measured))
    print(f"measured {len(measured)} archs end to end on cpu threads=2 in {time.perf_counter() - t0:.0f} s")


def reuse_latency(path: Path, frame: pd.DataFrame) -> list[str]:
    """Copy the ``lat_*`` columns of an earlier CSV into ``frame`` by arch key.

    Returns the copied columns (empty when the file has none). Every arch of ``frame``
    must be in the earlier file.
    """
    old = pd.read_csv(path)
    columns = [c for c in old.columns if c.startswith("lat_")]
    if not columns:
        return []
    old = old.set_index("key")
    missing = [k for k in frame.key if k not in old.index]
    if missing:
        raise SystemExit(f"{path}: lacks {len(missing)} archs of this run (e.g. {missing[0]}); "
                         "drop --reuse-latency")
    for column in columns:
        frame[column] = old.loc[frame.key, column].to_numpy()
    print(f"latency columns {columns} copied by arch key from {path}")
    return columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny budgets, out/ only")
    parser.add_argument("--dataset", default="digits", choices=["digits", "digits_aug"],
                        help="supernets.data set; files are bench/data/ofa_<dataset>_*")
    parser.add_argument("--archs", type=int, default=600)
    parser.add_argument("--standalone", type=int, default=30)
    parser.add_argument("--standalone-epochs", type=int, default=8)
    parser.add_argument("--measured", type=int, default=100, help="archs timed on the new device")
    parser.add_argument("--epochs", type=int, default=16,
                        help="supernet epochs (the library's default sandwich schedule)")
    parser.add_argument("--lr", type=float, default=0.1, help="supernet peak learning rate")
    parser.add_argument("--sandwich-resolution", choices=("extremes", "random"), default="random",
                        help="supernets.PhaseConfig.sandwich_resolution of the supernet trained here "
                             "(the supernets of the files before 2026-11-22 08:00 UTC: extremes)")
    parser.add_argument("--calib-images", type=int, default=1024,
                        help="BN recalibration images of the supernet config (its val metrics)")
    parser.add_argument("--score-calib-images", type=int, default=None,
                        help="BN recalibration images per draw when scoring subnets "
                             "(default: --calib-images)")
    parser.add_argument("--reuse-latency", nargs="?", const="", default=None, metavar="CSV",
                        help="copy the lat_* columns by arch key from CSV (default: this run's own "
                             "earlier CSV; for digits_aug: ofa_digits_supernet.csv) instead of profiling; "
                             "the archs are then those of CSV, in its order")
    parser.add_argument("--supernet", type=Path, default=None, metavar="RUN_DIR",
                        help="score subnets of this trained supernet (a train_supernet run folder, e.g. "
                             "one of bench/out/supernet_quality_runs/) instead of training one; its space "
                             "options replace --width/--resolutions")
    parser.add_argument("--eval-copies", type=int, default=3,
                        help="digits_aug: distorted copies per held-out image (more: less image noise; "
                             "same source images, the train split is unchanged)")
    parser.add_argument("--name", default=None,
                        help="file prefix under bench/data (default ofa_<dataset>)")
    parser.add_argument("--no-latency", action="store_true",
                        help="leave out the lat_* columns (no table builds, no end-to-end timing)")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[12, 16, 20, 24])
    parser.add_argument("--train-only", action="store_true", help="stop after training the supernet")
    parser.add_argument("--probe", type=int, default=0,
                        help="after training, measure calibration/image noise and cost on this many "
                             "archs for several --calib-images values, then stop")
    parser.add_argument("--reliability", type=int, default=0, metavar="N",
                        help="measure the split-half reliability of the existing ground truth on its "
                             "first N archs (writes <prefix>_reliability.json, leaves the CSV), then stop")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="evaluate only the K-th of N contiguous parts of the archs into "
                             "bench/out/<prefix>_part<K>of<N>.csv, then stop (run N of them at once)")
    parser.add_argument("--from-parts", type=int, default=0, metavar="N",
                        help="take the inherited accuracies from the N part files of --shard runs "
                             "instead of evaluating")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.eval_copies < 1 or (args.eval_copies != 3 and args.dataset != "digits_aug"):
        parser.error(f"--eval-copies {args.eval_copies}: a positive count, and only for --dataset digits_aug")
    if args.score_calib_images is None:
        args.score_calib_images = args.calib_images
    if args.quick:
        args.archs, args.standalone, args.standalone_epochs, args.measured = 12, 3, 1, 6
        args.epochs = 4
    run = BenchRun("predictors_data", quick=args.quick)  # written when a data set was produced
    torch.set_num_threads(args.threads)
    out_dir = OUT if args.quick else DATA
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.dataset, seed=args.seed)
    options = {"width_mult": args.width, "resolutions": list(args.resolutions),
               "input_shape": list(data.input_shape)}
    space = get_space("mobilenetv3_ofa", **options)
    shape, classes = data.input_shape, data.num_classes
    prefix = args.name or f"ofa_{args.dataset}"
    csv_path = out_dir / f"{prefix}_supernet.csv"
    old_csv = None
    if args.reuse_latency is not None:
        if args.reuse_latency:
            old_csv = Path(args.reuse_latency)
        elif args.dataset != "digits":
            old_csv = DATA / "ofa_digits_supernet.csv"
        else:  # keep the earlier CSV aside (an interrupted run left it there)
            old_csv = out_dir / f"{prefix}_supernet.previous.csv"
            if csv_path.is_file() and not old_csv.is_file():
                csv_path.replace(old_csv)
        if not old_csv.is_file():
            raise SystemExit(f"--reuse-latency: no {old_csv} to take the latencies from")

    # 1. supernet (the library's default schedule, or a given trained one) ------------------------
    t0 = time.perf_counter()
    if args.supernet is not None:
        run_dir = args.supernet
        try:
            supernet, checkpoint = load_supernet(run_dir)
        except SupernetError as exc:
            raise SystemExit(f"--supernet: {exc}") from None
        if checkpoint.data != args.dataset:
            raise SystemExit(f"--supernet {run_dir}: trained on {checkpoint.data!r}, not {args.dataset!r}")
        config = parse(OFATrainConfig, checkpoint.config)
        options = dict(checkpoint.space_options)
        space = get_space("mobilenetv3_ofa", **options)
    else:
        phases = sandwich_schedule(args.epochs, lr=args.lr, sandwich_resolution=args.sandwich_resolution)
        config = OFATrainConfig(phases=phases, batch_size=64, seed=args.seed, checkpoint_every=100,
                                calib_images=args.calib_images)
        suffix = "" if args.dataset == "digits" else f"_{args.dataset}"
        run_dir = OUT / (("ofa_run_quick" if args.quick else "ofa_run") + suffix)
        supernet = train_supernet(space, config, data, run_dir, resume=True, progress=False,
                                  space_options=options).supernet
    print(f"supernet trained ({[(p.name, p.epochs, p.lr, p.schedule) for p in config.phases]}) "
          f"in {time.perf_counter() - t0:.0f} s; final val accuracy {final_val_acc(run_dir)}", flush=True)
    if args.train_only:
        return
    held = data if args.eval_copies == 3 else load_dataset(args.dataset, seed=args.seed, copies=args.eval_copies)
    halves = (held.val, held.test)
    if args.probe:
        probe_protocol(supernet, unique_archs(space, args.probe, args.seed + 2), data, halves,
                       (256, 512, 1024))
        return
    if args.reliability:
        rel = measure_reliability(supernet, space, data, halves, csv_path, args.reliability,
                                  args.score_calib_images, args.seed)
        (out_dir / f"{prefix}_reliability.json").write_text(json.dumps(rel, indent=1))
        return

    # 2. inherited accuracies: val and test halves, per BN-calibration draw -----------------------
    if old_csv is not None:  # the archs of the earlier run, so that its latencies still apply
        archs = [space.validate(json.loads(a)) for a in pd.read_csv(old_csv).arch[:args.archs]]
    else:
        archs = unique_archs(space, args.archs, args.seed + 1)
    t0 = time.perf_counter()
    weights = np.array([len(halves[0]), len(halves[1])], float) / (len(halves[0]) + len(halves[1]))
    parts = [OUT / f"{prefix}_part{k}of{args.from_parts}.csv" for k in range(args.from_parts)]
    todo = archs
    if args.shard:
        k, n = (int(v) for v in args.shard.split("/"))
        todo = archs[k * len(archs) // n:(k + 1) * len(archs) // n]
    rows = []
    for i, arch in enumerate(tqdm([] if parts else todo, desc="inherited accuracy", disable=None)):
        cost = space.complexity(arch, shape, classes)
        val, test = score_subnet(supernet, arch, data, halves, args.score_calib_images,
                                 (args.seed, args.seed + 1))
        rows.append({"key": arch.key, "arch": arch.to_json(), "accuracy": float(weights @ [val, test]),
                     "acc_val": val, "acc_test": test, "flops": cost.flops, "params": cost.params})
        if (i + 1) % 50 == 0:
            print(f"  {i + 1} archs in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.shard:
        OUT.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(OUT / f"{prefix}_part{k}of{n}.csv", index=False)
        print(f"shard {args.shard}: {len(rows)} archs in {time.perf_counter() - t0:.0f} s")
        return
    if parts:
        rows = pd.concat([pd.read_csv(part) for part in parts]).to_dict("records")
        if [r["key"] for r in rows] != [a.key for a in archs]:
            raise SystemExit(f"{parts}: hold other archs than this run (same --archs and --reuse-latency?)")
    frame = pd.DataFrame(rows)
    print(f"{len(frame)} subnets evaluated in {time.perf_counter() - t0:.0f} s; accuracy "
          f"{frame.accuracy.min():.3f}..{frame.accuracy.max():.3f} (mean {frame.accuracy.mean():.3f}, "
          f"std {frame.accuracy.std():.4f})", flush=True)
    reliability = split_half_reliability(frame.acc_val, frame.acc_test)
    print("reliability (val half vs test half, independent calibration draws): "
          + ", ".join(f"{k} {v:.3f}" for k, v in reliability.items()), flush=True)
    run.note(f"wrote {csv_path.name} ({prefix}_*)")
    run.figure("inherited accuracy min", round(float(frame.accuracy.min()), 4))
    run.figure("inherited accuracy max", round(float(frame.accuracy.max()), 4))
    run.figure("inherited accuracy std", round(float(frame.accuracy.std()), 4))
    run.figure("ceiling tau of a perfect predictor", round(float(reliability["tau_ceiling"]), 3), show=True)

    # 3. latency: tables on reference devices, end-to-end on a new device ----------------------------
    latency_from = None
    if old_csv is not None and reuse_latency(old_csv, frame):
        latency_from = old_csv.name
    elif not args.no_latency:
        frame.to_csv(csv_path, index=False)  # again below, with latencies
        measure_latency(space, archs, frame, options, shape, classes, args)
    frame.to_csv(csv_path, index=False)
    if old_csv is not None and old_csv.name.endswith(".previous.csv"):
        old_csv.unlink()
    n_held = len(halves[0]) + len(halves[1])
    meta = {"space": "mobilenetv3_ofa", "space_options": options, "data": args.dataset,
            "accuracy": f"top-1 on val + test ({n_held} images): the val half after BN recalibration "
                        f"on {args.score_calib_images} train images drawn with seed {args.seed}, the test half "
                        f"after a second draw (seed {args.seed + 1}); acc_val / acc_test hold the halves",
            "reliability": {"source": "split_half_reliability(acc_val, acc_test)", **reliability},
            "supernet_config": config.to_dict(),
            "supernet_val_acc": final_val_acc(run_dir),
            "latency": (f"lat_* columns copied by arch key from {latency_from}" if latency_from
                        else "none (--no-latency)" if args.no_latency else "profiled in this run"),
            "eval_copies": args.eval_copies,
            "supernet_dir": str(run_dir.relative_to(OUT.parent)) if run_dir.is_relative_to(OUT.parent) else str(run_dir),
            "reference_devices": ["cpu threads=1", "onnxruntime threads=1"],
            "new_device": "cpu threads=2 (end-to-end, first --measured rows)",
            "standalone": {"epochs": args.standalone_epochs, "lr": 0.05, "batch": 64}}
    (out_dir / f"{prefix}_meta.json").write_text(json.dumps(meta, indent=1))

    # 4. standalone training ---------------------------------------------------------------------------
    if not args.standalone:
        run.figure("predictors_data_rows", len(frame), "archs", headline=True)
        run.finish()
        return
    heldout = TensorDataset(*(torch.cat([a, b]) for a, b in zip(*(h.tensors for h in halves), strict=True)))
    t0 = time.perf_counter()
    standalone = []
    for i, arch in enumerate(tqdm(archs[:args.standalone], desc="standalone", disable=None)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed + i)
            module = space.build(arch, classes, shape)
        train_from_scratch(module, data.train, args.standalone_epochs, 0.05, args.seed + i)
        standalone.append({"key": arch.key, "arch": arch.to_json(),
                           "accuracy": heldout_accuracy(module, heldout),
                           "inherited_accuracy": frame.accuracy[i],
                           "flops": frame.flops[i], "params": frame.params[i]})
    pd.DataFrame(standalone).to_csv(out_dir / f"{prefix}_standalone.csv", index=False)
    print(f"{len(standalone)} subnets trained standalone ({args.standalone_epochs} epochs) in "
          f"{time.perf_counter() - t0:.0f} s")
    run.figure("standalone subnets", len(standalone), "archs")
    run.figure("predictors_data_rows", len(frame), "archs", headline=True)
    run.finish()


if __name__ == "__main__":
    main()
