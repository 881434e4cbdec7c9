"""``nas lut build | validate | show | bundle | import``: latency lookup tables from the command line.

``bundle`` and ``import`` serve devices hwnas cannot run on: the bundle holds every layer
as ONNX and a standalone runner (numpy and onnxruntime only); its measurements import back
into a table (docs/latency-tables.md).
"""

from __future__ import annotations

import json

from nas.cli._common import add_space_options, parse_options
from nas.errors import ConfigError

__all__ = ["register"]


def _input_shape(space, resolution: int | None) -> tuple[int, ...]:
    if resolution is None:
        return space.input_shape
    if len(space.input_shape) != 3:
        raise ConfigError(
            f"--resolution sets H=W of an image input, but space {space.name!r} takes {space.input_shape}"
        )
    if resolution < 1:
        raise ConfigError(f"--resolution must be >= 1, got {resolution}")
    return (space.input_shape[0], resolution, resolution)


def _device(args):
    from hardware import get_device

    options = {"batch_size": args.batch_size}
    if args.device in ("cpu", "onnxruntime"):
        options["threads"] = args.threads
    if args.precision != "fp32":
        if args.device != "onnxruntime":
            raise ConfigError(f"--precision {args.precision} needs --device onnxruntime, got {args.device!r}")
        options["precision"] = args.precision
    if args.clock != "wall":
        options["clock"] = args.clock
    return get_device(args.device, **options)


def cmd_build(args) -> int:
    from hardware import LatencyTable, Profiler
    from search_spaces import get_space

    if not args.output.lower().endswith((".csv", ".parquet")):
        raise ConfigError(f"-o/--output must end in .csv or .parquet, got {args.output!r}")
    options = parse_options(args.option)
    space = get_space(args.space, **options)
    shape = _input_shape(space, args.resolution)
    device = _device(args)
    runs = max(1, args.max_runs)
    profiler = Profiler(statistic=args.statistic, time_budget_s=args.time_budget,
                        min_runs=min(10, runs), check_every=min(10, runs), max_runs=runs)
    noisy = {"refuse_drift": None, "refuse_noise": None} if args.allow_noisy else {}
    table = LatencyTable.build(space, device, shape, num_classes=args.num_classes, profiler=profiler,
                               n_calibration=args.calibration, rng=args.seed, space_options=options,
                               reference=not args.no_reference, **noisy)
    path = table.save(args.output)
    print(table.summary())
    print(f"wrote {path}")
    return 0


def cmd_validate(args) -> int:
    from hardware import LatencyTable, Profiler, validate

    table = LatencyTable.load(args.table)
    profiler = Profiler(statistic=table.statistic, time_budget_s=args.time_budget)
    report = validate(table, n=args.n, rng=args.seed, profiler=profiler, repeats=args.repeats,
                      drift_reference="none" if args.raw else (args.drift_reference or "auto"))
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.summary())
    if args.plot:
        from nas.plots import plot_validation

        print(f"wrote {plot_validation(args.plot, report)}")
    return 0


def cmd_bundle(args) -> int:
    from hardware import Profiler, make_bundle
    from search_spaces import get_space

    options = parse_options(args.option)
    space = get_space(args.space, **options)
    shape = tuple(args.input_shape) if args.input_shape else _input_shape(space, args.resolution)
    profiler = Profiler(statistic=args.statistic, time_budget_s=args.time_budget)
    path = make_bundle(space, args.output, shape, args.num_classes, precision=args.precision,
                       batch_size=args.batch_size, n_calibration=args.calibration, rng=args.seed,
                       space_options=options, profiler=profiler)
    manifest = json.loads(path.read_text())
    layers = sum(m["kind"] == "layer" for m in manifest["models"])
    print(f"wrote bundle {manifest['bundle_id']} to {args.output}: {layers} layers, "
          f"{len(manifest['models']) - layers} calibration networks, {args.precision}")
    print(f"on the device (Python 3 with numpy and onnxruntime): python {args.output}/measure.py "
          f"{args.output} -o measurements.csv [--provider CPUExecutionProvider] [--threads 1]")
    print(f"then here: nas lut import {args.output} measurements.csv -o TABLE.csv")
    return 0


def cmd_import(args) -> int:
    from hardware import import_measurements

    if not args.output.lower().endswith((".csv", ".parquet")):
        raise ConfigError(f"-o/--output must end in .csv or .parquet, got {args.output!r}")
    noisy = {"refuse_drift": None, "refuse_noise": None} if args.allow_noisy else {}
    table = import_measurements(args.bundle, args.measurements, **noisy)
    path = table.save(args.output)
    print(table.summary())
    print(f"wrote {path}")
    return 0


def cmd_show(args) -> int:
    from hardware import LatencyTable

    table = LatencyTable.load(args.table)
    if args.json:
        print(json.dumps(table.metadata, sort_keys=True))
        return 0
    print(table.summary())
    frame = table.entries
    by_op = frame.groupby("op")["latency_ms"].agg(["count", "sum", "max"])
    print("\nper op:  layers   total ms    max ms")
    for op, row in by_op.sort_values("sum", ascending=False).iterrows():
        print(f"  {op:<18} {int(row['count']):>5} {row['sum']:>10.3f} {row['max']:>9.3f}")
    print(f"\nslowest {args.top} layers:")
    for _, row in frame.nlargest(args.top, "latency_ms").iterrows():
        print(f"  {row['latency_ms']:9.4f} ms  (p90 {row['p90_ms']:.4f}, n={int(row['n_runs'])})  {row['key']}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("lut", help="build, validate and show latency lookup tables")
    lut = p.add_subparsers(dest="lut_command", metavar="ACTION")
    lut.required = True

    b = lut.add_parser("build", help="profile every layer of a space on a device")
    b.add_argument("--space", required=True, help="registered space name (see `nas spaces`)")
    add_space_options(b)
    b.add_argument("--device", default="cpu",
                   help="a registered device: cpu (default), cuda, onnxruntime, or a plugin's")
    b.add_argument("--threads", type=int, default=1, help="CPU / ONNX Runtime threads (0: all cores)")
    b.add_argument("--clock", default="wall", choices=("wall", "thread"),
                   help="cpu only: 'thread' times CPU time of the thread (needs --threads 1)")
    b.add_argument("--batch-size", type=int, default=1)
    b.add_argument("--resolution", type=int, default=None,
                   help="input H=W (default: the space's input shape). For mobilenetv3_ofa this is "
                        "the raw input; the table covers every resolution decision of the space, "
                        "restrict them with -O resolutions=[R]")
    b.add_argument("--num-classes", type=int, default=None)
    b.add_argument("--statistic", default="p10", help="min, median, mean or pNN (default p10)")
    b.add_argument("--time-budget", type=float, default=1.0, help="seconds per layer (default 1)")
    b.add_argument("--max-runs", type=int, default=200, help="timed runs per layer at most")
    b.add_argument("--calibration", type=int, default=16, help="whole networks measured to calibrate")
    b.add_argument("--no-reference", action="store_true",
                   help="do not time the reference network with every group (raw timings, not "
                        "normalised to build-time machine speed)")
    b.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                   help="onnxruntime only: int8 times statically quantised models")
    b.add_argument("--allow-noisy", action="store_true",
                   help="keep a table whose reference timings show a busy machine (it still warns)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("-o", "--output", required=True, help="table file (.csv or .parquet)")
    b.set_defaults(func=cmd_build)

    u = lut.add_parser("bundle", help="write a portable profiling bundle (ONNX models + standalone runner)")
    u.add_argument("--space", required=True, help="registered space name (see `nas spaces`)")
    add_space_options(u)
    u.add_argument("--input-shape", type=int, nargs="+", default=None, metavar="D",
                   help="network input without batch, e.g. 3 224 224 (default: the space's)")
    u.add_argument("--resolution", type=int, default=None, help="input H=W (instead of --input-shape)")
    u.add_argument("--num-classes", type=int, default=None)
    u.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                   help="int8: every model statically quantised (onnxruntime QDQ)")
    u.add_argument("--batch-size", type=int, default=1)
    u.add_argument("--calibration", type=int, default=16, help="whole networks to calibrate (default 16)")
    u.add_argument("--statistic", default="p10", help="the runner's statistic (default p10)")
    u.add_argument("--time-budget", type=float, default=1.0, help="the runner's seconds per model")
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("-o", "--output", required=True, help="bundle folder (new or empty)")
    u.set_defaults(func=cmd_bundle)

    m = lut.add_parser("import", help="build a table from a bundle's measurements")
    m.add_argument("bundle", help="the bundle folder")
    m.add_argument("measurements", help="the runner's measurements.csv (with its .device.json beside it)")
    m.add_argument("--allow-noisy", action="store_true",
                   help="keep a table whose reference timings show a busy device (it still warns)")
    m.add_argument("-o", "--output", required=True, help="table file (.csv or .parquet)")
    m.set_defaults(func=cmd_import)

    v = lut.add_parser("validate", help="compare a table with measured latency of random archs")
    v.add_argument("table")
    v.add_argument("-n", type=int, default=100, help="random architectures (default 100)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--time-budget", type=float, default=1.0, help="seconds per network (default 1)")
    v.add_argument("--repeats", type=int, default=2,
                   help="independent measurement passes (default 2); >= 2 reports the machine's noise "
                        "ceiling (pass 2 vs pass 1) next to every figure")
    v.add_argument("--raw", action="store_true",
                   help="compare with raw timings (do not put them on the table's build-time scale)")
    v.add_argument("--drift-reference", choices=("calibration", "reference"), default=None,
                   help="what measures the machine's drift since the build: the table's calibration "
                        "networks timed again beside the validated ones (default when recorded) or "
                        "the small reference network")
    v.add_argument("--plot", help="write a predicted-vs-measured scatter PNG here")
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(func=cmd_validate)

    s = lut.add_parser("show", help="metadata and the slowest layers of a table")
    s.add_argument("table")
    s.add_argument("--top", type=int, default=10)
    s.add_argument("--json", action="store_true", help="print the metadata as JSON")
    s.set_defaults(func=cmd_show)

