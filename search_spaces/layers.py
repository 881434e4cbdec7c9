"""`LayerSpec`: one realised op with its parameters and input shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search_spaces.ops import Shape

__all__ = ["LayerSpec"]


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
