"""Objective types of an experiment file, and the search problem they make.

``search.objectives`` and ``search.measures`` name objective types registered here;
a plugin adds its own with :func:`register_objective_type`. A factory takes the
entry's :class:`~nas.experiment.ObjectiveSpec` and the search space and returns an
:class:`~nas.objectives.Objective`.
"""

from __future__ import annotations

from collections.abc import Callable

from nas.errors import ConfigError
from nas.experiment._schema import Experiment, ObjectiveSpec
from nas.objectives import Flops, Objective, Params, TableLatency, TabularObjective
from nas.search import Problem
from search_spaces import Registry, SearchSpace, get_space

__all__ = ["OBJECTIVE_TYPES", "build_objective", "build_problem", "register_objective_type"]

ObjectiveFactory = Callable[[ObjectiveSpec, SearchSpace], Objective]

OBJECTIVE_TYPES: Registry[ObjectiveFactory] = Registry("objective type", ConfigError)
"""Objective factories ``(spec, space) -> Objective`` by type name."""

#: Fields an objective type needs in its entry, checked before anything runs.
_NEEDS: dict[str, tuple[str, ...]] = {"tabular": ("path", "column"), "table_latency": ("path",)}


def register_objective_type(name: str, *, needs: tuple[str, ...] = (), replace: bool = False
                            ) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    """Decorator registering ``factory(spec, space) -> Objective`` as objective type ``name``.

    Args:
        name: the ``type`` experiment files use.
        needs: fields of the entry that must be given (e.g. ``("path",)``).
        replace: replace an existing type of that name.
    """

    def decorator(factory: ObjectiveFactory) -> ObjectiveFactory:
        OBJECTIVE_TYPES.add(name, factory, replace=replace)
        _NEEDS[name] = tuple(needs)
        return factory

    return decorator


@register_objective_type("flops")
def _flops(spec: ObjectiveSpec, space: SearchSpace) -> Objective:
    return Flops(space, name=spec.name or "flops")


@register_objective_type("params")
def _params(spec: ObjectiveSpec, space: SearchSpace) -> Objective:
    return Params(space, name=spec.name or "params")


@register_objective_type("table_latency", needs=("path",))
def _table_latency(spec: ObjectiveSpec, space: SearchSpace) -> Objective:
    from hardware import LatencyTable

    return TableLatency(LatencyTable.load(spec.path, space=space),  # refuses another space's
                        name=spec.name or "latency_ms")


@register_objective_type("tabular", needs=("path", "column"))
def _tabular(spec: ObjectiveSpec, space: SearchSpace) -> Objective:
    return TabularObjective(spec.path, spec.column, key_column=spec.key_column,
                            key_format=spec.key_format, name=spec.name,
                            direction=spec.direction or "minimize")


def check_objective(spec: ObjectiveSpec, where: str) -> None:
    """Raise :class:`ConfigError` (naming ``where``) for an unknown type or a missing field."""
    try:
        OBJECTIVE_TYPES.get(spec.type)
    except ConfigError as exc:
        raise ConfigError(f"{where}.type: {exc}") from None
    for key in _NEEDS.get(spec.type, ()):
        if getattr(spec, key) is None:
            raise ConfigError(f"{where}.{key}: objective type {spec.type!r} needs {key}")


def build_objective(spec: ObjectiveSpec, space: SearchSpace, where: str = "objective") -> Objective:
    """One objective from its experiment entry (``where`` names it in errors)."""
    check_objective(spec, where)
    try:
        return OBJECTIVE_TYPES.get(spec.type)(spec, space)
    except ConfigError:
        raise
    except ValueError as exc:  # the objective's own refusal (a missing column, another space)
        raise ConfigError(f"{where}: {exc}") from None


def build_problem(exp: Experiment, space: SearchSpace | None = None) -> Problem:
    """The search problem of ``nas search``: objectives, constraints and measures."""
    space = space or get_space(exp.space.name, **exp.space.options)
    objectives = [build_objective(o, space, f"search.objectives[{i}]")
                  for i, o in enumerate(exp.search.objectives)]
    measures = [build_objective(o, space, f"search.measures[{i}]")
                for i, o in enumerate(exp.search.measures)]
    try:
        return Problem(space, objectives, exp.search.constraints, measures)
    except ValueError as exc:
        raise ConfigError(f"search: {exc}") from None
