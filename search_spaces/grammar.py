"""The grammar: expressions that derive architectures, and the `Grammar` of rules.

A grammar is data: a table ``{rule name: expression}``. Expressions compose
registered ops (:class:`Op`) with sequences, choices among productions, repeats
(depth decisions), references to rules (recursion), residuals, parallel branches
and cells (DAGs of edges). Decision points are :class:`Value` (a categorical
value), :class:`Choice` (a production), the depth of a :class:`Repeat`, and the
edges of a :class:`Cell`. Each decision gets a stable dotted path from the labels
of the expressions above it, e.g. ``stage2.block1.kernel``.

The expression classes (and what each kind means to every walker) are defined in
``search_spaces._expr`` and exported here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from search_spaces._cell import Cell, CellStack
from search_spaces._expr import Choice, Expr, Op, Parallel, Ref, Repeat, Residual, Seq, Value
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
        # id(expr) -> (expr, depth); the expr is kept so its id cannot be reused
        self._expr_depths: dict[int, tuple[Expr, float]] = {}
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
            _check_op(expr, where)
        elif isinstance(expr, Cell) and expr.reduction and isinstance(expr.op, Op):
            if "stride" not in get_op(expr.op.name).params:
                raise GrammarError(f"{where}: reduction cell op {expr.op.name!r} has no 'stride'")
        for child in expr.children():
            self._check(child, where)

    def _solve_min_depth(self) -> dict[str, float]:
        """Fewest nested rule references needed to finish each rule (fixpoint)."""
        depth = {name: math.inf for name in self.rules}
        changed = True
        while changed:
            changed = False
            for name, expr in self.rules.items():
                d = _expr_min_depth(expr, depth)
                if d < depth[name]:
                    depth[name], changed = d, True
        return depth

    def min_depth(self, expr: Expr) -> float:
        """Fewest nested rule references an expression needs to finish."""
        known = self._expr_depths.get(id(expr))
        if known is not None and known[0] is expr:
            return known[1]
        depth = _expr_min_depth(expr, self._min_depth)
        self._expr_depths[id(expr)] = (expr, depth)
        return depth

    # structure ---------------------------------------------------------------
    def references(self, expr: Expr) -> set[str]:
        """Rules referenced anywhere inside ``expr`` (not following references)."""
        found = {expr.rule} if isinstance(expr, Ref) else set()
        for child in expr.children():
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

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_expr_depths"] = {}  # keyed by ids, which another process does not share
        return state

    def __repr__(self) -> str:
        return f"Grammar(rules={sorted(self.rules)}, start={self.start!r}, max_depth={self.max_depth})"


def _expr_min_depth(expr: Expr, depth: Mapping[str, float]) -> float:
    """Fewest nested rule references ``expr`` needs, given each rule's (``depth``)."""
    if isinstance(expr, Ref):
        return 1 + depth[expr.rule]
    if isinstance(expr, Choice):
        return min(_expr_min_depth(e, depth) for _, e in expr.alternatives)
    if isinstance(expr, Repeat):
        if min(expr.depth.choices) == 0:
            return 0
        return max(_expr_min_depth(e, depth) for e in expr.children())
    return max((_expr_min_depth(e, depth) for e in expr.children()), default=0)


def _check_op(expr: Op, where: str) -> None:
    """The op is registered, its parameters exist and every given value type-checks."""
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
        for v in value.choices if isinstance(value, Value) else (value,):
            if v is NUM_CLASSES:
                continue
            try:
                op.resolve({**_defaults_for(op, pname), pname: v}, where)
            except SearchSpaceError as exc:
                raise GrammarError(str(exc)) from None


def _defaults_for(op: Any, given: str) -> dict[str, Any]:
    """Placeholder values for an op's other required params, to type-check one param alone."""
    out = {}
    for name, p in op.params.items():
        if name != given and p.required:
            out[name] = {int: 1, float: 1.0, str: "", bool: False}[p.type]
    return out
