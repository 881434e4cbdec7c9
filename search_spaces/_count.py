"""Counting architectures and enumerating decision slots (for size() and encode())."""

from __future__ import annotations

import itertools
import math
from typing import Any

from search_spaces._derive import join
from search_spaces.grammar import (
    Cell,
    CellStack,
    Choice,
    Expr,
    Grammar,
    Op,
    Parallel,
    Ref,
    Repeat,
    Residual,
    Seq,
    Value,
    children,
)


def count_architectures(grammar: Grammar) -> int:
    """Exact number of distinct decision sets the grammar derives (within max_depth).

    Shared rules are counted once: exact when every derivation reaches them (as in
    cell spaces, where the whole network uses one genotype).
    """
    memo: dict[tuple[int, int], int] = {}

    def count(e: Expr, budget: int) -> int:
        key = (id(e), budget)
        if key in memo:
            return memo[key]
        if isinstance(e, Op):
            n = math.prod(len(v.choices) for _, v in e.params if isinstance(v, Value))
        elif isinstance(e, Choice):
            n = sum(count(x, budget) for _, x in e.alternatives if grammar.min_depth(x) <= budget)
        elif isinstance(e, Repeat):
            n = 0
            for d in e.depth.choices:
                if d == 0:
                    n += 1
                else:
                    head = e.first if e.first is not None else e.body
                    n += count(head, budget) * count(e.body, budget) ** (d - 1)
        elif isinstance(e, Ref):
            n = 1 if e.shared else count(grammar.rules[e.rule], budget - 1)
        elif isinstance(e, Cell):
            per_edge = count(e.op, budget)
            n = 1
            for j in e.targets():
                if e.in_degree is None:
                    n *= per_edge**j
                else:
                    n *= math.comb(j, e.in_degree) * per_edge**e.in_degree
        else:  # Seq, Residual, Parallel, CellStack: independent parts
            n = math.prod(count(x, budget) for x in children(e))
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
        for c in children(e):
            walk(c)

    for name in grammar.reachable():
        walk(grammar.rules[name])
    return found


def decision_slots(grammar: Grammar) -> list[tuple[str, tuple]]:
    """Every decision path any derivation can reach, with its choices (non-recursive grammars)."""
    slots: list[tuple[str, tuple]] = []
    seen_shared: set[str] = set()

    def walk(e: Expr, path: str) -> None:
        if isinstance(e, Op):
            slots.extend((join(path, n), v.choices) for n, v in e.params if isinstance(v, Value))
        elif isinstance(e, Seq):
            for label, x in e.items:
                walk(x, join(path, label))
        elif isinstance(e, Choice):
            here = path or grammar.start
            slots.append((here, e.labels))
            for label, x in e.alternatives:
                walk(x, join(here, label))
        elif isinstance(e, Repeat):
            slots.append((join(path, "depth"), e.depth.choices))
            for i in range(max(e.depth.choices)):
                body = e.first if (i == 0 and e.first is not None) else e.body
                walk(body, join(path, f"{e.label}{i + 1}"))
        elif isinstance(e, Ref):
            if e.shared:
                if e.rule not in seen_shared:
                    seen_shared.add(e.rule)
                    walk(grammar.rules[e.rule], e.rule)
            else:
                walk(grammar.rules[e.rule], path)
        elif isinstance(e, Residual):
            walk(e.body, path)
        elif isinstance(e, Parallel):
            for label, x in e.branches:
                walk(x, join(path, label))
        elif isinstance(e, Cell):
            for j in e.targets():
                if e.in_degree is None:
                    for i in range(j):
                        walk(e.op, join(path, f"edge_{j}_{i}"))
                else:
                    combos = tuple(itertools.combinations(range(j), e.in_degree))
                    slots.append((join(path, f"node{j}.inputs"), combos))
                    for m in range(e.in_degree):
                        walk(e.op, join(path, f"node{j}.op{m}"))
        elif isinstance(e, CellStack):
            for label, x in e.cells:
                walk(x, join(path, label))

    walk(grammar.rules[grammar.start], "")
    return slots


def token_vocabulary(grammar: Grammar) -> list[tuple[str, Any]]:
    """(kind, value) tokens a recursive grammar's decisions can take, for histogram features."""
    vocab: dict[tuple[str, Any], None] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, Op):
            for n, v in e.params:
                if isinstance(v, Value):
                    vocab.update({(n, c): None for c in v.choices})
        elif isinstance(e, Choice):
            vocab.update({("choice", label): None for label in e.labels})
        elif isinstance(e, Repeat):
            vocab.update({("depth", d): None for d in e.depth.choices})
        for c in children(e):
            walk(c)

    for name in sorted(grammar.reachable()):
        walk(grammar.rules[name])
    return list(vocab)
