"""``nas search CONFIG.yaml`` and ``nas front STUDY``: run, resume and inspect searches.

Relative paths in the config (tables, storage, output) are taken relative to the
config file's folder.
"""

from __future__ import annotations

from pathlib import Path

from nas.cli._search_config import ObjectiveConfig, SearchConfig, load_search_config
from nas.errors import ConfigError
from nas.objectives import DIRECTIONS, Flops, Objective, Params, TableLatency, TabularObjective
from nas.search import Problem, get_engine, load_result, run_search
from nas.storage import storage_url
from search_spaces import SearchSpace, get_space

OBJECTIVE_TYPES = ("flops", "params", "tabular", "table_latency")


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None or Path(value).is_absolute():
        return value
    return str(base / value)


def _storage(base: Path, value: str) -> str:
    if "://" in value:
        return value
    return storage_url(_resolve(base, value))


def _load_latency_table(path: str, space: SearchSpace):
    try:
        from hardware import LatencyTable  # lazily: hardware is optional for the CLI
    except ImportError:
        raise ConfigError("objective type 'table_latency' needs hardware.LatencyTable, which this "
                          "installation does not provide") from None
    return LatencyTable.load(path, space=space)  # refuses a table of another space


def build_objective(cfg: ObjectiveConfig, space: SearchSpace, base: Path, where: str) -> Objective:
    """One objective from its config entry (``where`` names it in errors)."""
    if cfg.type not in OBJECTIVE_TYPES:
        raise ConfigError(f"{where}.type: unknown objective type {cfg.type!r}; "
                          f"valid: {', '.join(OBJECTIVE_TYPES)}")
    if cfg.direction is not None and cfg.direction not in DIRECTIONS:
        raise ConfigError(f"{where}.direction: must be one of {DIRECTIONS}, got {cfg.direction!r}")
    if cfg.type in ("tabular", "table_latency") and not cfg.path:
        raise ConfigError(f"{where}.path: objective type {cfg.type!r} needs a file path")
    if cfg.type == "flops":
        return Flops(space, name=cfg.name or "flops")
    if cfg.type == "params":
        return Params(space, name=cfg.name or "params")
    if cfg.type == "table_latency":
        return TableLatency(_load_latency_table(_resolve(base, cfg.path), space),
                            name=cfg.name or "latency_ms")
    if not cfg.column:
        raise ConfigError(f"{where}.column: a tabular objective needs the value column")
    return TabularObjective(_resolve(base, cfg.path), cfg.column, key_column=cfg.key_column,
                            key_format=cfg.key_format, name=cfg.name,
                            direction=cfg.direction or "minimize")


def build_problem(cfg: SearchConfig, base: Path) -> Problem:
    space = get_space(cfg.space.name, **cfg.space.options)
    objectives = [build_objective(o, space, base, f"objectives[{i}]")
                  for i, o in enumerate(cfg.objectives)]
    measures = [build_objective(o, space, base, f"measures[{i}]") for i, o in enumerate(cfg.measures)]
    return Problem(space, objectives, cfg.constraints, measures)


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
    cfg = load_search_config(args.config)
    base = Path(args.config).resolve().parent
    problem = build_problem(cfg, base)
    engine = get_engine(cfg.engine.name, problem.space, seed=cfg.seed, **cfg.engine.options)
    result = run_search(problem, engine, cfg.budget, batch_size=cfg.batch_size,
                        storage=_storage(base, cfg.storage), study_name=cfg.study,
                        resume=args.resume)
    _print_front(result)
    if cfg.reference is not None:
        print(f"hypervolume {result.hypervolume(cfg.reference):.6g} "
              f"(reference {list(cfg.reference)})")
    out = Path(_resolve(base, cfg.output or f"{cfg.study}-results"))
    paths = result.export(out)
    result.plot(out / "front.png")
    print(f"wrote {', '.join(str(p) for p in paths.values())}, {out / 'front.png'}")
    return 0


def cmd_front(args) -> int:
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


def register(sub) -> None:
    p = sub.add_parser("search", help="run (or resume) a search from a YAML config")
    p.add_argument("config", help="YAML file: space, engine, objectives, constraints, budget, "
                                  "storage, study, seed, output (paths relative to the file)")
    p.add_argument("--resume", action="store_true",
                   help="continue the stored study of that name instead of refusing it")
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


__all__ = ["build_objective", "build_problem", "register"]
