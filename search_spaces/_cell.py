"""Cells: DAGs of edges (NAS-Bench-201, DARTS) and stacks of two-input cells.

The layout of a cell's decisions, its reduction rule, its input preprocessing and
its shapes are defined here once; the derivation, the decision slots, counting,
the vectorised sums, the realisable layers, the planner and DARTS all use them.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from search_spaces._expr import Expr, _labelled
from search_spaces.errors import GrammarError

__all__ = ["REDUCTION_STRIDE", "Cell", "CellNode", "CellStack"]

REDUCTION_STRIDE = 2
"""Stride of the edges leaving the input states of a reduction cell."""


class CellNode(NamedTuple):
    """The decisions of one intermediate node of a :class:`Cell` (labels relative to the cell).

    Attributes:
        index: the node's state index ``j`` (its predecessors are states ``0..j-1``).
        inputs: label of the decision picking its inputs (``node<j>.inputs``), or None
            when every predecessor feeds it.
        combos: the allowed input tuples (the one tuple of all predecessors when ``inputs``
            is None).
        edges: the label of each edge's op: one per predecessor (``edge_<j>_<i>``), or one
            per picked input (``node<j>.op<m>``).
    """

    index: int
    inputs: str | None
    combos: tuple[tuple[int, ...], ...]
    edges: tuple[str, ...]

    def wiring(self, picked: Sequence[int] | None = None) -> list[tuple[int, str]]:
        """(source state, op label) of each edge, given the picked inputs (if any)."""
        sources = self.combos[0] if self.inputs is None else picked
        return list(zip(sources, self.edges, strict=True))


@dataclass(frozen=True)
class Cell(Expr):
    """A cell: a DAG whose states are inputs then ``nodes`` intermediate nodes.

    Each intermediate state is the sum of an op (derived from ``op``) applied to
    predecessor states. With ``in_degree=None`` every predecessor feeds it
    (decisions ``edge_<j>_<i>``, NAS-Bench-201); with ``in_degree=k`` it picks k
    distinct predecessors (decisions ``node<j>.inputs`` and ``node<j>.op<m>``, DARTS).

    Args:
        op: expression derived on every edge, usually a :class:`Choice` of ops.
        nodes: number of intermediate nodes.
        inputs: 1 (a plain op in a sequence) or 2 (DARTS cells inside a :class:`CellStack`).
        in_degree: see above.
        output: ``"last"`` state, or ``"concat"`` of all intermediate states.
        reduction: edges leaving input states have stride 2 (the op needs a ``stride`` param).
    """

    op: Expr
    nodes: int
    inputs: int = 1
    in_degree: int | None = None
    output: str = "last"
    reduction: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.op, Expr):
            raise GrammarError(f"Cell: op is {type(self.op).__name__}, not a grammar expression")
        if self.nodes < 1 or self.inputs not in (1, 2):
            raise GrammarError(f"Cell: need nodes >= 1 and inputs in (1, 2), got {self.nodes}, {self.inputs}")
        if self.in_degree is not None and not 1 <= self.in_degree <= self.inputs:
            raise GrammarError(
                f"Cell: in_degree must be None or 1..inputs ({self.inputs}), got {self.in_degree}"
            )
        if self.output not in ("last", "concat"):
            raise GrammarError(f"Cell: output must be 'last' or 'concat', got {self.output!r}")

    def children(self) -> tuple[Expr, ...]:
        return (self.op,)

    def targets(self) -> range:
        """State indices of the intermediate nodes."""
        return range(self.inputs, self.inputs + self.nodes)

    @staticmethod
    def edge_label(j: int, i: int) -> str:
        """Name of the edge from state ``i`` into node ``j``."""
        return f"edge_{j}_{i}"

    @functools.cached_property
    def layout(self) -> tuple[CellNode, ...]:
        """The decisions of every intermediate node, in derivation order."""
        out = []
        for j in self.targets():
            if self.in_degree is None:
                out.append(CellNode(j, None, (tuple(range(j)),),
                                    tuple(self.edge_label(j, i) for i in range(j))))
            else:
                out.append(CellNode(j, f"node{j}.inputs",
                                    tuple(itertools.combinations(range(j), self.in_degree)),
                                    tuple(f"node{j}.op{m}" for m in range(self.in_degree))))
        return tuple(out)

    def reduces(self, source: int) -> bool:
        """True when the edge leaving state ``source`` has stride 2 (reduction cells:
        edges from the input states); its op gets ``stride=2``."""
        return self.reduction and source < self.inputs

    def preprocess(self, in_shapes: Sequence[tuple[int, ...]], channels: int
                   ) -> list[tuple[str, dict[str, Any]] | None]:
        """The op (name, params) bringing each input state to ``channels`` at the last
        input's resolution (``None``: used as it is). A single input is used as it is;
        with two, an input at another resolution is a stride-2 skip, otherwise a 1x1
        ReLU-conv-BN."""
        if len(in_shapes) == 1:
            return [None]
        target_hw = in_shapes[-1][1:]
        return [("skip", {"stride": REDUCTION_STRIDE, "out": channels}) if s[1:] != target_hw
                else ("relu_conv_bn", {"out": channels, "kernel": 1}) for s in in_shapes]

    def node_shape(self, channels: int, in_hw: Sequence[int]) -> tuple[int, ...]:
        """Shape of every intermediate state, from the last input's resolution."""
        stride = REDUCTION_STRIDE if self.reduction else 1
        return (channels, *((d - 1) // stride + 1 for d in in_hw))

    def out_shape(self, node_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The cell's output: the last node, or the concatenation of all nodes."""
        if self.output == "last":
            return node_shape
        return (node_shape[0] * self.nodes, *node_shape[1:])


@dataclass(frozen=True)
class CellStack(Expr):
    """Cells threaded with two states (s0, s1) -> (s1, cell(s0, s1)), as in DARTS.

    Args:
        cells: labelled cell expressions (usually shared :class:`Ref` s).
        channels: per-cell channel count C (a cell's output has C x its node count).
    """

    cells: tuple[tuple[str, Expr], ...]
    channels: tuple[int, ...]

    def __init__(self, cells: Sequence[Expr] | Mapping[str, Expr], channels: Sequence[int]) -> None:
        pairs = (_labelled(cells, "CellStack") if isinstance(cells, Mapping)
                 else tuple((f"cell{i}", c) for i, c in enumerate(cells)))
        _labelled(dict(pairs), "CellStack")
        if len(channels) != len(pairs):
            raise GrammarError(f"CellStack: {len(channels)} channel counts for {len(pairs)} cells")
        object.__setattr__(self, "cells", pairs)
        object.__setattr__(self, "channels", tuple(int(c) for c in channels))

    def children(self) -> tuple[Expr, ...]:
        return tuple(e for _, e in self.cells)

    @property
    def parts(self) -> tuple[tuple[str, Expr], ...]:
        """The labelled sub-expressions; each is derived at ``join(path, label)``."""
        return self.cells
