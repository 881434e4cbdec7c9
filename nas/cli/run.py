"""``nas run EXPERIMENT.yaml``: the whole pipeline from one file."""

from __future__ import annotations

from pathlib import Path

from nas.run import load_experiment, run_experiment


def cmd_run(args) -> int:
    cfg = load_experiment(args.experiment)  # validated whole before anything runs
    run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    if run_dir.exists() and any(run_dir.iterdir()) and not args.resume:
        print(f"nas run: {run_dir} exists; continuing it (finished stages are reused). "
              "Use --out for a fresh run.")
    result = run_experiment(cfg, run_dir, progress=None if not args.quiet else False)
    print(f"\nreport: {result.run_dir / 'report.md'}   plot: {result.run_dir / 'front.png'}")
    for item in result.chosen:
        print(f"  {item['device']:<10} <= {item['budget_ms']:g} ms: test accuracy {item['test_accuracy']:.3f}, "
              f"latency {item['table_latency_ms']:.3f} ms (table), {item['dir']}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="run a whole experiment (supernet, tables, predictor, search, export)")
    p.add_argument("experiment", help="experiment YAML file (see experiments/)")
    p.add_argument("--out", "-o", help="run directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run in the same directory (the default behaviour; silences the notice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)
