"""The sweep file of ``nas sweep``: a base experiment and the parameters to vary.

A sweep file names a base experiment file (the one schema of ``nas.experiment``),
the command its trials run (``run``, the default, or ``search``) and the dotted keys
to vary in it::

    base: quickstart.yaml          # relative to the sweep file
    command: run                   # each trial is a `nas run` (or `nas search`)
    grid:                          # every combination (cartesian product)
      seed: [0, 1]
      search.engine: [evolution, nsga2]
    sample:                        # drawn per trial from the sweep's own seed
      search.budgets_ms: {choice: [[3.0], [4.0]]}
    num_samples: 1                 # repeats of the grid, each with fresh draws

Keys are checked against the experiment schema before anything runs, so a typo
names its key (``grid.search.engin: unknown key 'engin' (did you mean 'engine'?)``);
then every trial's whole experiment is validated as ``nas run`` / ``nas search``
would validate it, with the paths it reads made absolute (relative to the base
file, as in every command). Trials are expanded here, deterministically, so a sweep
is the same list of experiments however many workers run it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import itertools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import numpy as np

from nas.config import load_yaml, parse, resolve_paths, to_dict
from nas.errors import ConfigError

__all__ = ["RaySection", "ResourcesSection", "SweepConfig", "TrialSpec", "expand_trials",
           "load_sweep", "trial_experiment"]

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")


@dataclass(frozen=True)
class RaySection:
    """How to reach Ray.

    ``address``: ``None`` starts a local Ray inside the sweep (``num_cpus``/``num_gpus``
    limit it; default: all cores); ``"auto"`` joins a cluster started with
    ``ray start --head`` on this machine; ``"ray://host:10001"`` a remote one.
    ``dashboard``: start Ray's dashboard (local Ray only). ``log_to_driver``: show
    the trials' own output.
    """

    address: str | None = None
    num_cpus: int | None = field(default=None, metadata={"ge": 1})
    num_gpus: int | None = field(default=None, metadata={"ge": 0})
    dashboard: bool = False
    log_to_driver: bool = False


@dataclass(frozen=True)
class ResourcesSection:
    """What one trial reserves. ``evaluation_workers`` > 0 adds that many Ray actors
    (``cpu`` each) that evaluate each search's candidate batches in parallel."""

    cpu: float = field(default=1.0, metadata={"gt": 0})
    gpu: float = field(default=0.0, metadata={"ge": 0})
    evaluation_workers: int = field(default=0, metadata={"ge": 0})


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: base experiment, varied keys, concurrency, retries, where results land.

    ``command``: what each trial runs on its experiment: ``run`` (the ``nas run``
    pipeline) or ``search`` (``nas search``). ``plugins``: modules or ``.py`` files
    (relative to the sweep file) every trial imports, on every Ray worker, besides the
    base experiment's own ``plugins``.
    ``output``: the sweep directory (default ``runs/<name>``); each trial runs in
    ``<output>/trials/<trial>/``. ``storage``: one study storage URL for every
    trial's searches (e.g. ``postgresql://...`` on a cluster); by default each trial
    keeps a SQLite file in its own folder.
    """

    base: str = field(metadata={"path": "file"})
    name: str = "sweep"
    command: Literal["run", "search"] = "run"
    plugins: tuple[str, ...] = field(default=(), metadata={"path": "plugin"})
    output: str | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    sample: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_samples: int = field(default=1, metadata={"ge": 1})
    seed: int = 0
    max_concurrent: int | None = field(default=None, metadata={"ge": 1})
    max_failures: int = field(default=2, metadata={"ge": 0})
    storage: str | None = None
    resources: ResourcesSection = field(default_factory=ResourcesSection)
    ray: RaySection = field(default_factory=RaySection)

    def __post_init__(self) -> None:
        for key in self.grid:
            if not self.grid[key]:
                raise ConfigError(f"grid.{key}: give at least one value")
        for key in set(self.grid) & set(self.sample):
            raise ConfigError(f"sample.{key}: the key is in grid too; vary it in one place")
        for key, dist in self.sample.items():
            _check_distribution(f"sample.{key}", dist)

    @property
    def base_path(self) -> Path:
        """The base experiment file (:func:`load_sweep` makes it absolute: relative paths in
        a sweep file start from its folder)."""
        return Path(self.base)

    @property
    def output_dir(self) -> Path:
        return Path(self.output) if self.output else Path("runs") / self.name


@dataclass(frozen=True)
class TrialSpec:
    """One trial: its name, the overrides that make it, and its whole experiment.

    Plain JSON-able data, so it travels to Ray workers and into Tune's ``params.json``.
    """

    index: int
    name: str
    command: Literal["run", "search"]
    overrides: dict[str, Any]
    experiment: dict[str, Any]
    trial_dir: str
    storage: str | None = None
    evaluation_workers: int = 0
    worker_cpus: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**data)


def load_sweep(path: str | Path) -> SweepConfig:
    """Parse a sweep file; every error names its key path."""
    path = Path(path)
    return resolve_paths(parse(SweepConfig, load_yaml(path)), path.resolve().parent)


def _check_distribution(where: str, dist: dict[str, Any]) -> None:
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: give exactly one of {', '.join(DISTRIBUTIONS)}, "
                          f"e.g. {{choice: [1, 2]}} or {{uniform: [0.1, 0.5]}}; got {dist!r}")
    (kind, args), = dist.items()
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}.choice: expected a non-empty list, got {args!r}")
        return
    if (not isinstance(args, list) or len(args) != 2
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)):
        raise ConfigError(f"{where}.{kind}: expected [low, high], got {args!r}")
    low, high = args
    if not low < high:
        raise ConfigError(f"{where}.{kind}: low < high must hold, got {args!r}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}.loguniform: low must be > 0, got {low!r}")
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise ConfigError(f"{where}.randint: bounds must be integers, got {args!r}")


def _draw(dist: dict[str, Any], rng: np.random.Generator) -> Any:
    (kind, args), = dist.items()
    if kind == "choice":
        return copy.deepcopy(args[int(rng.integers(len(args)))])
    low, high = args
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "loguniform":
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return int(rng.integers(low, high))  # randint: high excluded, as numpy and Tune


# override keys against the experiment schema ----------------------------------------------
_INDEX = re.compile(r"^\d+$")


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def check_key(schema: type, key: str, where: str) -> None:
    """Check dotted ``key`` names a field of dataclass ``schema`` (integers index lists)."""
    tp: Any = schema
    done: list[str] = []
    for part in key.split("."):
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if dataclasses.is_dataclass(tp):
            names = [f.name for f in dataclasses.fields(tp) if f.init]
            if part not in names:
                hint = difflib.get_close_matches(part, names, n=1)
                maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
                inside = f" in {'.'.join(done)}" if done else ""
                raise ConfigError(f"{where}: unknown key {part!r}{inside}{maybe}; "
                                  f"valid keys: {', '.join(names)}")
            tp = typing.get_type_hints(tp)[part]
        elif origin in (tuple, list):
            if not _INDEX.match(part):
                raise ConfigError(f"{where}: {'.'.join(done)} is a list; index it with a number "
                                  f"(e.g. {'.'.join(done)}.0), got {part!r}")
            tp = get_args(tp)[0] if get_args(tp) else Any
        elif origin is dict or tp in (dict, Any):
            tp = get_args(tp)[1] if len(get_args(tp)) == 2 else Any
        else:
            raise ConfigError(f"{where}: {'.'.join(done)} is a plain value and has no key {part!r}")
        done.append(part)


def set_key(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set dotted ``key`` in nested ``data`` (in place); missing mappings are created."""
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, ".".join(parts[:i]), where)
            continue
        child = node.get(part)
        if child is None:
            if _INDEX.match(parts[i + 1]):
                raise ConfigError(f"{where}: the base experiment has no {'.'.join(parts[:i + 1])} "
                                  f"list to index; override {'.'.join(parts[:i + 1])} whole")
            child = node[part] = {}
        node = child
    last = parts[-1]
    if isinstance(node, list):
        index = int(last)
        _list_item(node, last, ".".join(parts[:-1]), where)
        node[index] = copy.deepcopy(value)
    else:
        node[last] = copy.deepcopy(value)


def _list_item(items: list, part: str, path: str, where: str) -> Any:
    index = int(part)
    if index >= len(items):
        raise ConfigError(f"{where}: {path} has {len(items)} entries in the base experiment, "
                          f"so index {index} does not exist")
    return items[index]


# trial expansion ----------------------------------------------------------------------------
def _slug(overrides: dict[str, Any]) -> str:
    parts = []
    for key, value in overrides.items():
        text = value if isinstance(value, str) else (
            f"{value:.4g}" if isinstance(value, float) else str(value))
        segments = [p for p in key.split(".") if not _INDEX.match(p)]
        label = ".".join(segments[-2:]) if segments[-1] in ("name", "kind", "type") else segments[-1]
        parts.append(f"{label}={text}")
    slug = re.sub(r"[^A-Za-z0-9=.,_+-]+", "", "_".join(parts))
    return slug[:60]


def trial_experiment(command: str, data: dict[str, Any], base_dir: Path,
                     plugins: tuple[str, ...] = (), where: str = "trial") -> dict[str, Any]:
    """One trial's whole experiment, validated as its command would validate it, as plain
    data with every path it reads absolute (trials run in other folders and processes)."""
    from nas.experiment import Experiment, validate_experiment

    try:
        exp = resolve_paths(parse(Experiment, data), base_dir)
        if plugins:
            exp = dataclasses.replace(exp, plugins=(*plugins, *exp.plugins))
        validate_experiment(exp, command)  # type: ignore[arg-type]
    except ValueError as exc:  # ConfigError and the other packages' user errors
        raise ConfigError(f"{where}: {exc}") from None
    return to_dict(exp)


def expand_trials(cfg: SweepConfig, output: str | Path | None = None) -> list[TrialSpec]:
    """Every trial of the sweep, validated, in a fixed order (grid inside samples).

    Args:
        cfg: the sweep.
        output: the sweep directory (default ``cfg.output_dir``); trial folders go under
            ``<output>/trials``.
    """
    from nas.experiment import Experiment

    base_file = cfg.base_path
    base = load_yaml(base_file)
    for key in cfg.grid:
        check_key(Experiment, key, f"grid.{key}")
    for key in cfg.sample:
        check_key(Experiment, key, f"sample.{key}")
    out = Path(output if output is not None else cfg.output_dir).resolve()
    rng = np.random.default_rng(cfg.seed)
    keys = list(cfg.grid)
    trials = []
    for _ in range(cfg.num_samples):
        for values in itertools.product(*(cfg.grid[k] for k in keys)):
            overrides = dict(zip(keys, values, strict=True))
            overrides.update({k: _draw(d, rng) for k, d in cfg.sample.items()})
            index = len(trials)
            name = f"t{index:03d}" + (f"_{_slug(overrides)}" if overrides else "")
            data = copy.deepcopy(base)
            for key, value in overrides.items():
                set_key(data, key, value, f"trial {name}: {key}")
            experiment = trial_experiment(cfg.command, data, base_file.resolve().parent,
                                          cfg.plugins, f"trial {name}")
            trials.append(TrialSpec(index, name, cfg.command, overrides, experiment,
                                    str(out / "trials" / name), cfg.storage,
                                    cfg.resources.evaluation_workers, cfg.resources.cpu))
    return trials
