"""Vectorised layer sums over a batch of architectures.

For a non-recursive grammar an architecture's layers are determined position by
position: the op at a grammar position, its value decisions, and the input shape
that reaches it. :class:`VectorIndex` walks the grammar once per batch with
numpy arrays over the batch: each decision becomes an integer column, each shape
an interned id, and each op position a dense array ``(value combination, shape
id) -> (layer id, output shape id)`` filled lazily and kept across calls. A batch
of 10,000 architectures is then a few gathers per op position. What is summed per
layer is the caller's ``lookup(spec)``: a latency (``hardware.LatencyTable``) or
FLOPs and parameters (:meth:`SearchSpace.complexity_batch`).

Spaces with constructs the walk does not vectorise (recursive rules, parallel
branches, two-input cells; see :func:`vectorisable`) are left to the caller's
per-architecture path over ``space.layers(arch)``, and so are single
architectures the walk flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces._cell import REDUCTION_STRIDE, Cell, CellStack
from search_spaces._expr import Choice, Expr, Op, Parallel, Ref, Repeat, Residual, Seq, join
from search_spaces._vector_batch import _Batch, _Vocab
from search_spaces.architecture import Architecture
from search_spaces.layers import LayerSpec, resolve_spec

if TYPE_CHECKING:
    from search_spaces.space import SearchSpace

__all__ = ["VectorIndex", "vectorisable"]

Shape = tuple[int, ...]
_UNKNOWN, _INVALID = -2, -1


def vectorisable(space: SearchSpace) -> bool:
    """True when :class:`VectorIndex` can walk the space's grammar with arrays: no
    recursion, no parallel branches, no cell stacks or two-input cells."""
    grammar = space.grammar
    if grammar.is_recursive:
        return False

    def ok(e: Expr) -> bool:
        if isinstance(e, (Parallel, CellStack)) or (isinstance(e, Cell) and e.inputs != 1):
            return False
        return all(ok(x) for x in e.children())  # a Ref's rule is checked below

    return all(ok(grammar.rules[r]) for r in grammar.reachable())


class VectorIndex:
    """Maps batches of architectures to sums of a per-layer value with array operations.

    The value of each layer is asked once (``lookup``) when the walk first meets the
    layer and kept: a lookup must be a pure function of the spec.

    Args:
        space: the (vectorisable, see :func:`vectorisable`) search space.
        input_shape, num_classes: the network input and classes.
        lookup: ``lookup(spec)``: the layer's value (e.g. a latency in ms, NaN when
            unknown), or a sequence of ``columns`` values when ``columns`` is given.
        columns: ``None`` for one value per layer (sums of shape ``(n,)``), else the
            number of values per layer (sums of shape ``(n, columns)``).
        dtype: of the values and sums (``np.int64`` keeps integer counts exact).

    Example:
        >>> index = VectorIndex(space, (3, 32, 32), 10, layer_complexity, columns=2, dtype=np.int64)
        >>> sums, bad = index.sums(archs)  # (n, 2) FLOPs and params; bad: use the slow path
    """

    def __init__(self, space: SearchSpace, input_shape: Shape, num_classes: int,
                 lookup: Callable[[LayerSpec], Any], columns: int | None = None,
                 dtype: Any = np.float64) -> None:
        if columns is not None and columns < 1:
            raise ValueError(f"columns must be None or >= 1, got {columns}")
        self.space = space
        self.grammar = space.grammar
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.lookup = lookup
        self.columns = columns
        self.dtype = np.dtype(dtype)
        self.shapes: list[Shape] = []
        self.shape_ids: dict[Shape, int] = {}
        self.specs: list[LayerSpec] = []  # layer id -> spec
        self.layer_values = np.zeros((0,) if columns is None else (0, columns), self.dtype)  # by layer id
        self.positions: dict[tuple, dict[str, Any]] = {}
        self._shape_maps: dict[tuple, np.ndarray] = {}
        self._paths, self._values = _Vocab(), _Vocab()
        self._slot_lookup: tuple | None = None

    # interning ----------------------------------------------------------------------
    def shape_id(self, shape: Shape) -> int:
        if shape not in self.shape_ids:
            self.shape_ids[shape] = len(self.shapes)
            self.shapes.append(shape)
        return self.shape_ids[shape]

    def map_shapes(self, name: str, fn: Callable[[Shape], Shape | None], ids: np.ndarray) -> np.ndarray:
        """Apply a shape function to interned shape ids (a lookup array per function)."""
        cached = self._shape_maps.get((name,))
        if cached is None or len(cached) < len(self.shapes):
            result = []
            for s in list(self.shapes):
                out = fn(s)
                result.append(_INVALID if out is None else self.shape_id(out))
            cached = np.asarray(result, dtype=np.int64)
            self._shape_maps[(name,)] = cached
        return cached[ids]

    def _table_rows(self, archs: Sequence[Architecture]) -> np.ndarray | None:
        """The decision-table index matrix of the archs when every one was made by that table."""
        table = getattr(self.space, "decision_table", None)
        if table is None or not archs or not all(
                (o := getattr(a, "_origin", None)) is not None and o[0] is table for a in archs):
            return None
        return table.to_matrix(archs)

    def _table_ids(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, int], np.ndarray]:
        """Batch rows of decision-table index rows ``x`` (arch, slot): a (slot, arch)
        matrix of per-slot value ids, decision counts, the row of each path and the map
        from per-slot ids to value ids (see :class:`_Batch`)."""
        table = self.space.decision_table
        if self._slot_lookup is None or self._slot_lookup[0] is not table:
            ids = [[self._values[c] for c in choices] for choices in table.choices]
            # per slot: an "unreached" marker, then its choices; offset + index is the
            # slot's id of a value, and an unreached slot (index -1) lands on the marker
            offsets = np.cumsum([1] + [len(c) + 1 for c in ids[:-1]])
            flat = np.array([v for c in ids for v in (-1, *c)], dtype=np.int64)
            row_of = {p: s for s, p in enumerate(table.paths)}
            self._slot_lookup = (table, offsets, flat, row_of)
        _, offsets, flat, row_of = self._slot_lookup
        to_value = np.where(flat < 0, len(self._values), flat)  # the marker: the sentinel
        matrix = np.ascontiguousarray((x + offsets).T)
        return matrix, (x >= 0).sum(axis=1), row_of, to_value

    # public ---------------------------------------------------------------------------
    def sums(self, archs: Sequence[Architecture] | np.ndarray,
             transform: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-arch sums of the layers' values, and a mask of archs the walk could not
        handle. ``transform`` (elementwise) is applied to the layer values before they
        are summed.

        Architectures in the mask (not members of the space, or reaching a layer the
        walk cannot resolve) must go to the caller's slow path, which validates them
        and raises a precise error. Architectures made by the space's decision table
        are read from their index rows instead of their dicts; ``archs`` may also be
        an index matrix of ``space.decision_table`` whose indices are in range (a row
        with a wrong slot activity is flagged in the mask).
        """
        if isinstance(archs, np.ndarray):
            if getattr(self.space, "decision_table", None) is None:
                raise ValueError(f"space {self.space.name!r} has no decision table: pass architectures")
            rows = self._table_ids(np.asarray(archs, dtype=np.int64).reshape(len(archs), -1))
        else:
            x = self._table_rows(archs)
            rows = None if x is None else self._table_ids(x)
        batch = _Batch(archs if rows is None else (), self._paths, self._values, rows)
        batch.transform = transform
        batch.total = np.zeros((batch.n, *self.layer_values.shape[1:]), self.dtype)
        shape = np.full(batch.n, self.shape_id(self.input_shape), dtype=np.int64)
        active = np.ones(batch.n, dtype=bool)
        self.expr(self.grammar.rules[self.grammar.start], "", shape, active, batch,
                  self.grammar.max_depth, False)
        reached = sum(batch.read.values()) if batch.read else np.zeros(batch.n, dtype=np.int64)
        bad = batch.bad | (reached != batch.lengths)
        return batch.total, bad

    # walk --------------------------------------------------------------------------
    def expr(self, e: Expr, path: str, shape: np.ndarray, active: np.ndarray, b: _Batch,
             budget: float, stride2: bool) -> np.ndarray:
        """Output shape ids of the archs in ``active`` after ``e`` (``stride2``: the op of a
        reducing cell edge, see ``Cell.reduces``)."""
        if not active.any():
            return shape
        if isinstance(e, Op):
            return self.op(e, path, shape, active, b, stride2)
        if isinstance(e, Choice):
            here = e.decision_path(path, self.grammar)
            options = e.options(self.grammar, budget)
            code = b.codes(here, Choice.decision(options)[0], active)
            for a, option in enumerate(options):
                shape = self.expr(option.expr, join(here, option.label), shape, active & (code == a),
                                  b, budget, stride2)
            return shape
        if isinstance(e, Ref):
            rule, where, left = e.resolve(self.grammar, path, budget)
            return self.expr(rule, where, shape, active, b, left, stride2)
        if stride2:
            b.bad |= active
            return shape
        if isinstance(e, Seq):
            for label, item in e.parts:
                shape = self.expr(item, join(path, label), shape, active, b, budget, False)
            return shape
        if isinstance(e, Repeat):
            depths = np.asarray(e.depth.choices)[b.codes(e.depth_path(path), e.depth.choices, active)]
            for k, (label, body) in enumerate(e.blocks(e.max_depth), start=1):
                shape = self.expr(body, join(path, label), shape, active & (depths >= k), b, budget, False)
            return shape
        if isinstance(e, Residual):
            out = self.expr(e.body, path, shape, active, b, budget, False)
            b.bad |= active & (out != shape)
            return shape
        if isinstance(e, Cell):
            return self.cell(e, path, shape, active, b, budget)
        b.bad |= active
        return shape

    def op(self, e: Op, path: str, shape: np.ndarray, active: np.ndarray, b: _Batch,
           stride2: bool) -> np.ndarray:
        pos = self.positions.get((id(e), stride2))
        if pos is None:
            n_combos = int(np.prod([len(v.choices) for _, v in e.values])) if e.values else 1
            pos = {"e": e, "values": e.values, "stride2": stride2,
                   "layer": np.full((n_combos, 0), _UNKNOWN, dtype=np.int64),
                   "out": np.full((n_combos, 0), _INVALID, dtype=np.int64)}
            self.positions[(id(e), stride2)] = pos
        combo = None  # the index of each arch's value combination at this position
        for name, v in pos["values"]:
            code = b.codes(join(path, name), v.choices, active)
            combo = code if combo is None else combo * len(v.choices) + code
        every = bool(active.all())
        where = None if every else np.flatnonzero(active)
        self._widen(pos)
        cells = self._cells(pos, combo, shape, where)
        layer = pos["layer"].ravel().take(cells)
        unknown = layer == _UNKNOWN
        if unknown.any():
            width = pos["layer"].shape[1]
            rows, cols = np.divmod(cells[unknown], width)
            for r, c in set(zip(rows.tolist(), cols.tolist(), strict=True)):
                self._fill(pos, r, c, path)
            cells = self._cells(pos, combo, shape, where)  # filling may add shapes: wider tables
            layer = pos["layer"].ravel().take(cells)
        out_ids = pos["out"].ravel().take(cells)  # the input shape where the layer is invalid
        values = b.layer_table(self.layer_values)[layer]  # layer -1: the zero row
        if every:
            b.total += values
            b.bad |= layer < 0
            return out_ids
        b.total[where] += values  # an arch meets a position once: no repeated index
        b.bad[where[layer < 0]] = True
        out = shape.copy()
        out[where] = out_ids
        return out

    @staticmethod
    def _cells(pos: dict, combo: np.ndarray | None, shape: np.ndarray, where: np.ndarray | None) -> np.ndarray:
        """Flat indices into a position's (value combination, shape id) tables."""
        if combo is not None:
            shape = combo * pos["layer"].shape[1] + shape
        return shape if where is None else shape[where]

    def _widen(self, pos: dict) -> None:
        """Give a position's tables a column for every interned shape."""
        width = len(self.shapes)
        for name, fill in (("layer", _UNKNOWN), ("out", _INVALID)):
            if pos[name].shape[1] < width:
                grown = np.full((pos[name].shape[0], width), fill, dtype=np.int64)
                grown[:, : pos[name].shape[1]] = pos[name]
                pos[name] = grown

    def _fill(self, pos: dict, row: int, col: int, path: str) -> None:
        """Resolve the layer of one (value combination, input shape) of a position."""
        e: Op = pos["e"]
        params = dict(e.constants)
        rest = row
        for name, v in reversed(pos["values"]):
            rest, digit = divmod(rest, len(v.choices))
            params[name] = v.choices[digit]
        if pos["stride2"]:
            params["stride"] = REDUCTION_STRIDE
        spec = resolve_spec(e.name, params, self.shapes[col], self.num_classes, path)
        if spec is None:
            pos["layer"][row, col] = _INVALID
            pos["out"][row, col] = col  # the walk keeps the shape; the arch is flagged
            return
        value = np.asarray(self.lookup(spec), self.dtype).reshape(1, *self.layer_values.shape[1:])
        self.specs.append(spec)
        self.layer_values = np.concatenate([self.layer_values, value])
        out_id = self.shape_id(spec.out_shape)
        self._widen(pos)
        pos["layer"][row, col] = len(self.specs) - 1
        pos["out"][row, col] = out_id

    def cell(self, e: Cell, path: str, shape: np.ndarray, active: np.ndarray, b: _Batch,
             budget: float) -> np.ndarray:
        """A one-input cell (see :func:`vectorisable`): every node has the cell's node shape."""
        node = self.map_shapes(f"cell-node-{e.reduction}",
                               lambda s: e.node_shape(s[0], s[1:]) if len(s) == 3 else None, shape)
        b.bad |= active & (node < 0)
        node = np.maximum(node, 0)  # flagged archs walk on with some valid shape id
        states = [shape]
        for target in e.layout:
            if target.inputs is None:
                edges = [(i, label, active) for i, label in target.wiring()]
            else:
                picked = np.asarray(target.combos)[b.codes(join(path, target.inputs), target.combos, active)]
                edges = [(i, label, active & (picked[:, m] == i))
                         for m, label in enumerate(target.edges) for i in range(target.index)]
            for i, label, mask in edges:
                out = self.expr(e.op, join(path, label), states[i], mask, b, budget, e.reduces(i))
                b.bad |= mask & (out != node)
            states.append(node)
        if e.output == "last":
            return node
        out = self.map_shapes(f"cell-concat-{e.nodes}",
                              lambda s: e.out_shape(s) if len(s) == 3 else None, node)
        b.bad |= active & (out < 0)
        return np.maximum(out, 0)
