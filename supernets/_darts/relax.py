"""Which decisions of a space DARTS can relax, and the candidate layers of every edge.

A cell whose ``op`` is a :class:`~search_spaces.Choice` among plain ops (constant
parameters) is *searchable*: every edge of it becomes a mixed op. Every decision
of the space must be an edge decision of a searchable cell (``edge_<j>_<i>``, or
``node<j>.inputs`` / ``node<j>.op<m>``); anything else cannot be relaxed and the
space is refused with an error naming the decision.

The planning of each candidate reuses the search space's own planner, so a
candidate's :class:`~search_spaces.LayerSpec` (and module) is exactly what the
standalone network of a derived architecture contains at that edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from search_spaces import (
    Architecture,
    Cell,
    Choice,
    Grammar,
    LayerSpec,
    Op,
    Ref,
    SearchSpace,
    Value,
)
from search_spaces._derive import ArchDecider, DOp, Recorder, _Walk
from search_spaces._plan import PCell, PNode, _Planner
from search_spaces.errors import SearchSpaceError
from search_spaces.ops import Shape
from supernets.errors import SupernetError

__all__ = ["CellRule", "EdgeCandidates", "analyse_space", "plan_edges"]


@dataclass(frozen=True)
class CellRule:
    """A searchable cell: one set of architecture parameters.

    Attributes:
        path: the cell's decision prefix (the rule name for shared cells).
        labels: op labels of the choice, in grammar order (the alpha columns).
        ops: the op expression of each label.
        inputs, nodes: cell shape (states are inputs, then intermediate nodes).
        in_degree: None (every edge is kept, NAS-Bench-201) or k (DARTS).
        reduction: edges leaving input states have stride 2.
    """

    path: str
    labels: tuple[str, ...]
    ops: tuple[Op, ...]
    inputs: int
    nodes: int
    in_degree: int | None
    reduction: bool

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(target j, source i) of every supernet edge, in order (the alpha rows)."""
        return tuple((j, i) for j in range(self.inputs, self.inputs + self.nodes) for i in range(j))

    def edge_name(self, j: int, i: int) -> str:
        return f"edge_{j}_{i}"

    @property
    def zero_ops(self) -> tuple[bool, ...]:
        """Which candidates are the 'zero' op (no connection)."""
        return tuple(op.name == "zero" for op in self.ops)


@dataclass
class EdgeCandidates:
    """One edge of one cell instance: the planned candidate of every op label."""

    source: int
    target: int
    specs: list[LayerSpec]  # full-width candidates: latency keys of the derived network
    plans: list[PNode]  # candidates as built (partial channels when PC-DARTS)


class _CellWalk(_Walk):
    """The space's derivation walk, also remembering each cell's grammar expression."""

    def __init__(self, grammar: Grammar, decider: Recorder) -> None:
        super().__init__(grammar, decider)
        self.cells: dict[str, Cell] = {}

    def cell(self, e: Cell, path: str, budget: int):
        self.cells.setdefault(path, e)
        return super().cell(e, path, budget)


def _resolve_ops(grammar: Grammar, expr, path: str) -> tuple[tuple[str, ...], tuple[Op, ...]] | str:
    """The (labels, ops) of a cell's op choice, or the reason it is not one."""
    seen = set()
    while isinstance(expr, Ref) and not expr.shared and expr.rule not in seen:
        seen.add(expr.rule)
        expr = grammar.rules[expr.rule]
    if not isinstance(expr, Choice):
        return f"cell {path!r}: its edge op is {type(expr).__name__}, not a Choice among ops"
    ops = []
    for label, alt in expr.alternatives:
        if not isinstance(alt, Op):
            return (f"cell {path!r}: alternative {label!r} is {type(alt).__name__}, "
                    "not an op (DARTS relaxes only choices among ops)")
        bad = [name for name, v in alt.params if isinstance(v, Value)]
        if bad:
            return (f"cell {path!r}: alternative {label!r} has parameter decision(s) {bad}; "
                    "DARTS relaxes only the choice among ops, not op parameters")
        ops.append(alt)
    return expr.labels, tuple(ops)


def analyse_space(space: SearchSpace) -> tuple[Architecture, list[CellRule]]:
    """A reference architecture of the space and its searchable cells.

    Raises:
        SupernetError: the space has no categorical op choice on cell edges, or has a
            decision DARTS cannot relax (named, with its kind).
    """
    if space.grammar.is_recursive:
        raise SupernetError(
            f"space {space.name!r} is recursive: its skeleton changes between architectures, "
            "so it has no fixed set of cell edges to relax"
        )
    reference = space.sample(0)
    walk = _CellWalk(space.grammar, Recorder(ArchDecider(reference)))
    walk.run()
    rules: list[CellRule] = []
    reasons: list[str] = []
    for path, cell in walk.cells.items():
        found = _resolve_ops(space.grammar, cell.op, path)
        if isinstance(found, str):
            reasons.append(found)
            continue
        labels, ops = found
        rules.append(CellRule(path, labels, ops, cell.inputs, cell.nodes, cell.in_degree,
                              cell.reduction))
    if not rules:
        why = "; ".join(reasons) if reasons else "it has no Cell"
        raise SupernetError(
            f"space {space.name!r} has no categorical op choice on cell edges, which is what "
            f"DARTS relaxes ({why})"
        )
    edge_paths = re.compile(r"^(?P<cell>.+)\.(edge_\d+_\d+|node\d+\.inputs|node\d+\.op\d+)$")
    searchable = {r.path for r in rules}
    kinds = walk.decider.kinds
    for path in walk.decider.decisions:
        m = edge_paths.match(path)
        if m is None or m.group("cell") not in searchable:
            raise SupernetError(
                f"space {space.name!r}: decision {path!r} ({kinds[path]}) is not an op choice on "
                f"the edges of a searchable cell ({', '.join(sorted(searchable))}); DARTS cannot "
                "relax it"
            )
    return reference, rules


def plan_edges(rule: CellRule, cell: PCell, num_classes: int, partial_channels: int = 1
               ) -> list[EdgeCandidates]:
    """Plan every candidate op on every edge of one cell instance.

    Args:
        rule: the cell's rule.
        cell: the instance's plan (taken from any architecture: the skeleton is shared).
        num_classes: passed to the planner.
        partial_channels: K of PC-DARTS: candidates are built on 1/K of the channels.
    """
    node_shape = cell.nodes[0][0][1].out_shape
    states: list[Shape] = [p.out_shape for p in cell.preprocess] + [node_shape] * rule.nodes
    planner = _Planner(num_classes)
    out = []
    for j, i in rule.edges:
        reduce_edge = rule.reduction and i < rule.inputs
        specs, plans = [], []
        for label, op in zip(rule.labels, rule.ops, strict=False):
            where = f"{rule.path}.{rule.edge_name(j, i)}"
            node = DOp(where, op.name, dict(op.params))
            try:
                full = planner.edge(node, states[i], reduce_edge)
            except SearchSpaceError as exc:
                raise SupernetError(f"{where}: candidate {label!r}: {exc}") from None
            if full.out_shape != node_shape:
                raise SupernetError(
                    f"{where}: candidate {label!r} gives {full.out_shape}, the node needs {node_shape}"
                )
            specs.append(full.spec)
            if partial_channels == 1:
                plans.append(full)
                continue
            c = states[i][0]
            if c % partial_channels or full.out_shape[0] != c:
                raise SupernetError(
                    f"{where}: partial channels K={partial_channels} needs ops that keep the channel "
                    f"count and a count divisible by K; candidate {label!r} maps {states[i]} -> "
                    f"{full.out_shape}"
                )
            part = planner.edge(node, (c // partial_channels, *states[i][1:]), reduce_edge)
            if part.out_shape[0] != c // partial_channels:
                raise SupernetError(
                    f"{where}: partial channels K={partial_channels}: candidate {label!r} does not "
                    f"keep the channel count of its {c // partial_channels}-channel sample"
                )
            plans.append(part)
        out.append(EdgeCandidates(i, j, specs, plans))
    return out
