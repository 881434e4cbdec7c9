"""The grammar: expressions that derive architectures, and the `Grammar` of rules.

A grammar is data: a table ``{rule name: expression}``. Expressions compose
registered ops (:class:`Op`) with sequences, choices among productions, repeats
(depth decisions), references to rules (recursion), residuals, parallel branches
and cells (DAGs of edges). Decision points are :class:`Value` (a categorical
value), :class:`Choice` (a production), the depth of a :class:`Repeat`, and the
edges of a :class:`Cell`. Each decision gets a stable dotted path from the labels
of the expressions above it, e.g. ``stage2.block1.kernel``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search_spaces.errors import GrammarError, SearchSpaceError
from search_spaces.ops import NUM_CLASSES, get_op

__all__ = [
    "Cell",
    "CellStack",
    "Choice",
    "Expr",
    "Grammar",
    "Op",
    "Parallel",
    "Ref",
    "Repeat",
    "Residual",
    "Seq",
    "Value",
]


def _probs(probs: Sequence[float] | None, n: int, where: str) -> tuple[float, ...] | None:
    if probs is None:
        return None
    probs = tuple(float(p) for p in probs)
    if len(probs) != n:
        raise GrammarError(f"{where}: {len(probs)} probabilities for {n} alternatives")
    if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, rel_tol=1e-6):
        raise GrammarError(f"{where}: probabilities must be >= 0 and sum to 1, got {probs}")
    return probs


def _labelled(items: Sequence[Any] | Mapping[str, Any], where: str) -> tuple[tuple[str, Expr], ...]:
    """Turn a mapping or a sequence of expressions into (label, expr) pairs."""
    if isinstance(items, Mapping):
        pairs = tuple(items.items())
    else:
        pairs = tuple((_default_label(e, i), e) for i, e in enumerate(items))
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise GrammarError(f"{where}: labels must be unique, got {labels}")
    for label, expr in pairs:
        if not isinstance(label, str) or not label or "." in label:
            raise GrammarError(f"{where}: labels must be non-empty strings without dots, got {label!r}")
        if not isinstance(expr, Expr):
            raise GrammarError(f"{where}: {label!r} is {type(expr).__name__}, not a grammar expression")
    return pairs


def _default_label(expr: Any, index: int) -> str:
    if isinstance(expr, Op):
        return expr.name
    if isinstance(expr, Ref):
        return expr.rule
    return str(index)


class Expr:
    """Base class of grammar expressions (immutable)."""

    __slots__ = ()


@dataclass(frozen=True)
class Value(Expr):
    """A categorical value decision (an op hyper-parameter, a resolution...).

    Args:
        choices: allowed values (JSON scalars or tuples of them).
        probs: optional sampling probabilities.
    """

    choices: tuple
    probs: tuple[float, ...] | None = None

    def __init__(self, choices: Sequence[Any], probs: Sequence[float] | None = None) -> None:
        choices = tuple(tuple(c) if isinstance(c, list) else c for c in choices)
        if not choices:
            raise GrammarError("Value: empty choice list")
        if len(set(choices)) != len(choices):
            raise GrammarError(f"Value: duplicate choices in {choices}")
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "probs", _probs(probs, len(choices), "Value"))


@dataclass(frozen=True)
class Op(Expr):
    """A terminal: a registered op with parameters (constants or :class:`Value`)."""

    name: str
    params: tuple[tuple[str, Any], ...]

    def __init__(self, name: str, **params: Any) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", tuple(params.items()))

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class Seq(Expr):
    """Sequential composition. Positional items are labelled by op/rule name or index;
    keyword items by their keyword (``Seq(stem=..., stage1=...)``)."""

    items: tuple[tuple[str, Expr], ...]

    def __init__(self, *items: Expr, **named: Expr) -> None:
        if items and named:
            raise GrammarError("Seq: give items either all positionally or all by keyword")
        pairs = _labelled(named if named else list(items), "Seq")
        if not pairs:
            raise GrammarError("Seq: empty sequence")
        object.__setattr__(self, "items", pairs)


@dataclass(frozen=True)
class Choice(Expr):
    """A categorical choice among productions; the decision value is the label.

    Alternatives may be a mapping ``{label: expr}`` or a sequence (ops and rule
    references are labelled by their names). Decisions inside the chosen
    alternative live under ``<path>.<label>``.
    """

    alternatives: tuple[tuple[str, Expr], ...]
    probs: tuple[float, ...] | None = None

    def __init__(self, alternatives: Sequence[Expr] | Mapping[str, Expr],
                 probs: Sequence[float] | None = None) -> None:
        pairs = _labelled(alternatives, "Choice")
        if not pairs:
            raise GrammarError("Choice: empty choice (no alternatives)")
        object.__setattr__(self, "alternatives", pairs)
        object.__setattr__(self, "probs", _probs(probs, len(pairs), "Choice"))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.alternatives)


@dataclass(frozen=True)
class Repeat(Expr):
    """``depth`` copies of ``body`` in sequence (a depth decision at ``<path>.depth``).

    Args:
        body: the repeated expression; copies are labelled ``<label>1``, ``<label>2``...
        depth: allowed counts (a sequence, a :class:`Value`, or a fixed int).
        first: optional different expression for the first copy (e.g. a strided block).
        label: prefix of the copies' labels.
    """

    body: Expr
    depth: Value
    first: Expr | None = None
    label: str = "block"

    def __init__(self, body: Expr, depth: Sequence[int] | Value | int, first: Expr | None = None,
                 label: str = "block") -> None:
        if isinstance(depth, int):
            depth = Value([depth])
        elif not isinstance(depth, Value):
            depth = Value(list(depth))
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in depth.choices):
            raise GrammarError(f"Repeat: depths must be non-negative ints, got {depth.choices}")
        for name, e in (("body", body), ("first", first)):
            if e is not None and not isinstance(e, Expr):
                raise GrammarError(f"Repeat: {name} is {type(e).__name__}, not a grammar expression")
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "first", first)
        object.__setattr__(self, "label", label)


@dataclass(frozen=True)
class Ref(Expr):
    """A reference to a grammar rule (a nonterminal).

    With ``shared=True`` the rule is derived once, at the path named after the rule,
    and every shared reference reuses that derivation (cells repeated through a
    network with one genotype, as in NAS-Bench-201 and DARTS).
    """

    rule: str
    shared: bool = False


@dataclass(frozen=True)
class Residual(Expr):
    """``x + body(x)``; the body must keep the shape."""

    body: Expr


@dataclass(frozen=True)
class Parallel(Expr):
    """Branches applied to the same input and merged.

    Args:
        branches: labelled expressions (mapping or sequence).
        merge: ``"add"`` (shapes must match) or ``"concat"`` (along channels).
        split: route a channel split: branch i gets the i-th equal slice of the channels.
    """

    branches: tuple[tuple[str, Expr], ...]
    merge: str = "add"
    split: bool = False

    def __init__(self, branches: Sequence[Expr] | Mapping[str, Expr], merge: str = "add",
                 split: bool = False) -> None:
        if merge not in ("add", "concat"):
            raise GrammarError(f"Parallel: merge must be 'add' or 'concat', got {merge!r}")
        pairs = _labelled(branches, "Parallel")
        if len(pairs) < 2:
            raise GrammarError("Parallel: needs at least two branches")
        object.__setattr__(self, "branches", pairs)
        object.__setattr__(self, "merge", merge)
        object.__setattr__(self, "split", split)


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

    def targets(self) -> range:
        """State indices of the intermediate nodes."""
        return range(self.inputs, self.inputs + self.nodes)


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


def children(expr: Expr) -> list[Expr]:
    """Direct sub-expressions of an expression."""
    if isinstance(expr, Seq):
        return [e for _, e in expr.items]
    if isinstance(expr, Choice):
        return [e for _, e in expr.alternatives]
    if isinstance(expr, Parallel):
        return [e for _, e in expr.branches]
    if isinstance(expr, CellStack):
        return [e for _, e in expr.cells]
    if isinstance(expr, Repeat):
        return [expr.body] + ([expr.first] if expr.first is not None else [])
    if isinstance(expr, Residual):
        return [expr.body]
    if isinstance(expr, Cell):
        return [expr.op]
    return []


class Grammar:
    """A probabilistic context-free grammar over registered ops.

    Construction checks that the grammar derives finite networks: the start rule
    exists, every reference names a rule, every op is registered with known
    parameters, and every rule reachable from the start has a finite derivation
    (a cycle with no exit is an error naming its rules).

    Args:
        rules: ``{rule name: expression}``.
        start: the start rule (default: the first rule).
        max_depth: recursion bound: at most this many nested rule references. At the
            bound, only productions that can still finish are chosen.
    """

    def __init__(self, rules: Mapping[str, Expr], start: str | None = None, max_depth: int = 8) -> None:
        if not rules:
            raise GrammarError("grammar has no rules")
        self.rules: dict[str, Expr] = dict(rules)
        self.start = start if start is not None else next(iter(self.rules))
        self.max_depth = int(max_depth)
        if self.start not in self.rules:
            raise GrammarError(
                f"start rule {self.start!r} is not defined; rules are {sorted(self.rules)}"
            )
        for name, expr in self.rules.items():
            if not isinstance(expr, Expr):
                raise GrammarError(f"rule {name!r} is {type(expr).__name__}, not a grammar expression")
            self._check(expr, name)
        self._min_depth = self._solve_min_depth()
        reachable = self.reachable()
        stuck = sorted(r for r in reachable if math.isinf(self._min_depth[r]))
        if stuck:
            raise GrammarError(
                f"rules {stuck} cannot derive a finite network: every production recurses "
                "(a cycle with no exit); add a terminal alternative"
            )
        if self.min_depth(self.rules[self.start]) > self.max_depth:
            raise GrammarError(
                f"start rule {self.start!r} needs {self.min_depth(self.rules[self.start])} nested "
                f"rule references but max_depth is {self.max_depth}"
            )

    # checks ------------------------------------------------------------------
    def _check(self, expr: Expr, where: str) -> None:
        if isinstance(expr, Ref):
            if expr.rule not in self.rules:
                raise GrammarError(
                    f"{where}: reference to undefined rule {expr.rule!r}; rules are {sorted(self.rules)}"
                )
        elif isinstance(expr, Op):
            try:
                op = get_op(expr.name)
            except SearchSpaceError as exc:
                raise GrammarError(f"{where}: {exc}") from None
            unknown = sorted(set(expr.param_dict) - set(op.params))
            if unknown:
                raise GrammarError(
                    f"{where}: op {expr.name!r} has no parameter(s) {unknown}; "
                    f"its parameters are {sorted(op.params) or 'none'}"
                )
            missing = sorted(n for n, p in op.params.items() if p.required and n not in expr.param_dict)
            if missing:
                raise GrammarError(f"{where}: op {expr.name!r} needs parameter(s) {missing}")
            for pname, value in expr.params:
                values = value.choices if isinstance(value, Value) else (value,)
                for v in values:
                    if v is NUM_CLASSES:
                        continue
                    try:
                        op.resolve({**_defaults_for(op, pname), pname: v}, where)
                    except SearchSpaceError as exc:
                        raise GrammarError(str(exc)) from None
        elif isinstance(expr, Cell) and expr.reduction and isinstance(expr.op, Op):
            if "stride" not in get_op(expr.op.name).params:
                raise GrammarError(f"{where}: reduction cell op {expr.op.name!r} has no 'stride'")
        for child in children(expr):
            self._check(child, where)

    def _solve_min_depth(self) -> dict[str, float]:
        """Fewest nested rule references needed to finish each rule (fixpoint)."""
        depth = {name: math.inf for name in self.rules}
        changed = True
        while changed:
            changed = False
            for name, expr in self.rules.items():
                d = self._expr_min_depth(expr, depth)
                if d < depth[name]:
                    depth[name], changed = d, True
        return depth

    def _expr_min_depth(self, expr: Expr, depth: Mapping[str, float]) -> float:
        if isinstance(expr, Ref):
            return 1 + depth[expr.rule]
        if isinstance(expr, Choice):
            return min(self._expr_min_depth(e, depth) for _, e in expr.alternatives)
        if isinstance(expr, Repeat):
            parts = [self._expr_min_depth(expr.body, depth)] if max(expr.depth.choices) > 0 else []
            if min(expr.depth.choices) == 0:
                return 0
            if expr.first is not None:
                parts.append(self._expr_min_depth(expr.first, depth))
            return max(parts)
        subs = children(expr)
        return max((self._expr_min_depth(e, depth) for e in subs), default=0)

    def min_depth(self, expr: Expr) -> float:
        """Fewest nested rule references an expression needs to finish."""
        return self._expr_min_depth(expr, self._min_depth)

    # structure ---------------------------------------------------------------
    def references(self, expr: Expr) -> set[str]:
        """Rules referenced anywhere inside ``expr`` (not following references)."""
        found = {expr.rule} if isinstance(expr, Ref) else set()
        for child in children(expr):
            found |= self.references(child)
        return found

    def reachable(self) -> set[str]:
        """Rules reachable from the start rule."""
        seen, todo = set(), [self.start]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.references(self.rules[name]))
        return seen

    @property
    def is_recursive(self) -> bool:
        """True when some reachable rule can reference itself (unbounded but for max_depth)."""
        for name in self.reachable():
            seen, todo = set(), list(self.references(self.rules[name]))
            while todo:
                ref = todo.pop()
                if ref == name:
                    return True
                if ref not in seen:
                    seen.add(ref)
                    todo.extend(self.references(self.rules[ref]))
        return False

    def fingerprint(self) -> str:
        """Stable hash of the rules, start and depth bound (a version of the space)."""
        text = repr((sorted(self.rules.items(), key=lambda kv: kv[0]), self.start, self.max_depth))
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Grammar(rules={sorted(self.rules)}, start={self.start!r}, max_depth={self.max_depth})"


def _defaults_for(op: Any, given: str) -> dict[str, Any]:
    """Placeholder values for an op's other required params, to type-check one param alone."""
    out = {}
    for name, p in op.params.items():
        if name != given and p.required:
            out[name] = {int: 1, float: 1.0, str: "", bool: False}[p.type]
    return out
