"""What the supernets can do with the registered ops: the catalogue behind ``nas ops``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OpInfo", "ParamInfo", "SUPERNET_DECISIONS", "describe_ops"]

SUPERNET_DECISIONS: dict[str, str] = {
    "ofa": "an op parameter the op declares elastic (kernel: centre crop + kernel transform; "
           "channels: importance-sorted slicing, i.e. width; resolution: input resize), the depth "
           "of a Repeat (elastic depth keeps the first blocks), and the resolution decision; any "
           "other decision (a Choice among productions, cell edges or inputs, a non-elastic "
           "parameter with several values) is refused when the experiment is validated",
    "darts": "a Choice among ops on the edges of a Cell (each edge becomes a mixed op with "
             "architecture weights; the derived architecture keeps one op per edge); any other "
             "decision is refused when the experiment is validated",
}
"""The decisions each supernet accepts, by ``supernet.type``."""

_ELASTIC_AS = {"kernel": "kernel", "channels": "width", "resolution": "resolution"}


@dataclass(frozen=True)
class ParamInfo:
    """One op parameter: name, type, default (None when required), how OFA makes it elastic."""

    name: str
    type: str
    default: Any
    required: bool
    elastic: str | None

    def describe(self) -> str:
        text = f"{self.name}: {self.type}" + ("" if self.required else f" = {self.default!r}")
        return text + (f" [elastic: {_ELASTIC_AS[self.elastic]}]" if self.elastic else "")


@dataclass(frozen=True)
class OpInfo:
    """A registered op and what the supernets can do with it.

    Attributes:
        name, description: the op.
        params: its parameters.
        ofa_dynamic: an OFA dynamic implementation is registered (slicing weights of the
            largest instance); without one, OFA serves only parameter changes that keep
            the weight shapes (e.g. the resolution of a resize).
    """

    name: str
    description: str
    params: tuple[ParamInfo, ...]
    ofa_dynamic: bool

    @property
    def elastic(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.elastic)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "ofa_dynamic": self.ofa_dynamic,
                "params": [{"name": p.name, "type": p.type, "required": p.required,
                            "default": None if p.required else repr(p.default),
                            "elastic": _ELASTIC_AS.get(p.elastic or "")} for p in self.params]}


def describe_ops() -> list[OpInfo]:
    """Every registered op (plugins included once loaded), sorted by name."""
    from search_spaces import OPS
    from supernets import DYNAMIC_OPS

    out = []
    for name, op in OPS.items():
        params = tuple(ParamInfo(p, spec.type.__name__, None if spec.required else spec.default,
                                 spec.required, spec.elastic) for p, spec in op.params.items())
        out.append(OpInfo(name, op.description, params, name in DYNAMIC_OPS))
    return out
