"""Derivation: walk a grammar, asking a decider at every decision point.

One walk serves sampling, validation, mutation, crossover and Optuna's
define-by-run, and the supernets' analyses: they differ only in the decider.
:func:`derive` returns the derivation tree (choices, repeats and references
resolved away) and a :class:`Recorder` of every decision made: its value, its
allowed values, its kind and its :class:`Origin` (what in the grammar asked).

Example:
    >>> import numpy as np
    >>> from search_spaces import RandomDecider, derive, get_space
    >>> tree, rec = derive(get_space("nb201"), RandomDecider(np.random.default_rng(0)))
    >>> rec.kinds["cell.edge_1_0"], rec.origins["cell.edge_1_0"].cell
    ('choice', 'cell')

A decider is any object with ``decide(path, choices, probs, kind) -> value``
(:class:`Decider`); the built-ins draw at random (:class:`RandomDecider`), read an
architecture (:class:`ArchDecider`) or take a proposal where it is allowed and
draw otherwise (:class:`FallbackDecider`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from search_spaces._cell import Cell, CellStack
from search_spaces._deciders import ArchDecider, Decider, FallbackDecider, RandomDecider, _fmt
from search_spaces._expr import Choice, Expr, Op, Parallel, Ref, Repeat, Residual, Seq, Value, join
from search_spaces.errors import SearchSpaceError
from search_spaces.grammar import Grammar

__all__ = [
    "KINDS",
    "ArchDecider",
    "DCell",
    "DCellStack",
    "DNode",
    "DOp",
    "DParallel",
    "DResidual",
    "DSeq",
    "Decider",
    "Decision",
    "Derivation",
    "FallbackDecider",
    "Origin",
    "RandomDecider",
    "Recorder",
    "derive",
    "join",
    "walk_tree",
]

KINDS = ("value", "choice", "depth", "inputs")
"""Decision kinds: an op parameter or other :class:`~search_spaces.Value`, a
:class:`~search_spaces.Choice` among productions, a :class:`~search_spaces.Repeat`
depth, and the inputs a :class:`~search_spaces.Cell` node picks."""

# --------------------------------------------------------------------------- tree


@dataclass
class DNode:
    """A node of a derivation tree; ``path`` is the decision prefix it was derived at."""

    path: str


@dataclass
class DOp(DNode):
    """A realised op with concrete parameter values (``NUM_CLASSES`` still symbolic)."""

    op: str
    params: dict[str, Any]


@dataclass
class DSeq(DNode):
    """A sequence (also a repeat's blocks)."""

    children: list[DNode]


@dataclass
class DResidual(DNode):
    body: DNode


@dataclass
class DParallel(DNode):
    branches: list[DNode]
    merge: str
    split: bool


@dataclass
class DCell(DNode):
    """A derived cell: its grammar expression and, per intermediate node, its edges
    as ``[(source state index, op node), ...]``."""

    cell: Cell
    nodes: list[list[tuple[int, DNode]]] = field(default_factory=list)

    @property
    def inputs(self) -> int:
        return self.cell.inputs

    @property
    def output(self) -> str:
        return self.cell.output

    @property
    def reduction(self) -> bool:
        return self.cell.reduction


@dataclass
class DCellStack(DNode):
    cells: list[DNode]
    channels: tuple[int, ...]


def walk_tree(node: DNode) -> Iterator[DNode]:
    """Every node of a derivation tree, parents before children (a shared rule's
    subtree is visited at every reference)."""
    yield node
    if isinstance(node, DSeq):
        parts: list[DNode] = node.children
    elif isinstance(node, DResidual):
        parts = [node.body]
    elif isinstance(node, DParallel):
        parts = node.branches
    elif isinstance(node, DCell):
        parts = [op for edges in node.nodes for _, op in edges]
    elif isinstance(node, DCellStack):
        parts = node.cells
    else:
        parts = []
    for part in parts:
        yield from walk_tree(part)


# --------------------------------------------------------------------------- recorder


class Origin(NamedTuple):
    """What in the grammar asked for a decision.

    Attributes:
        expr: the asking expression: an :class:`~search_spaces.Op` (value decisions of
            op parameters), a :class:`~search_spaces.Choice` (its alternatives' labels:
            ``expr.labels``), a :class:`~search_spaces.Repeat` (depth) or a
            :class:`~search_spaces.Cell` (inputs).
        param: the op parameter of a value decision.
        cell: the path of the cell whose node inputs, or whose edge op, this decision
            is (``None`` for decisions not on a cell edge, including those nested
            deeper inside an edge's op).
    """

    expr: Expr
    param: str | None = None
    cell: str | None = None

    @property
    def op(self) -> str | None:
        """The op name of an op-parameter decision."""
        return self.expr.name if isinstance(self.expr, Op) else None


class Decision(NamedTuple):
    """One recorded decision."""

    path: str
    value: Any
    choices: tuple
    kind: str
    origin: Origin


class Recorder:
    """Wraps a decider and records every decision, in walk order.

    Attributes:
        decisions: ``{path: value}`` (an :class:`~search_spaces.Architecture`'s content).
        choices: ``{path: allowed values}``.
        kinds: ``{path: kind}``, one of :data:`KINDS`.
        origins: ``{path: Origin}``.

    A path asked again (a shared rule referenced twice) is one decision: the first
    answer is returned. ``recorder[path]`` is the :class:`Decision` at ``path``.
    """

    def __init__(self, inner: Decider) -> None:
        self.inner = inner
        self.decisions: dict[str, Any] = {}
        self.choices: dict[str, tuple] = {}
        self.kinds: dict[str, str] = {}
        self.origins: dict[str, Origin] = {}

    def ask(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str,
            origin: Origin) -> Any:
        """Decide at ``path`` through the inner decider and record it."""
        if path in self.decisions:
            return self.decisions[path]
        value = self.inner.decide(path, choices, probs, kind)
        if value not in choices:
            raise SearchSpaceError(
                f"decider {type(self.inner).__name__} answered {value!r} at {path!r}; "
                f"allowed values: {_fmt(choices)}"
            )
        self.decisions[path] = value
        self.choices[path] = choices
        self.kinds[path] = kind
        self.origins[path] = origin
        return value

    def __getitem__(self, path: str) -> Decision:
        return Decision(path, self.decisions[path], self.choices[path], self.kinds[path],
                        self.origins[path])

    def __iter__(self) -> Iterator[str]:
        return iter(self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)


# --------------------------------------------------------------------------- walk


class Derivation(NamedTuple):
    """The result of :func:`derive`: the tree and the recorded decisions."""

    tree: DNode
    recorder: Recorder


def derive(space_or_grammar: Any, decider: Decider) -> Derivation:
    """Derive one architecture of a search space (or grammar), asking ``decider``.

    Args:
        space_or_grammar: a :class:`~search_spaces.SearchSpace` or a
            :class:`~search_spaces.Grammar`.
        decider: answers every decision (see :class:`Decider`); pass a
            :class:`Recorder` to keep recording into it.

    Returns:
        ``(tree, recorder)``; ``recorder.decisions`` are the architecture's decisions.

    Raises:
        SearchSpaceError: not a space or grammar, not a decider, or a decider answer
            outside the choices.
        ArchitectureError: raised by the decider (e.g. :class:`ArchDecider` on a missing
            or disallowed value).
    """
    grammar = getattr(space_or_grammar, "grammar", space_or_grammar)
    if not isinstance(grammar, Grammar):
        raise SearchSpaceError(
            f"derive: expected a SearchSpace or a Grammar, got {type(space_or_grammar).__name__}"
        )
    if not (isinstance(decider, Recorder) or callable(getattr(decider, "decide", None))):
        raise SearchSpaceError(
            f"derive: the decider must have decide(path, choices, probs, kind), got {type(decider).__name__}"
        )
    recorder = decider if isinstance(decider, Recorder) else Recorder(decider)
    return Derivation(_Walk(grammar, recorder).run(), recorder)


class _Walk:
    """The derivation walk: each expression kind's semantics come from its class."""

    def __init__(self, grammar: Grammar, recorder: Recorder) -> None:
        self.grammar = grammar
        self.recorder = recorder
        self.shared: dict[str, DNode] = {}
        self.edges: dict[str, str] = {}  # path of a cell edge -> path of its cell

    def run(self) -> DNode:
        return self.expr(self.grammar.rules[self.grammar.start], "", self.grammar.max_depth)

    def expr(self, e: Expr, path: str, budget: float) -> DNode:
        if isinstance(e, Op):
            params = {}
            for name, v in e.params:
                params[name] = self.recorder.ask(join(path, name), v.choices, v.probs, "value",
                                                 Origin(e, name)) if isinstance(v, Value) else v
            return DOp(path, e.name, params)
        if isinstance(e, Seq):
            return DSeq(path, [self.expr(x, join(path, label), budget) for label, x in e.items])
        if isinstance(e, Choice):
            here = e.decision_path(path, self.grammar)
            options = e.options(self.grammar, budget)
            labels, probs = Choice.decision(options)
            label = self.recorder.ask(here, labels, probs, "choice", Origin(e, None, self.edges.get(here)))
            return self.expr(options[labels.index(label)].expr, join(here, label), budget)
        if isinstance(e, Repeat):
            depth = self.recorder.ask(e.depth_path(path), e.depth.choices, e.depth.probs, "depth", Origin(e))
            return DSeq(path, [self.expr(x, join(path, label), budget) for label, x in e.blocks(depth)])
        if isinstance(e, Ref):
            rule, where, left = e.resolve(self.grammar, path, budget)
            if not e.shared:
                return self.expr(rule, where, left)
            if e.rule not in self.shared:
                self.shared[e.rule] = self.expr(rule, where, left)
            return self.shared[e.rule]
        if isinstance(e, Residual):
            return DResidual(path, self.expr(e.body, path, budget))
        if isinstance(e, Parallel):
            return DParallel(path, [self.expr(x, join(path, label), budget) for label, x in e.branches],
                             e.merge, e.split)
        if isinstance(e, Cell):
            return self.cell(e, path, budget)
        if isinstance(e, CellStack):
            return DCellStack(path, [self.expr(x, join(path, label), budget) for label, x in e.cells],
                              e.channels)
        raise SearchSpaceError(f"unknown grammar expression {type(e).__name__}")

    def cell(self, e: Cell, path: str, budget: float) -> DCell:
        node = DCell(path, e)
        for target in e.layout:
            picked = None
            if target.inputs is not None:
                picked = self.recorder.ask(join(path, target.inputs), target.combos, None, "inputs",
                                           Origin(e, None, path))
            edges = []
            for source, label in target.wiring(picked):
                where = join(path, label)
                self.edges[where] = path
                edges.append((source, self.expr(e.op, where, budget)))
            node.nodes.append(edges)
        return node
