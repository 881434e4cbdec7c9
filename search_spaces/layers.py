"""`LayerSpec`: one realised op with its parameters and input shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search_spaces.errors import SearchSpaceError
from search_spaces.ops import NUM_CLASSES, Shape, get_op

__all__ = ["LayerSpec", "resolve_spec"]


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


def resolve_spec(op: str, params: dict[str, Any], in_shape: Shape, num_classes: int,
                 path: str = "") -> LayerSpec | None:
    """The `LayerSpec` a plan makes for this op, or ``None`` if it cannot take ``in_shape``.

    Mirrors the planner: ``NUM_CLASSES`` becomes ``num_classes``, defaults are
    filled, ``out=0`` becomes the input's channels. The tests check that specs made
    here equal ``space.layers(arch)``.
    """
    opdef = get_op(op)
    concrete = {k: (num_classes if v is NUM_CLASSES else v) for k, v in params.items()}
    try:
        resolved = opdef.resolve(concrete, path or op)
        if resolved.get("out") == 0 and len(in_shape) == 3:
            resolved["out"] = in_shape[0]
        out_shape = opdef.out_shape(in_shape, resolved)
    except (SearchSpaceError, ValueError, RuntimeError, IndexError, ZeroDivisionError):
        return None
    if any(d <= 0 for d in out_shape):
        return None
    return LayerSpec(op, tuple(sorted(resolved.items())), tuple(in_shape), tuple(out_shape), path)
