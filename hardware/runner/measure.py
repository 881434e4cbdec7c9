#!/usr/bin/env python3
"""Time the ONNX models of an hwnas latency bundle on this device.

Needs only Python 3, numpy and onnxruntime (no torch, no hwnas). Usage::

    python measure.py BUNDLE_DIR [-o measurements.csv] [--provider CPUExecutionProvider]
                      [--threads 1] [--time-budget 1.0]

The models are timed in the groups the manifest lists: in each group every model and
the bundle's reference network run once per round (round-robin, so drift hits them
alike), after a warm-up, until each model's statistic is stable, ``max_runs`` or the
time budget. The reference is run warm and repeated to the length of the group's
median model, as hwnas's profiler does. After each group its rows are appended to the
output CSV, so an interrupted run (Ctrl-C) resumes where it stopped when started again
with the same output. The device's fingerprint goes to ``<output>.device.json``.
Bring both files back and run ``nas lut import BUNDLE_DIR measurements.csv -o TABLE.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time

import numpy as np
import onnxruntime as ort

RUNNER_VERSION = 1
COLUMNS = ("bundle_id", "group", "model", "kind", "value_ms", "min_ms", "p10_ms", "median_ms",
           "p90_ms", "mean_ms", "n_runs", "reference_ms")


def statistic_of(samples, statistic):
    arr = np.asarray(samples, dtype=float)
    if statistic == "min":
        return float(arr.min())
    if statistic == "median":
        return float(np.median(arr))
    if statistic == "mean":
        return float(arr.mean())
    return float(np.percentile(arr, int(statistic[1:])))


def summary(samples, statistic):
    arr = np.asarray(samples, dtype=float)
    p10, p50, p90 = np.percentile(arr, [10, 50, 90])
    return {"value_ms": statistic_of(arr, statistic), "min_ms": float(arr.min()), "p10_ms": float(p10),
            "median_ms": float(p50), "p90_ms": float(p90), "mean_ms": float(arr.mean()),
            "n_runs": int(arr.size)}


def processor_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def fingerprint(args, manifest):
    return {"kind": "onnxruntime", "processor": processor_name(), "machine": platform.machine(),
            "cores": os.cpu_count(), "threads": args.threads, "torch": None,
            "onnxruntime": ort.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "dtype": "int8" if manifest["precision"] == "int8" else "float32",
            "batch_size": manifest["batch_size"], "gpu": None, "cuda": None, "clock": "wall",
            "provider": args.provider, "providers_available": ort.get_available_providers(),
            "platform": platform.platform(), "runner_version": RUNNER_VERSION}


class Session:
    """One model ready to run: a zero-argument timed call returning seconds."""

    def __init__(self, path, shape, args, seed=0):
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, options, providers=[args.provider])
        name = self.session.get_inputs()[0].name
        data = np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)
        self.feed = {name: data}

    def __call__(self):
        start = time.perf_counter()
        self.session.run(None, self.feed)
        return time.perf_counter() - start


def matched(reference, runners):
    """The reference, warm and repeated k times per sample to the group's median length."""
    reference()
    ref_s = max(reference(), 1e-9)
    module_s = float(np.median([run() for run in runners]))
    k = max(1, min(1000, round(module_s / ref_s)))

    def run():
        reference()
        return sum(reference() for _ in range(k)) / k

    return run


def round_robin(runners, p, statistic):
    """Samples (ms) per runner: warm-up, then rounds until stable, max_runs or the budget."""
    n = len(runners)
    samples = [[] for _ in range(n)]
    last = [np.inf] * n
    for _ in range(p["warmup"]):
        for run in runners:
            run()
    deadline = time.perf_counter() + p["time_budget_s"] * n
    for round_index in range(1, p["max_runs"] + 1):
        for i, run in enumerate(runners):
            samples[i].append(run() * 1e3)
        if round_index >= p["min_runs"] and round_index % p["check_every"] == 0:
            stable = True
            for i in range(n):
                now = statistic_of(samples[i], statistic)
                stable &= abs(now - last[i]) <= p["rel_tol"] * max(now, 1e-9)
                last[i] = now
            if stable:
                break
        if round_index >= p["min_runs"] and time.perf_counter() > deadline:
            break
    return samples


def done_groups(path, bundle_id):
    """Groups already in the output (refusing an output of another bundle)."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return set()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    other = {r["bundle_id"] for r in rows} - {bundle_id}
    if other:
        sys.exit(f"error: {path} holds measurements of bundle {sorted(other)[0]}, not of this bundle "
                 f"{bundle_id}; choose another output (-o)")
    return {int(r["group"]) for r in rows if r["kind"] == "reference"}


def measure_group(index, group, manifest, args, bundle):
    models = {m["id"]: m for m in manifest["models"]}
    ref = manifest["reference_model"]
    runners = [Session(os.path.join(bundle, models[i]["file"]), models[i]["input_shape"], args)
               for i in group]
    reference = Session(os.path.join(bundle, ref["file"]), ref["input_shape"], args)
    runners.append(matched(reference, runners))
    samples = round_robin(runners, args.profiler, manifest["statistic"])
    ref_stats = summary(samples[-1], manifest["statistic"])
    rows = [{"bundle_id": manifest["bundle_id"], "group": index, "model": i, "kind": models[i]["kind"],
             **summary(s, manifest["statistic"]), "reference_ms": ref_stats["value_ms"]}
            for i, s in zip(group, samples[:-1])]
    rows.append({"bundle_id": manifest["bundle_id"], "group": index, "model": "reference",
                 "kind": "reference", **ref_stats, "reference_ms": ref_stats["value_ms"]})
    return rows


def noise_floor(manifest, args, bundle):
    noop = manifest["noop_model"]
    run = Session(os.path.join(bundle, noop["file"]), noop["input_shape"], args)
    for _ in range(10):
        run()
    return statistic_of([run() * 1e3 for _ in range(50)], manifest["statistic"])


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", help="the bundle folder (holds manifest.json)")
    p.add_argument("-o", "--output", default="measurements.csv", help="CSV to append to")
    p.add_argument("--provider", default="CPUExecutionProvider",
                   help="onnxruntime execution provider (see --list-providers)")
    p.add_argument("--list-providers", action="store_true", help="print the providers here and exit")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--time-budget", type=float, default=None, help="seconds per model (manifest's default)")
    p.add_argument("--max-runs", type=int, default=None, help="timed runs per model at most")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list_providers:
        print("\n".join(ort.get_available_providers()))
        return 0
    path = os.path.join(args.bundle, "manifest.json")
    if not os.path.isfile(path):
        sys.exit(f"error: {args.bundle} is not a latency bundle (no manifest.json)")
    with open(path) as f:
        manifest = json.load(f)
    if args.provider not in ort.get_available_providers():
        sys.exit(f"error: provider {args.provider!r} is not available here; available: "
                 + ", ".join(ort.get_available_providers()))
    args.profiler = dict(manifest["profiler"])
    if args.time_budget is not None:
        args.profiler["time_budget_s"] = args.time_budget
    if args.max_runs is not None:
        args.profiler["max_runs"] = max(1, args.max_runs)
        args.profiler["min_runs"] = min(args.profiler["min_runs"], args.profiler["max_runs"])
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    done = done_groups(args.output, manifest["bundle_id"])
    device = {**fingerprint(args, manifest), "noise_floor_ms": noise_floor(manifest, args, args.bundle),
              "profiler": args.profiler, "bundle_id": manifest["bundle_id"]}
    with open(args.output + ".device.json", "w") as f:
        json.dump(device, f, indent=2, sort_keys=True)
    groups = manifest["groups"]
    total = sum(len(g) for g in groups)
    finished = sum(len(groups[i]) for i in done if i < len(groups))
    new_file = not os.path.isfile(args.output) or os.path.getsize(args.output) == 0
    with open(args.output, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        for index, group in enumerate(groups):
            if index in done:
                continue
            try:
                writer.writerows(measure_group(index, group, manifest, args, args.bundle))
            except KeyboardInterrupt:
                print(f"\ninterrupted: {finished}/{total} models measured; run again to resume",
                      file=sys.stderr)
                return 130
            f.flush()
            finished += len(group)
            if not args.quiet:
                print(f"\rmeasured {finished}/{total} models ({index + 1}/{len(groups)} groups)",
                      end="", file=sys.stderr, flush=True)
    if not args.quiet:
        print(file=sys.stderr)
    print(f"wrote {args.output} and {args.output}.device.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
