"""``nas darts search EXPERIMENT.yaml`` and ``nas darts plot RUN_DIR``: differentiable NAS.

The file is an experiment (``nas.experiment``) with ``supernet: {type: darts, search:
{...}}`` (the keys of ``supernets.DartsConfig``) and a ``standalone`` section (the
training of the derived architecture); ``nas run`` runs the same pipeline.
"""

from __future__ import annotations

from nas.cli._common import run_dir


def cmd_search(args) -> int:
    from nas.experiment import load_experiment
    from nas.run import run_experiment

    exp = load_experiment(args.experiment, "darts")  # validated whole before anything runs
    out = run_dir(args.run_dir, exp.name)
    result = run_experiment(exp, out, echo=False, restart=args.restart, command=args.command_line)
    print(result.arch.to_json())
    s = result.standalone
    print(f"derived {result.arch.key} ({exp.supernet.darts_config(exp.seed).derive}) trained "
          f"standalone for {s['epochs']} epochs: val acc {s['val_acc']:.4f}, test acc "
          f"{s['test_acc']:.4f}, {s['params']} params; run files in {out}")
    return 0


def cmd_plot(args) -> int:
    from nas.plots import plot_alpha_history
    from supernets import load_alpha_history

    out = plot_alpha_history(args.output, load_alpha_history(args.run_dir))
    print(f"wrote {out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("darts", help="differentiable architecture search (DARTS, PC-DARTS)")
    inner = p.add_subparsers(dest="darts_command", metavar="SUBCOMMAND")
    inner.required = True
    s = inner.add_parser("search", help="search a cell space, derive, train and export the architecture")
    s.add_argument("experiment", help="experiment YAML file with supernet.type: darts")
    s.add_argument("--run-dir", "--out", "-o", dest="run_dir",
                   help="run folder (default runs/<name>)")
    s.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    s.set_defaults(func=cmd_search)
    q = inner.add_parser("plot", help="plot how the op weights evolved (PNG)")
    q.add_argument("run_dir")
    q.add_argument("-o", "--output", default="alphas.png")
    q.set_defaults(func=cmd_plot)
