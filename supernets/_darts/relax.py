"""Which decisions of a space DARTS can relax, and the candidate layers of every edge.

A cell whose ``op`` is a :class:`~search_spaces.Choice` among plain ops (constant
parameters) is *searchable*: every edge of it becomes a mixed op. Every decision
of the space must be an edge decision of a searchable cell (``edge_<j>_<i>``, or
``node<j>.inputs`` / ``node<j>.op<m>``); anything else cannot be relaxed and the
space is refused with an error naming the decision.

Which decisions belong to which cell comes from the derivation's recorded origins
(:func:`search_spaces.derive`). The planning of each candidate reuses the search
space's own :class:`~search_spaces.plan.Planner`, so a candidate's
:class:`~search_spaces.LayerSpec` (and module) is exactly what the standalone
network of a derived architecture contains at that edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces import (
    ArchDecider,
    Architecture,
    Cell,
    Choice,
    Grammar,
    LayerSpec,
    Op,
    Ref,
    SearchSpace,
    SearchSpaceError,
    derive,
)
from search_spaces.derivation import DCell, DOp, join, walk_tree
from search_spaces.ops import Shape
from search_spaces.plan import PCell, Planner, PNode
from supernets.errors import SupernetError

__all__ = ["CellRule", "EdgeCandidates", "analyse_space", "plan_edges"]


@dataclass(frozen=True)
class CellRule:
    """A searchable cell: one set of architecture parameters.

    Attributes:
        path: the cell's decision prefix (the rule name for shared cells).
        labels: op labels of the choice, in grammar order (the alpha columns).
        ops: the op expression of each label.
        cell: the cell's grammar expression (its shape, edges and reduction rule).
    """

    path: str
    labels: tuple[str, ...]
    ops: tuple[Op, ...]
    cell: Cell

    @property
    def inputs(self) -> int:
        return self.cell.inputs

    @property
    def nodes(self) -> int:
        return self.cell.nodes

    @property
    def in_degree(self) -> int | None:
        """None (every edge is kept, NAS-Bench-201) or k (DARTS)."""
        return self.cell.in_degree

    @property
    def reduction(self) -> bool:
        return self.cell.reduction

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """(target j, source i) of every supernet edge, in order (the alpha rows)."""
        return tuple((j, i) for j in self.cell.targets() for i in range(j))

    def edge_name(self, j: int, i: int) -> str:
        return self.cell.edge_label(j, i)

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
        bad = [name for name, _ in alt.values]
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
    tree, rec = derive(space, ArchDecider(reference))
    cells = {node.path: node.cell for node in walk_tree(tree) if isinstance(node, DCell)}
    rules: list[CellRule] = []
    reasons: list[str] = []
    for path, cell in cells.items():
        found = _resolve_ops(space.grammar, cell.op, path)
        if isinstance(found, str):
            reasons.append(found)
        else:
            rules.append(CellRule(path, *found, cell))
    if not rules:
        why = "; ".join(reasons) if reasons else "it has no Cell"
        raise SupernetError(
            f"space {space.name!r} has no categorical op choice on cell edges, which is what "
            f"DARTS relaxes ({why})"
        )
    searchable = {r.path for r in rules}
    for path in rec:
        if rec.origins[path].cell not in searchable:
            raise SupernetError(
                f"space {space.name!r}: decision {path!r} ({rec.kinds[path]}) is not an op choice on "
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
    planner = Planner(num_classes)
    out = []
    for j, i in rule.edges:
        reduce_edge = rule.cell.reduces(i)
        specs, plans = [], []
        for label, op in zip(rule.labels, rule.ops, strict=False):
            where = join(rule.path, rule.edge_name(j, i))
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
