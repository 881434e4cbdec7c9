"""``nas run EXPERIMENT.yaml``: the whole pipeline from one file (OFA or DARTS)."""

from __future__ import annotations

from nas.cli._common import run_dir


def cmd_run(args) -> int:
    from nas.experiment import load_experiment
    from nas.run import RunResult, run_experiment

    exp = load_experiment(args.experiment, "run")  # validated whole before anything runs
    out = run_dir(args.out, exp.name)
    if out.exists() and any(out.iterdir()) and not args.resume:
        print(f"nas run: {out} exists; continuing it (finished stages are reused). "
              "Use --out for a fresh run.")
    result = run_experiment(exp, out, progress=None if not args.quiet else False,
                            command=args.command_line)
    if not isinstance(result, RunResult):  # DARTS
        s = result.standalone
        print(f"\nreport: {out / 'report.md'}   derived: {result.arch.key}, trained standalone: "
              f"test accuracy {s['test_acc']:.3f}, {s['params']} params, {out / 'model'}")
        return 0
    print(f"\nreport: {result.run_dir / 'report.md'}   plot: {result.run_dir / 'front.png'}")
    for item in result.chosen:
        print(f"  {item['device']:<10} <= {item['budget_ms']:g} ms: test accuracy {item['test_accuracy']:.3f}, "
              f"latency {item['table_latency_ms']:.3f} ms (table), {item['dir']}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="run a whole experiment (supernet, tables, predictor, search, "
                                   "export; or the DARTS pipeline with supernet.type: darts)")
    p.add_argument("experiment", help="experiment YAML file (see experiments/)")
    p.add_argument("--out", "-o", help="run directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run in the same directory (the default behaviour; silences the notice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)
