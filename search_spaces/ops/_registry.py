"""The op registry: terminals of every grammar are registered operations.

An op declares its typed hyper-parameters, which of them may become elastic in
a one-shot supernet, how to build it for an input shape, and its output shape.
Built-in ops and users' ops are registered the same way, with :func:`register_op`.

Convention: an image op's ``out`` parameter of 0 means "as many channels as the
input"; plans resolve it to the real count so equal layers have equal keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from search_spaces._registry import Registry
from search_spaces.errors import SearchSpaceError, UnknownNameError

__all__ = [
    "NUM_CLASSES",
    "OPS",
    "OpDef",
    "Param",
    "Shape",
    "get_op",
    "list_ops",
    "register_op",
]

Shape = tuple[int, ...]
"""A tensor shape without the batch dimension: (C, H, W) for images, (L, D) for tokens."""

_REQUIRED = object()

ELASTIC_KINDS = ("kernel", "channels", "resolution")
"""How a parameter may be elastic in a supernet: kernel (centre crop), channels
(importance slicing), resolution (input resize)."""


class _NumClasses:
    """Placeholder for the number of classes, resolved when a network is built."""

    def __repr__(self) -> str:
        return "NUM_CLASSES"

    def __reduce__(self) -> str:
        return "NUM_CLASSES"


NUM_CLASSES = _NumClasses()


@dataclass(frozen=True)
class Param:
    """A typed op hyper-parameter.

    Args:
        type: ``int``, ``float``, ``str`` or ``bool``.
        default: value used when a grammar leaves the parameter out (required if absent).
        elastic: one of ``"kernel"``, ``"channels"``, ``"resolution"`` when a supernet
            may share weights across the parameter's values, else ``None``.
    """

    type: type
    default: Any = _REQUIRED
    elastic: str | None = None

    def __post_init__(self) -> None:
        if self.type not in (int, float, str, bool):
            raise SearchSpaceError(f"Param.type must be int, float, str or bool, got {self.type!r}")
        if self.elastic is not None and self.elastic not in ELASTIC_KINDS:
            raise SearchSpaceError(
                f"Param.elastic must be one of {ELASTIC_KINDS} or None, got {self.elastic!r}"
            )

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


Builder = Callable[..., nn.Module]
ShapeFn = Callable[..., Shape]


@dataclass(frozen=True)
class OpDef:
    """A registered operation.

    Attributes:
        name: registry name.
        params: typed hyper-parameters.
        builder: ``builder(in_shape, **params) -> nn.Module``.
        out_shape_fn: ``fn(in_shape, **params) -> Shape``; ``None`` infers the shape by
            running the module on the meta device (cached).
        description: one line for listings.
    """

    name: str
    params: Mapping[str, Param]
    builder: Builder
    out_shape_fn: ShapeFn | None = None
    description: str = ""
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def resolve(self, given: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Fill defaults and type-check concrete parameter values.

        Args:
            given: parameter values (decisions already resolved).
            where: location for error messages (grammar path).
        """
        unknown = set(given) - set(self.params)
        if unknown:
            raise SearchSpaceError(
                f"{where}: op {self.name!r} has no parameter(s) {sorted(unknown)}; "
                f"its parameters are {sorted(self.params) or 'none'}"
            )
        out = {}
        for name, spec in self.params.items():
            if name in given:
                value = given[name]
            elif spec.required:
                raise SearchSpaceError(f"{where}: op {self.name!r} needs parameter {name!r}")
            else:
                value = spec.default
            if value is not NUM_CLASSES and not _type_ok(value, spec.type):
                raise SearchSpaceError(
                    f"{where}: op {self.name!r} parameter {name!r} must be "
                    f"{spec.type.__name__}, got {value!r}"
                )
            out[name] = value
        return out

    def build(self, in_shape: Shape, params: Mapping[str, Any]) -> nn.Module:
        return self.builder(tuple(in_shape), **params)

    def out_shape(self, in_shape: Shape, params: Mapping[str, Any]) -> Shape:
        if self.out_shape_fn is not None:
            return tuple(self.out_shape_fn(tuple(in_shape), **params))
        key = (tuple(in_shape), tuple(sorted(params.items())))
        if key not in self._cache:
            with torch.device("meta"):
                module = self.builder(tuple(in_shape), **params)
                out = module(torch.empty(1, *in_shape))
            self._cache[key] = tuple(out.shape[1:])
        return self._cache[key]


def _type_ok(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


OPS: Registry[OpDef] = Registry("op", SearchSpaceError, UnknownNameError)
"""Registered ops by name."""


def register_op(
    name: str,
    *,
    params: Mapping[str, Param] | None = None,
    out_shape: ShapeFn | None = None,
    description: str = "",
    replace: bool = False,
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(in_shape, **params) -> nn.Module`` as op ``name``.

    Example:
        >>> @register_op("my_conv", params={"out": Param(int), "kernel": Param(int, 3, "kernel")},
        ...              out_shape=lambda s, out, kernel: (out, *s[1:]))
        ... def my_conv(in_shape, out, kernel):
        ...     return torch.nn.Conv2d(in_shape[0], out, kernel, padding=kernel // 2)
    """

    def decorator(builder: Builder) -> Builder:
        OPS.add(name, OpDef(
            name=name,
            params=dict(params or {}),
            builder=builder,
            out_shape_fn=out_shape,
            description=description or (builder.__doc__ or "").strip().split("\n")[0],
        ), replace=replace)
        return builder

    return decorator


def get_op(name: str) -> OpDef:
    """Look up a registered op; an unknown name lists the valid ones."""
    return OPS.get(name)


def list_ops() -> list[str]:
    """Names of all registered ops, sorted."""
    return OPS.names()
