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

Needs ``supernets`` (OFASupernet, train_supernet, evaluate_subnet) and
``hardware`` (LatencyTable, Profiler, get_device). The last line is
``predictors_data_rows: <n>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset
from tqdm import tqdm

from hardware import LatencyTable, Profiler, get_device
from search_spaces import get_space
from supernets import OFATrainConfig, evaluate_subnet, sandwich_schedule, train_supernet
from supernets.data import load_dataset

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


def reuse_latency(path: Path, frame: pd.DataFrame) -> bool:
    """Copy the ``lat_*`` columns of an earlier CSV of the same archs; False if it has none."""
    if not path.is_file():
        return False
    old = pd.read_csv(path)
    columns = [c for c in old.columns if c.startswith("lat_")]
    if not columns:
        return False
    if list(old.key) != list(frame.key):
        raise SystemExit(f"{path}: holds other archs than this run; drop --reuse-latency")
    for column in columns:
        frame[column] = old[column].to_numpy()
    print(f"latency columns {columns} copied from {path}")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny budgets, out/ only")
    parser.add_argument("--archs", type=int, default=600)
    parser.add_argument("--standalone", type=int, default=30)
    parser.add_argument("--standalone-epochs", type=int, default=8)
    parser.add_argument("--measured", type=int, default=100, help="archs timed on the new device")
    parser.add_argument("--epochs", type=int, default=16,
                        help="supernet epochs (the library's default progressive_shrinking schedule)")
    parser.add_argument("--lr", type=float, default=0.1, help="supernet peak learning rate")
    parser.add_argument("--calib-images", type=int, default=1024)
    parser.add_argument("--reuse-latency", action="store_true",
                        help="copy the latency columns of the existing CSV (same archs) instead of "
                             "profiling again")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[12, 16, 20, 24])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.archs, args.standalone, args.standalone_epochs, args.measured = 12, 3, 1, 6
        args.epochs = 4
    torch.set_num_threads(args.threads)
    out_dir = OUT if args.quick else DATA
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset("digits", seed=args.seed)
    heldout = TensorDataset(*(torch.cat([a, b]) for a, b in zip(data.val.tensors, data.test.tensors,
                                                                  strict=True)))
    options = {"width_mult": args.width, "resolutions": list(args.resolutions),
               "input_shape": list(data.input_shape)}
    space = get_space("mobilenetv3_ofa", **options)
    shape, classes = data.input_shape, data.num_classes
    csv_path = out_dir / "ofa_digits_supernet.csv"
    old_csv = None
    if args.reuse_latency:  # keep the earlier CSV aside (an interrupted run left it there)
        old_csv = out_dir / "ofa_digits_supernet.previous.csv"
        if csv_path.is_file() and not old_csv.is_file():
            csv_path.replace(old_csv)
        if not old_csv.is_file():
            raise SystemExit(f"--reuse-latency: no {csv_path} to take the latencies from")

    # 1. supernet (the library's default schedule) ----------------------------------------------
    t0 = time.perf_counter()
    phases = sandwich_schedule(args.epochs, lr=args.lr)
    config = OFATrainConfig(space="mobilenetv3_ofa", space_options=options, phases=phases,
                            batch_size=64, seed=args.seed, checkpoint_every=100,
                            calib_images=args.calib_images)
    run_dir = OUT / ("ofa_run_quick" if args.quick else "ofa_run")
    result = train_supernet(space, config, data, run_dir, resume=True, progress=False)
    supernet = result.supernet
    print(f"supernet trained ({[(p.name, p.epochs, p.lr, p.schedule) for p in config.phases]}) "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)

    # 2. inherited accuracies -------------------------------------------------------------------
    if old_csv is not None:  # the archs of the earlier run, so that its latencies still apply
        archs = [space.validate(json.loads(a)) for a in pd.read_csv(old_csv).arch]
    else:
        archs = unique_archs(space, args.archs, args.seed + 1)
    t0 = time.perf_counter()
    splits = dataclasses.replace(data, val=heldout)  # calibrate on train, score val + test
    rows = []
    for arch in tqdm(archs, desc="inherited accuracy", disable=None):
        cost = space.complexity(arch, shape, classes)
        acc = evaluate_subnet(supernet, arch, splits, split="val", calib_images=args.calib_images,
                              seed=args.seed)
        rows.append({"key": arch.key, "arch": arch.to_json(), "accuracy": acc,
                     "flops": cost.flops, "params": cost.params})
    frame = pd.DataFrame(rows)
    print(f"{len(frame)} subnets evaluated in {time.perf_counter() - t0:.0f} s; accuracy "
          f"{frame.accuracy.min():.3f}..{frame.accuracy.max():.3f} (mean {frame.accuracy.mean():.3f})",
          flush=True)

    # 3. latency: tables on reference devices, end-to-end on a new device ----------------------------
    if old_csv is None or not reuse_latency(old_csv, frame):
        frame.to_csv(csv_path, index=False)  # again below, with latencies
        measure_latency(space, archs, frame, options, shape, classes, args)
    frame.to_csv(csv_path, index=False)
    if old_csv is not None:
        old_csv.unlink()
    meta = {"space": "mobilenetv3_ofa", "space_options": options, "data": "digits",
            "accuracy": f"top-1 on val + test ({len(heldout)} images), BN recalibrated on "
                        f"{args.calib_images} train images",
            "supernet_config": config.to_dict(),
            "supernet_val_acc": final_val_acc(run_dir),
            "reference_devices": ["cpu threads=1", "onnxruntime threads=1"],
            "new_device": "cpu threads=2 (end-to-end, first --measured rows)",
            "standalone": {"epochs": args.standalone_epochs, "lr": 0.05, "batch": 64}}
    (out_dir / "ofa_digits_meta.json").write_text(json.dumps(meta, indent=1))

    # 4. standalone training ---------------------------------------------------------------------------
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
    pd.DataFrame(standalone).to_csv(out_dir / "ofa_digits_standalone.csv", index=False)
    print(f"{len(standalone)} subnets trained standalone ({args.standalone_epochs} epochs) in "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"predictors_data_rows: {len(frame)}")


if __name__ == "__main__":
    main()
