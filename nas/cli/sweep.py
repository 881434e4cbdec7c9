"""``nas sweep SWEEP.yaml``: run a sweep's trials as Ray Tune trials (see ``nas.sweep``)."""

from __future__ import annotations

from nas.errors import ConfigError


def cmd_sweep(args) -> int:
    from nas.sweep import run_sweep

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be >= 1, got {args.max_concurrent}")
    result = run_sweep(args.sweep, output=args.out, address=args.address, resume=args.resume,
                       max_concurrent=args.max_concurrent, plugins=args.plugin)
    shown = ("budget_ms", "test_accuracy", "table_latency_ms")  # of each chosen subnet
    columns = [c for c in result.table.columns if c not in ("dir", "error", "report", "results")
               and (not c.startswith("chosen.") or c.endswith(shown))]
    print(result.table[columns].to_string(index=False, max_colwidth=40))
    for name, error in result.failed.items():
        print(f"nas sweep: trial {name} failed: {error}")
    if result.failed:
        print("nas sweep: continue the failed trials with --resume")
    return 0 if result.ok else 1


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid or sampled sweep of experiments on Ray Tune")
    p.add_argument("sweep", help="sweep YAML file: base experiment, command, grid/sample of dotted "
                                 "keys, resources, max_concurrent, max_failures (see "
                                 "experiments/ray_sweep.yaml)")
    p.add_argument("--address", metavar="ADDR",
                   help="join an existing Ray cluster: 'auto' (started with `ray start --head` here) "
                        "or 'ray://HOST:10001'; default: start a local Ray for the sweep")
    p.add_argument("--out", "-o", help="sweep directory (default: the file's output, else runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in the output directory (finished trials are kept)")
    p.add_argument("--max-concurrent", type=int, metavar="N", help="trials running at once")
    p.set_defaults(func=cmd_sweep)
