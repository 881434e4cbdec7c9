"""Every unique `LayerSpec` a search space can produce, without enumerating archs.

For a non-recursive grammar we walk the grammar once carrying the *set* of input
shapes that can reach each position: an op position yields the cross product of
its value decisions and those shapes; a repeat threads the set through its
blocks (memoised, so a depth-4 stage costs four block visits, not 3^4); a
choice unions its allowed alternatives. The result is a superset of the layers
of every architecture (exact for the built-in spaces, checked in the tests
against brute force), a few hundred layers for ``mobilenetv3_ofa`` instead of
10^19 architectures. Recursive grammars fall back to the union over sampled
architectures, which may miss rare layers (the result says so).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search_spaces._cell import REDUCTION_STRIDE, Cell, CellStack
from search_spaces._expr import Choice, Expr, Op, Parallel, Ref, Repeat, Residual, Seq
from search_spaces._registry import RngLike, as_generator
from search_spaces.errors import SearchSpaceError
from search_spaces.layers import LayerSpec, resolve_spec
from search_spaces.ops import Shape

if TYPE_CHECKING:
    from search_spaces.space import SearchSpace

__all__ = ["METHODS", "Enumeration", "realisable_layers"]

METHODS = ("auto", "grammar", "sampled")


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


def realisable_layers(space: SearchSpace, input_shape: Shape, num_classes: int, method: str = "auto",
                      n_samples: int = 2000, rng: RngLike = None) -> Enumeration:
    """Unique layers of ``space`` at ``input_shape`` (see ``SearchSpace.realisable_layers``)."""
    if method not in METHODS:
        raise SearchSpaceError(f"enumeration method must be 'auto', 'grammar' or 'sampled', got {method!r}")
    recursive = space.grammar.is_recursive
    if method == "grammar" and recursive:
        raise SearchSpaceError(
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
    grammar = space.grammar
    walker.expr(grammar.rules[grammar.start], frozenset([tuple(input_shape)]), grammar.max_depth, False)
    return Enumeration(tuple(walker.specs), "grammar")


class _SetWalk:
    """Abstract interpretation of a grammar over sets of input shapes.

    ``stride2``: the expression is the op of a reducing cell edge (``Cell.reduces``);
    it passes through choices and references to ops, which get ``stride=2``.
    """

    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        self.grammar = space.grammar
        self.num_classes = num_classes
        self.specs: dict[LayerSpec, None] = {}
        self.memo: dict[tuple, frozenset] = {}

    def expr(self, e: Expr, shapes: frozenset, budget: float, stride2: bool) -> frozenset:
        key = (id(e), shapes, budget, stride2)
        if key not in self.memo:
            self.memo[key] = self._expr(e, shapes, budget, stride2)
        return self.memo[key]

    def _expr(self, e: Expr, shapes: frozenset, budget: float, stride2: bool) -> frozenset:
        if isinstance(e, Op):
            return self.op(e, shapes, stride2)
        if isinstance(e, Choice):
            return frozenset().union(*(self.expr(o.expr, shapes, budget, stride2)
                                       for o in e.options(self.grammar, budget)))
        if isinstance(e, Ref):
            rule, _, left = e.resolve(self.grammar, "", budget)
            return self.expr(rule, shapes, left, stride2)
        if stride2:
            return frozenset()  # reduction edges must be ops: such archs are invalid
        if isinstance(e, Seq):
            for _, item in e.parts:
                shapes = self.expr(item, shapes, budget, False)
            return shapes
        if isinstance(e, Repeat):
            return self.repeat(e, shapes, budget)
        if isinstance(e, Residual):
            return frozenset(s for s in shapes if s in self.expr(e.body, frozenset([s]), budget, False))
        if isinstance(e, Parallel):
            return self.parallel(e, shapes, budget)
        if isinstance(e, Cell):
            return frozenset(o for s in shapes for o in self.cell(e, [s], s[0], budget))
        if isinstance(e, CellStack):
            return self.stack(e, shapes, budget)
        raise SearchSpaceError(f"cannot enumerate layers of grammar expression {type(e).__name__}")

    def op(self, e: Op, shapes: Iterable[Shape], stride2: bool) -> frozenset:
        names = [n for n, _ in e.values]
        out = set()
        for combo in itertools.product(*(v.choices for _, v in e.values)):
            params = {**e.constants, **dict(zip(names, combo, strict=True))}
            if stride2:
                params["stride"] = REDUCTION_STRIDE
            for shape in shapes:
                spec = resolve_spec(e.name, params, shape, self.num_classes)
                if spec is not None:
                    self.specs.setdefault(spec, None)
                    out.add(spec.out_shape)
        return frozenset(out)

    def repeat(self, e: Repeat, shapes: frozenset, budget: float) -> frozenset:
        """Union over the allowed depths of the shapes after that many blocks."""
        out, current = set(), shapes
        if 0 in e.depth.choices:
            out |= current
        for k, (_, body) in enumerate(e.blocks(e.max_depth), start=1):
            current = self.expr(body, current, budget, False)
            if k in e.depth.choices:
                out |= current
        return frozenset(out)

    def parallel(self, e: Parallel, shapes: frozenset, budget: float) -> frozenset:
        out = set()
        n = len(e.branches)
        for s in shapes:
            if e.split and s[0] % n:
                continue
            branch_in = frozenset([(s[0] // n, *s[1:]) if e.split else s])
            outs = [self.expr(b, branch_in, budget, False) for _, b in e.parts]
            if e.merge == "add":
                out |= frozenset.intersection(*outs)
            else:
                for combo in itertools.product(*outs):
                    if len({c[1:] for c in combo}) == 1:
                        out.add((sum(c[0] for c in combo), *combo[0][1:]))
        return frozenset(out)

    def cell(self, e: Cell, in_shapes: list[Shape], channels: int, budget: float) -> set:
        states: list[Shape] = []
        for s, how in zip(in_shapes, e.preprocess(in_shapes, channels), strict=True):
            if how is None:
                states.append(s)
                continue
            spec = resolve_spec(*how, s, self.num_classes)
            if spec is None:
                return set()
            self.specs.setdefault(spec, None)
            states.append(spec.out_shape)
        node = e.node_shape(channels, in_shapes[-1][1:])
        for j in e.targets():
            for i in range(j):  # with in_degree, any predecessor may be picked
                self.expr(e.op, frozenset([states[i]]), budget, e.reduces(i))
            states.append(node)
        return {e.out_shape(node)}

    def stack(self, e: CellStack, shapes: frozenset, budget: float) -> frozenset:
        pairs = {(s, s) for s in shapes}
        for (_, cell), channels in zip(e.parts, e.channels, strict=True):
            cell_budget = budget
            while isinstance(cell, Ref):
                cell, _, cell_budget = cell.resolve(self.grammar, "", cell_budget)
            if not isinstance(cell, Cell) or cell.inputs != 2:
                raise SearchSpaceError("a CellStack holds cells with 2 inputs")
            pairs = {(s1, o) for s0, s1 in pairs for o in self.cell(cell, [s0, s1], channels, cell_budget)}
        return frozenset(s1 for _, s1 in pairs)
