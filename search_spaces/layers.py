"""`LayerSpec`: one realised op with its parameters and input shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from search_spaces.errors import ArchitectureError, SearchSpaceError
from search_spaces.ops import NUM_CLASSES, Shape, get_op

__all__ = ["LayerSpec", "make_spec", "resolve_spec"]


@dataclass(frozen=True)
class LayerSpec:
    """A realised op: its name, concrete parameters and input shape (no batch dim).

    Equality and hash use ``op``, ``params`` and ``in_shape`` only: the latency of a
    layer depends on those, not on where it sits. ``key`` is a stable string form,
    the row key of a latency table.
    """

    op: str
    params: tuple[tuple[str, Any], ...]
    in_shape: Shape
    out_shape: Shape = field(compare=False)
    path: str = field(default="", compare=False)

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def key(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self.params)
        shape = "x".join(str(d) for d in self.in_shape)
        return f"{self.op}({params})@{shape}"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "params": dict(self.params), "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), "path": self.path}


def make_spec(op: str, params: Mapping[str, Any], in_shape: Shape, num_classes: int,
              path: str = "") -> LayerSpec:
    """The `LayerSpec` of ``op`` with ``params`` on ``in_shape``, as every plan makes it.

    ``NUM_CLASSES`` becomes ``num_classes``, defaults are filled and ``out=0`` becomes
    the input's channels (the op registry's convention).

    Raises:
        ArchitectureError: naming ``path`` (or the op): a bad parameter, an input shape
            the op cannot take, or an empty output.
    """
    opdef = get_op(op)
    concrete = {k: (num_classes if v is NUM_CLASSES else v) for k, v in params.items()}
    where = path or op
    try:
        resolved = opdef.resolve(concrete, where)
        if resolved.get("out") == 0 and len(in_shape) == 3:
            resolved["out"] = in_shape[0]  # convention: out=0 keeps the input's channels
        out_shape = opdef.out_shape(in_shape, resolved)
    except SearchSpaceError as exc:
        raise ArchitectureError(str(exc), path) from None
    except (ValueError, RuntimeError, IndexError, ZeroDivisionError) as exc:
        raise ArchitectureError(
            f"{where}: op {op!r} cannot take input shape {in_shape}: {exc}", path
        ) from None
    if any(d <= 0 for d in out_shape):
        raise ArchitectureError(
            f"{where}: op {op!r} on input {in_shape} gives empty output {out_shape}", path
        )
    return LayerSpec(op, tuple(sorted(resolved.items())), tuple(in_shape), tuple(out_shape), path)


def resolve_spec(op: str, params: Mapping[str, Any], in_shape: Shape, num_classes: int,
                 path: str = "") -> LayerSpec | None:
    """:func:`make_spec`, or ``None`` when the op cannot take ``in_shape`` (or its
    parameters are bad)."""
    try:
        return make_spec(op, params, in_shape, num_classes, path)
    except ArchitectureError:
        return None
