"""``nas search EXPERIMENT.yaml`` and ``nas front STUDY``: run, resume and inspect searches.

The file is an experiment (``nas.experiment``): ``space`` and the ``search`` section
with its ``objectives``; paths it reads are relative to the file, and the results go
to the run folder (``--out``, default ``runs/<name>``).

Seeds: ``search.seeds: [0, 1, 2]`` or ``--seeds N`` (the experiment's ``seed`` and the
next N-1; it overrides ``search.seeds``) run the search once per seed, each beside a
random search with the same budget, and print the comparison (``seeds.csv``).
"""

from __future__ import annotations

from nas.cli._common import run_dir

__all__ = ["register"]


def _print_front(result, limit: int = 20) -> None:
    front = result.front
    cols = ["arch_key", *result.names]
    print(f"study {result.study_name}: {len(result)} evaluated, "
          f"{int(result.history['feasible'].sum())} feasible, {len(front)} on the Pareto front")
    if len(front):
        print(front[cols].head(limit).to_string(index=False))
        if len(front) > limit:
            print(f"... {len(front) - limit} more (see front.csv)")


def cmd_search(args) -> int:
    from nas.experiment import load_experiment
    from nas.run import search_experiment

    exp = load_experiment(args.experiment, "search")  # validated whole before anything runs
    out = run_dir(args.out, exp.name)
    if args.seeds is not None or exp.search.seeds:
        return _search_seeds(exp, out, args)
    result = search_experiment(exp, out, resume=args.resume, command=args.command_line)
    _print_front(result)
    if exp.search.reference is not None:
        print(f"hypervolume {result.hypervolume(exp.search.reference):.6g} "
              f"(reference {list(exp.search.reference)})")
    print(f"wrote {out}: history.csv, front.csv, history.json, front.json, front.png, manifest.json")
    return 0


def _search_seeds(exp, out, args) -> int:
    import pandas as pd

    from nas.run import search_seeds, seed_list

    seeds = seed_list(exp.seed, exp.search.seeds, args.seeds)
    done = search_seeds(exp, out, seeds, resume=args.resume, command=args.command_line)
    for seed, result in done.results.items():
        print(f"seed {seed}: ", end="")
        _print_front(result, limit=5)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\n{exp.search.engine} against random search with the same budget "
              f"({exp.search.evaluations} evaluations), over seeds {seeds}:")
        print(done.comparison.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {out}: seed-<s>/ and random-seed-<s>/ (history, front, plot), seeds.csv")
    return 0


def cmd_front(args) -> int:
    from nas.search import load_result

    result = load_result(args.study, args.storage)
    _print_front(result, args.limit)
    if args.reference:
        print(f"hypervolume {result.hypervolume(args.reference):.6g} (reference {args.reference})")
    if args.export:
        paths = result.export(args.export)
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if args.plot:
        print(f"wrote {result.plot(args.plot)}")
    return 0


def _count(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def register(sub) -> None:
    p = sub.add_parser("search", help="run (or resume) a search from an experiment file")
    p.add_argument("experiment", help="experiment YAML file: space, search (engine, objectives, "
                                      "constraints, evaluations, storage, study); paths relative "
                                      "to the file")
    p.add_argument("--out", "-o", help="run folder (default runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the stored study of that name instead of refusing it")
    p.add_argument("--seeds", type=_count, metavar="N",
                   help="run the search with seeds seed..seed+N-1 (seed: the experiment's), each "
                        "beside random search with the same budget; overrides search.seeds")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("front", help="print (and plot/export) the Pareto front of a stored study")
    p.add_argument("study", help="study name")
    p.add_argument("--storage", required=True, help="SQLAlchemy URL or SQLite file path")
    p.add_argument("--plot", metavar="PNG", help="write the Pareto-front plot here")
    p.add_argument("--export", metavar="DIR", help="write history/front CSV and JSON here")
    p.add_argument("--reference", type=float, nargs="+", metavar="V",
                   help="hypervolume reference point, raw units, one value per objective")
    p.add_argument("--limit", type=int, default=20, help="front rows to print (default 20)")
    p.set_defaults(func=cmd_front)
