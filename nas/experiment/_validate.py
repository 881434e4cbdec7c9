"""Read an experiment file and validate it for a command, before anything runs.

Names are checked against the registries (spaces, devices, predictors, engines,
objective types), options against the factories' signatures, and the space against
the chosen supernet (``OFASupernet.check_space`` / ``DartsSupernet.check_space``,
cheap: no weights are built), so that a bad file fails in a second with one line
naming its key, not an hour into training.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from nas.config import load_yaml, parse, resolve_paths
from nas.errors import ConfigError
from nas.experiment._schema import Experiment

__all__ = ["COMMANDS", "load_experiment", "load_plugins", "validate_experiment"]

Command = Literal["run", "search", "darts", "supernet"]
COMMANDS: tuple[str, ...] = ("run", "search", "darts", "supernet")
"""What a file can drive: ``nas run`` (the whole pipeline, OFA or DARTS), ``nas search``,
``nas darts search`` and ``nas supernet train``."""


def load_plugins(specs: Iterable[str], where: str = "plugins",
                 base_dir: str | Path | None = None) -> list[str]:
    """Import plugin modules (dotted names or ``.py`` files) so that what they register
    can be named; returns the module names. Errors name ``where[i]``."""
    from search_spaces import SearchSpaceError, load_plugin

    loaded = []
    for i, spec in enumerate(specs):
        try:
            loaded.append(load_plugin(spec, base_dir))
        except SearchSpaceError as exc:
            raise ConfigError(f"{where}[{i}]: {exc}") from None
    return loaded


def load_experiment(path: str | Path, command: Command | None = None) -> Experiment:
    """Parse an experiment file (paths resolved against its folder); with ``command``,
    also load its plugins and validate it for that command.

    Raises:
        ConfigError: naming the key path of the first problem.
    """
    path = Path(path)
    exp = resolve_paths(parse(Experiment, load_yaml(path)), path.resolve().parent)
    return validate_experiment(exp, command) if command is not None else exp


def validate_experiment(exp: Experiment, command: Command = "run") -> Experiment:
    """Load the experiment's plugins and check everything ``command`` will use.

    Returns:
        ``exp`` unchanged.
    """
    if command not in COMMANDS:
        raise ConfigError(f"unknown command {command!r}; valid: {', '.join(COMMANDS)}")
    load_plugins(exp.plugins)
    _check_compute(exp)
    space = _space(exp)
    kind = exp.supernet.type
    if command == "search":
        _check_search(exp)
    elif command == "supernet":
        if kind != "ofa":
            raise ConfigError("supernet.type: `nas supernet train` trains an OFA supernet, got "
                              f"{kind!r} (a DARTS supernet runs with `nas darts search`)")
        if exp.supernet.checkpoint is not None:
            raise ConfigError("supernet.checkpoint: `nas supernet train` trains a supernet; "
                              "remove the checkpoint (or give another run folder)")
        _check_ofa_space(exp, space)
    elif command == "darts" or kind == "darts":
        if kind != "darts":
            raise ConfigError(f"supernet.type: `nas darts search` needs type darts, got {kind!r}")
        _check_darts_space(exp, space)
    else:
        _check_ofa_pipeline(exp, space)
    return exp


# sections ---------------------------------------------------------------------------------
def _check_compute(exp: Experiment) -> None:
    """The device exists here and supports the precision (cuda without a GPU, fp16 on a CPU)."""
    from supernets import SupernetError
    from supernets.runtime import resolve_device

    try:
        resolve_device(exp.compute.device, None, exp.compute.precision)
    except SupernetError as exc:
        raise ConfigError(f"compute.{exc}") from None


def _space(exp: Experiment) -> Any:
    from search_spaces import SPACES, get_space

    try:
        SPACES.get(exp.space.name)
    except ValueError as exc:
        raise ConfigError(f"space.name: {exc}") from None
    try:
        SPACES.check_options(exp.space.name, exp.space.options)
        return get_space(exp.space.name, **exp.space.options)
    except ValueError as exc:
        text = str(exc)
        head = text.split(":", 1)[0]
        if head in exp.space.options:  # the factory named the option: continue the key path
            raise ConfigError(f"space.options.{text}") from None
        raise ConfigError(f"space.options: {text}") from None


def _check_ofa_space(exp: Experiment, space: Any) -> None:
    from supernets import OFASupernet

    try:
        OFASupernet.check_space(space)
    except ValueError as exc:
        raise ConfigError(f"supernet.type: an OFA supernet cannot serve space "
                          f"{exp.space.name!r}: {exc}") from None


def _check_darts_space(exp: Experiment, space: Any) -> None:
    from supernets import DartsSupernet

    try:
        DartsSupernet.check_space(space)
    except ValueError as exc:
        raise ConfigError(f"supernet.type: DARTS cannot relax space {exp.space.name!r}: {exc}"
                          ) from None


def _check_ofa_pipeline(exp: Experiment, space: Any) -> None:
    from predictors import PREDICTORS

    if exp.supernet.checkpoint is None:
        _check_ofa_space(exp, space)  # a checkpoint is checked when it is loaded
    for key in ("objectives", "measures", "constraints"):
        if getattr(exp.search, key):
            raise ConfigError(f"search.{key}: `nas run` searches accuracy and latency_ms per "
                              f"device and budget; {key} are for `nas search`")
    _check_devices(exp)
    _check_named(PREDICTORS, exp.predictor.name, exp.predictor.options, "predictor.name",
                 "predictor.options")
    _check_engine(exp)


def _check_search(exp: Experiment) -> None:
    from nas.experiment._objectives import check_objective

    if not exp.search.objectives:
        raise ConfigError("search.objectives: `nas search` needs at least one objective, "
                          "e.g. [{type: params}]")
    for key in ("objectives", "measures"):
        for i, spec in enumerate(getattr(exp.search, key)):
            check_objective(spec, f"search.{key}[{i}]")
    _check_engine(exp)


def _check_engine(exp: Experiment) -> None:
    from nas.search import ENGINES

    _check_named(ENGINES, exp.search.engine, exp.search.options, "search.engine", "search.options")
    _check_storage(exp.search.storage)


def _check_storage(storage: str) -> None:
    """A database URL parses and its driver imports (a file name needs nothing)."""
    if "://" not in storage:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(storage)
        url.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"search.storage: not a database URL ({exc})") from None
    except ImportError as exc:
        hint = " (pip install 'hwnas[postgres]')" if storage.startswith("postgres") else ""
        raise ConfigError(f"search.storage: the driver for {url.drivername!r} is not installed: "
                          f"{exc.name or exc}{hint}") from None


def _check_named(registry: Any, name: str, options: Mapping[str, Any], name_key: str,
                 options_key: str) -> None:
    """``name`` is registered and ``options`` fit its factory (after the space argument)."""
    try:
        registry.get(name)
    except ValueError as exc:
        raise ConfigError(f"{name_key}: {exc}") from None
    if "seed" in options:
        raise ConfigError(f"{options_key}.seed: the experiment's top-level `seed` seeds it")
    try:
        registry.check_options(name, options, skip=1)
    except ValueError as exc:
        raise ConfigError(f"{options_key}: {exc}") from None


def _check_devices(exp: Experiment) -> None:
    from hardware import DEVICES, Profiler, get_device

    for i, dev in enumerate(exp.devices):
        where = f"devices[{i}]"
        try:
            DEVICES.get(dev.kind)
        except ValueError as exc:
            raise ConfigError(f"{where}.kind: {exc}") from None
        try:
            DEVICES.check_options(dev.kind, dev.options)
        except ValueError as exc:
            raise ConfigError(f"{where}.options: {exc}") from None
        _check_keywords(Profiler, dev.profiler, f"{where}.profiler")
        if dev.table is not None and not Path(dev.table).is_file():
            raise ConfigError(f"{where}.table: no such file {dev.table}")
        if dev.table is None:
            try:
                get_device(dev.kind, **dev.options)  # absent hardware and bad values fail here
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None


def _check_keywords(factory: Callable[..., Any], options: Mapping[str, Any], where: str) -> None:
    valid = [p.name for p in list(inspect.signature(factory).parameters.values())
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
    for key in options:
        if key not in valid:
            hint = difflib.get_close_matches(key, valid, n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{where}.{key}: unknown option{maybe}; valid options: "
                              f"{', '.join(valid)}")
