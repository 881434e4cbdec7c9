"""Counting the architectures of a grammar (``SearchSpace.size()``)."""

from __future__ import annotations

import math

from search_spaces._cell import Cell
from search_spaces._expr import Choice, Expr, Op, Ref, Repeat
from search_spaces.grammar import Grammar


def count_architectures(grammar: Grammar) -> int:
    """Exact number of distinct decision sets the grammar derives (within max_depth).

    Every kind is counted with the derivation's own semantics (a choice over the
    alternatives its recursion budget allows, a repeat's blocks, a cell's nodes).
    Shared rules are counted once: exact when every derivation reaches them (as in
    cell spaces, where the whole network uses one genotype).
    """
    memo: dict[tuple[int, float], int] = {}

    def count(e: Expr, budget: float) -> int:
        key = (id(e), budget)
        if key in memo:
            return memo[key]
        if isinstance(e, Op):
            n = math.prod(len(v.choices) for _, v in e.values)
        elif isinstance(e, Choice):
            n = sum(count(o.expr, budget) for o in e.options(grammar, budget))
        elif isinstance(e, Repeat):
            n = sum(math.prod(count(x, budget) for _, x in e.blocks(d)) for d in e.depth.choices)
        elif isinstance(e, Ref):
            rule, _, left = e.resolve(grammar, "", budget)
            n = 1 if e.shared else count(rule, left)
        elif isinstance(e, Cell):
            per_edge = count(e.op, budget)
            n = math.prod(len(node.combos) * per_edge ** len(node.edges) for node in e.layout)
        else:  # Seq, Residual, Parallel, CellStack: independent parts
            n = math.prod(count(x, budget) for x in e.children())
        memo[key] = n
        return n

    total = count(grammar.rules[grammar.start], grammar.max_depth)
    for rule in sorted(_shared_rules(grammar)):
        total *= count(grammar.rules[rule], grammar.max_depth - 1)
    return total


def _shared_rules(grammar: Grammar) -> set[str]:
    found: set[str] = set()

    def walk(e: Expr) -> None:
        if isinstance(e, Ref) and e.shared:
            found.add(e.rule)
        for c in e.children():
            walk(c)

    for name in grammar.reachable():
        walk(grammar.rules[name])
    return found
