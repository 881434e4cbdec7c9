"""Derivation: walk a grammar, asking a decider at every decision point.

One walk serves sampling, validation, mutation, crossover and Optuna's
define-by-run: they differ only in the decider. The walk returns a derivation
tree of :class:`DNode` s (choices, repeats and references resolved away).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_spaces.errors import ArchitectureError
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
)

# --------------------------------------------------------------------------- tree


@dataclass
class DNode:
    path: str


@dataclass
class DOp(DNode):
    op: str
    params: dict[str, Any]


@dataclass
class DSeq(DNode):
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
    inputs: int
    output: str
    reduction: bool
    # per intermediate node: [(source state index, op node), ...]
    nodes: list[list[tuple[int, DNode]]] = field(default_factory=list)


@dataclass
class DCellStack(DNode):
    cells: list[DNode]
    channels: tuple[int, ...]


# --------------------------------------------------------------------------- deciders


class Decider:
    """Answers decision points. ``kind`` is 'value', 'choice', 'depth' or 'inputs'."""

    def decide(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str) -> Any:
        raise NotImplementedError


class RandomDecider(Decider):
    """Samples each decision by its probabilities (uniform when none are given).

    Uniform numbers are drawn from the generator in blocks: one numpy call per
    block instead of one ``Generator.choice`` per decision, which made sampling
    several times slower. The stream stays a pure function of the generator state.
    """

    _BLOCK = 64

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._uniform = np.empty(0)
        self._next = 0

    def _draw(self) -> float:
        if self._next >= len(self._uniform):
            self._uniform = self.rng.random(self._BLOCK)
            self._next = 0
        self._next += 1
        return float(self._uniform[self._next - 1])

    def decide(self, path, choices, probs, kind):
        u = self._draw()
        if probs is None:
            return choices[min(int(u * len(choices)), len(choices) - 1)]
        return choices[min(int(np.searchsorted(_cumulative(probs), u, side="right")), len(choices) - 1)]


@functools.lru_cache(maxsize=1024)
def _cumulative(probs: tuple[float, ...]) -> np.ndarray:
    return np.cumsum(probs)


class ArchDecider(Decider):
    """Reads decisions from an architecture; errors name the path and the allowed values."""

    def __init__(self, decisions: Mapping[str, Any]) -> None:
        self.decisions = decisions

    def decide(self, path, choices, probs, kind):
        if path not in self.decisions:
            raise ArchitectureError(
                f"missing decision {path!r}; allowed values: {_fmt(choices)}", path
            )
        value = self.decisions[path]
        if value not in choices or _bool_int_mismatch(value, choices):
            raise ArchitectureError(
                f"decision {path!r} = {value!r} is not allowed; allowed values: {_fmt(choices)}", path
            )
        return choices[choices.index(value)]


class FallbackDecider(Decider):
    """Takes a proposed value when it is allowed, else samples one (mutation, crossover)."""

    def __init__(self, proposal: Mapping[str, Any], rng: np.random.Generator) -> None:
        self.proposal, self.random = proposal, RandomDecider(rng)

    def decide(self, path, choices, probs, kind):
        value = self.proposal.get(path, _MISSING)
        if value is not _MISSING and value in choices and not _bool_int_mismatch(value, choices):
            return choices[choices.index(value)]
        return self.random.decide(path, choices, probs, kind)


_MISSING = object()


def _bool_int_mismatch(value: Any, choices: tuple) -> bool:
    """True == 1 in Python; keep bools and ints apart."""
    match = choices[choices.index(value)]
    return isinstance(match, bool) != isinstance(value, bool)


def _fmt(choices: tuple) -> str:
    return ", ".join(repr(c) for c in choices)


class Recorder(Decider):
    """Wraps a decider and records every decision with its choices, in walk order."""

    def __init__(self, inner: Decider) -> None:
        self.inner = inner
        self.decisions: dict[str, Any] = {}
        self.choices: dict[str, tuple] = {}
        self.kinds: dict[str, str] = {}

    def decide(self, path, choices, probs, kind):
        if path in self.decisions:  # a shared rule asks again: one decision
            return self.decisions[path]
        value = self.inner.decide(path, choices, probs, kind)
        self.decisions[path] = value
        self.choices[path] = choices
        self.kinds[path] = kind
        return value


# --------------------------------------------------------------------------- walk


def join(prefix: str, label: str) -> str:
    return f"{prefix}.{label}" if prefix else label


class _Walk:
    def __init__(self, grammar: Grammar, decider: Recorder) -> None:
        self.grammar = grammar
        self.decider = decider
        self.shared: dict[str, DNode] = {}

    def run(self) -> DNode:
        return self.expr(self.grammar.rules[self.grammar.start], "", self.grammar.max_depth)

    def decide(self, path: str, value: Value, kind: str = "value") -> Any:
        return self.decider.decide(path, value.choices, value.probs, kind)

    def expr(self, e: Expr, path: str, budget: int) -> DNode:
        if isinstance(e, Op):
            params = {}
            for name, v in e.params:
                params[name] = self.decide(join(path, name), v) if isinstance(v, Value) else v
            return DOp(path, e.name, params)
        if isinstance(e, Seq):
            return DSeq(path, [self.expr(x, join(path, label), budget) for label, x in e.items])
        if isinstance(e, Choice):
            here = path or self.grammar.start
            options = [(label, x, p) for (label, x), p in
                       zip(e.alternatives, e.probs or [None] * len(e.alternatives))
                       if self.grammar.min_depth(x) <= budget]
            labels = tuple(label for label, _, _ in options)
            probs = None
            if e.probs is not None:
                total = sum(p for _, _, p in options)
                probs = tuple(p / total for _, _, p in options) if total > 0 else None
            label = self.decider.decide(here, labels, probs, "choice")
            chosen = dict((lbl, x) for lbl, x, _ in options)[label]
            return self.expr(chosen, join(here, label), budget)
        if isinstance(e, Repeat):
            depth = self.decide(join(path, "depth"), e.depth, "depth")
            blocks = []
            for i in range(depth):
                body = e.first if (i == 0 and e.first is not None) else e.body
                blocks.append(self.expr(body, join(path, f"{e.label}{i + 1}"), budget))
            return DSeq(path, blocks)
        if isinstance(e, Ref):
            if e.shared:
                if e.rule not in self.shared:
                    self.shared[e.rule] = self.expr(self.grammar.rules[e.rule], e.rule, budget - 1)
                return self.shared[e.rule]
            return self.expr(self.grammar.rules[e.rule], path, budget - 1)
        if isinstance(e, Residual):
            return DResidual(path, self.expr(e.body, path, budget))
        if isinstance(e, Parallel):
            return DParallel(path, [self.expr(x, join(path, label), budget) for label, x in e.branches],
                             e.merge, e.split)
        if isinstance(e, Cell):
            return self.cell(e, path, budget)
        if isinstance(e, CellStack):
            cells = [self.expr(x, join(path, label), budget) for label, x in e.cells]
            return DCellStack(path, cells, e.channels)
        raise TypeError(f"unknown grammar expression {type(e).__name__}")

    def cell(self, e: Cell, path: str, budget: int) -> DCell:
        node = DCell(path, e.inputs, e.output, e.reduction)
        for j in e.targets():
            if e.in_degree is None:
                edges = [(i, self.expr(e.op, join(path, f"edge_{j}_{i}"), budget)) for i in range(j)]
            else:
                combos = Value(list(itertools.combinations(range(j), e.in_degree)))
                sources = self.decide(join(path, f"node{j}.inputs"), combos, "inputs")
                edges = [(i, self.expr(e.op, join(path, f"node{j}.op{m}"), budget))
                         for m, i in enumerate(sources)]
            node.nodes.append(edges)
        return node


def derive(grammar: Grammar, decider: Decider) -> tuple[DNode, Recorder]:
    """Derive one architecture; returns the tree and the recorded decisions."""
    recorder = decider if isinstance(decider, Recorder) else Recorder(decider)
    return _Walk(grammar, recorder).run(), recorder
