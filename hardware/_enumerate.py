"""Every unique `LayerSpec` a search space can produce, without enumerating archs.

For a non-recursive grammar we walk the grammar once carrying the *set* of input
shapes that can reach each position: an op position yields the cross product of
its value decisions and those shapes; a repeat threads the set through its
blocks (memoised, so a depth-4 stage costs four block visits, not 3^4); a
choice unions its alternatives. The result is a superset of the layers of every
architecture (exact for the built-in spaces, checked in the tests against
brute force), a few hundred layers for ``mobilenetv3_ofa`` instead of 10^19
architectures. Recursive grammars fall back to the union over sampled
architectures, which may miss rare layers (the table says so in its metadata).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hardware.errors import HardwareError
from search_spaces import (
    Cell,
    CellStack,
    Choice,
    Expr,
    LayerSpec,
    Op,
    Parallel,
    Ref,
    Repeat,
    Residual,
    SearchSpace,
    Seq,
    Value,
    as_generator,
    resolve_spec,
)

__all__ = ["Enumeration", "enumerate_layers"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Enumeration:
    """The layers of a space and how they were found.

    Attributes:
        specs: unique layers, in first-seen order.
        method: ``"grammar"`` (exhaustive walk) or ``"sampled"`` (union over archs).
        n_samples: architectures sampled (``"sampled"`` only).
    """

    specs: tuple[LayerSpec, ...]
    method: str
    n_samples: int = 0


def enumerate_layers(space: SearchSpace, input_shape: Shape, num_classes: int,
                     method: str = "auto", n_samples: int = 2000,
                     rng: np.random.Generator | int | None = None) -> Enumeration:
    """Unique layers of ``space`` at ``input_shape``.

    Args:
        method: ``"grammar"``, ``"sampled"`` or ``"auto"`` (grammar walk unless the
            grammar is recursive).
        n_samples: architectures to sample for ``"sampled"``.
        rng: generator or seed for sampling.
    """
    if method not in ("auto", "grammar", "sampled"):
        raise HardwareError(f"enumeration method must be 'auto', 'grammar' or 'sampled', got {method!r}")
    recursive = space.grammar.is_recursive
    if method == "grammar" and recursive:
        raise HardwareError(
            f"space {space.name!r} has a recursive grammar: its layers cannot be walked "
            "exhaustively; use method='sampled'"
        )
    if method == "sampled" or (method == "auto" and recursive):
        gen = as_generator(rng)
        seen: dict[LayerSpec, None] = {}
        for _ in range(n_samples):
            for spec in space.layers(space.sample(gen), input_shape, num_classes):
                seen.setdefault(spec, None)
        return Enumeration(tuple(seen), "sampled", n_samples)
    walker = _SetWalk(space, num_classes)
    walker.expr(space.grammar.rules[space.grammar.start], "", frozenset([tuple(input_shape)]),
                space.grammar.max_depth, False)
    return Enumeration(tuple(walker.specs), "grammar")


class _SetWalk:
    """Abstract interpretation of a grammar over sets of input shapes."""

    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        self.grammar = space.grammar
        self.num_classes = num_classes
        self.specs: dict[LayerSpec, None] = {}
        self.memo: dict[tuple, frozenset] = {}

    def expr(self, e: Expr, path: str, shapes: frozenset, budget: int, stride2: bool) -> frozenset:
        key = (id(e), shapes, budget, stride2)
        if key not in self.memo:
            self.memo[key] = self._expr(e, path, shapes, budget, stride2)
        return self.memo[key]

    def _expr(self, e: Expr, path: str, shapes: frozenset, budget: int, stride2: bool) -> frozenset:
        if isinstance(e, Op):
            return self.op(e, path, shapes, stride2)
        if stride2 and not isinstance(e, (Choice, Ref)):
            return frozenset()  # reduction edges must be ops: such archs are invalid
        if isinstance(e, Seq):
            for _, item in e.items:
                shapes = self.expr(item, path, shapes, budget, False)
            return shapes
        if isinstance(e, Choice):
            out: set = set()
            for _, alt in e.alternatives:
                if self.grammar.min_depth(alt) <= budget:
                    out |= self.expr(alt, path, shapes, budget, stride2)
            return frozenset(out)
        if isinstance(e, Repeat):
            out, current = set(), shapes
            deepest = max(e.depth.choices)
            for k in range(deepest + 1):
                if k in e.depth.choices:
                    out |= current
                if k == deepest:
                    break
                body = e.first if (k == 0 and e.first is not None) else e.body
                current = self.expr(body, path, current, budget, False)
            return frozenset(out)
        if isinstance(e, Ref):
            if budget <= 0:
                return frozenset()
            return self.expr(self.grammar.rules[e.rule], path, shapes, budget - 1, stride2)
        if isinstance(e, Residual):
            return frozenset(s for s in shapes if s in self.expr(e.body, path, frozenset([s]), budget, False))
        if isinstance(e, Parallel):
            return self.parallel(e, path, shapes, budget)
        if isinstance(e, Cell):
            return frozenset(o for s in shapes for o in self.cell(e, [s], s[0], budget))
        if isinstance(e, CellStack):
            return self.stack(e, shapes, budget)
        raise HardwareError(f"cannot enumerate layers of grammar expression {type(e).__name__}")

    def op(self, e: Op, path: str, shapes: Iterable[Shape], stride2: bool) -> frozenset:
        names = [n for n, v in e.params if isinstance(v, Value)]
        fixed = {n: v for n, v in e.params if not isinstance(v, Value)}
        grids = [v.choices for _, v in e.params if isinstance(v, Value)]
        out = set()
        for combo in itertools.product(*grids):
            params = {**fixed, **dict(zip(names, combo, strict=True))}
            if stride2:
                params["stride"] = 2
            for shape in shapes:
                spec = resolve_spec(e.name, params, shape, self.num_classes, path)
                if spec is not None:
                    self.specs.setdefault(spec, None)
                    out.add(spec.out_shape)
        return frozenset(out)

    def parallel(self, e: Parallel, path: str, shapes: frozenset, budget: int) -> frozenset:
        out = set()
        n = len(e.branches)
        for s in shapes:
            if e.split and s[0] % n:
                continue
            branch_in = frozenset([(s[0] // n, *s[1:]) if e.split else s])
            outs = [self.expr(b, path, branch_in, budget, False) for _, b in e.branches]
            if e.merge == "add":
                out |= frozenset.intersection(*outs)
            else:
                for combo in itertools.product(*outs):
                    if len({c[1:] for c in combo}) == 1:
                        out.add((sum(c[0] for c in combo), *combo[0][1:]))
        return frozenset(out)

    def cell(self, e: Cell, in_shapes: list[Shape], channels: int, budget: int) -> set:
        target_hw = in_shapes[-1][1:]
        states: list[Shape] = []
        for s in in_shapes:
            if len(in_shapes) == 1:
                states.append(s)
                continue
            if s[1:] != target_hw:
                spec = resolve_spec("skip", {"stride": 2, "out": channels}, s, self.num_classes)
            else:
                spec = resolve_spec("relu_conv_bn", {"out": channels, "kernel": 1}, s, self.num_classes)
            if spec is None:
                return set()
            self.specs.setdefault(spec, None)
            states.append(spec.out_shape)
        stride = 2 if e.reduction else 1
        out_hw = tuple((d - 1) // stride + 1 for d in target_hw)
        node = (channels, *out_hw)
        for j in e.targets():
            for i in range(j):  # with in_degree, any predecessor may be picked
                reduce_edge = e.reduction and i < len(in_shapes)
                self.expr(e.op, "", frozenset([states[i]]), budget, reduce_edge)
            states.append(node)
        if e.output == "last":
            return {node}
        return {(channels * e.nodes, *out_hw)}

    def stack(self, e: CellStack, shapes: frozenset, budget: int) -> frozenset:
        pairs = {(s, s) for s in shapes}
        for (_, cell), channels in zip(e.cells, e.channels, strict=True):
            cell_budget = budget
            while isinstance(cell, Ref):
                cell, cell_budget = self.grammar.rules[cell.rule], cell_budget - 1
            if not isinstance(cell, Cell) or cell.inputs != 2:
                raise HardwareError("a CellStack holds cells with 2 inputs")
            pairs = {(s1, o) for s0, s1 in pairs for o in self.cell(cell, [s0, s1], channels, cell_budget)}
        return frozenset(s1 for _, s1 in pairs)
