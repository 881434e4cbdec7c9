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

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces.architecture import Architecture
from search_spaces.grammar import (
    Cell,
    CellStack,
    Choice,
    Expr,
    Op,
    Parallel,
    Ref,
    Repeat,
    Residual,
    Seq,
    Value,
)
from search_spaces.layers import LayerSpec, resolve_spec

if TYPE_CHECKING:
    from search_spaces.space import SearchSpace

__all__ = ["VectorIndex", "vectorisable"]

Shape = tuple[int, ...]
_UNKNOWN, _INVALID = -2, -1


def _join(prefix: str, label: str) -> str:
    return f"{prefix}.{label}" if prefix else label


def vectorisable(space: SearchSpace) -> bool:
    """True when :class:`VectorIndex` can walk the space's grammar with arrays."""
    grammar = space.grammar
    if grammar.is_recursive:
        return False

    def ok(e: Expr) -> bool:
        if isinstance(e, (Parallel, CellStack)):
            return False
        if isinstance(e, Cell) and e.inputs != 1:
            return False
        if isinstance(e, Ref):
            return True  # rules are checked below
        if isinstance(e, Seq):
            return all(ok(x) for _, x in e.items)
        if isinstance(e, Choice):
            return all(ok(x) for _, x in e.alternatives)
        if isinstance(e, Repeat):
            return ok(e.body) and (e.first is None or ok(e.first))
        if isinstance(e, Residual):
            return ok(e.body)
        if isinstance(e, Cell):
            return ok(e.op)
        return True

    return all(ok(grammar.rules[r]) for r in grammar.reachable())


class _Vocab(dict):
    """Interns hashable items as consecutive ids; ``map(vocab.__getitem__, items)``
    runs at C speed for known items and adds unknown ones."""

    def __missing__(self, item: Any) -> int:
        self[item] = len(self)
        return self[item]


class _Batch:
    """Per-batch state: decisions as an (arch, path) matrix of value ids, the running
    sum and bad-arch flags.

    Decisions are flattened in one pass over each arch's dict (a column-by-column
    scan of 10,000 dicts is cache-hostile and several times slower). Values are
    interned by equality, so ``True`` and ``1`` share an id: the predictor does not
    tell them apart (``space.validate`` does).
    """

    def __init__(self, archs: Sequence[Architecture], paths: _Vocab, values: _Vocab,
                 rows: tuple[np.ndarray, np.ndarray, dict[str, int], np.ndarray] | None = None) -> None:
        # For rows of a decision table (see VectorIndex._table_ids): the matrix holds
        # per-slot value ids, a row per slot (``row_of``), which ``to_value`` maps to ids
        # of ``values``. For dicts: value ids straight away, a row per id of ``paths``.
        self.row_of: dict[str, int] | None = None
        self.to_value: np.ndarray | None = None
        if rows is not None:
            self.matrix, self.lengths, self.row_of, self.to_value = rows
            self.n = len(self.lengths)
            self._init_state(paths, values)
            return
        decisions = [getattr(a, "_decisions", None) or dict(a) for a in archs]
        self.n = len(decisions)
        self.lengths = np.fromiter(map(len, decisions), np.int64, self.n)
        layouts: dict[tuple, np.ndarray] = {}  # archs of a space share few path layouts
        parts = []
        for d in decisions:
            layout = tuple(d)
            ids = layouts.get(layout)
            if ids is None:
                ids = layouts[layout] = np.fromiter(map(paths.__getitem__, layout), np.int64, len(layout))
            parts.append(ids)
        path_ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        value_ids = np.fromiter(map(values.__getitem__, itertools.chain.from_iterable(
            d.values() for d in decisions)), np.int64)
        # (path, arch) -> value id, or the sentinel len(values) where the arch lacks the path;
        # one contiguous row per path, read once per decision by `codes`.
        self.matrix = np.full((len(paths), self.n), len(values), dtype=np.int64)
        self.matrix[path_ids, np.repeat(np.arange(self.n), self.lengths)] = value_ids
        self._init_state(paths, values)

    def _init_state(self, paths: _Vocab, values: _Vocab) -> None:
        self.paths, self.values = paths, values
        self.total = np.zeros(0)  # (n,) or (n, columns), set by VectorIndex.sums
        self.bad = np.zeros(self.n, dtype=bool)  # not in the space: left to the slow path
        self.read: dict[str, np.ndarray] = {}  # decision path -> archs that reached it
        self.transform: Callable[[np.ndarray], np.ndarray] | None = None  # on layer values
        self.table: np.ndarray | None = None  # transformed layer values, then a zero row

    def layer_table(self, layer_values: np.ndarray) -> np.ndarray:
        """``transform(layer_values)`` with a zero row appended (index -1: no layer),
        rebuilt when the index has learnt layers since."""
        if self.table is None or len(self.table) != len(layer_values) + 1:
            values = layer_values if self.transform is None else self.transform(layer_values)
            self.table = np.concatenate([values, np.zeros((1, *values.shape[1:]), values.dtype)])
        return self.table

    def codes(self, path: str, choices: tuple, active: np.ndarray) -> np.ndarray:
        """Index of each arch's value at ``path`` in ``choices`` (0 where not active)."""
        self.read[path] = self.read[path] | active if path in self.read else active.copy()
        column = (self.paths if self.row_of is None else self.row_of).get(path)
        if column is None or column >= self.matrix.shape[0]:
            self.bad |= active
            return np.zeros(self.n, dtype=np.int64)
        lookup = np.full(len(self.values) + 1, -1, dtype=np.int64)  # last: the sentinel
        for i, choice in enumerate(choices):
            vid = self.values.get(choice)
            if vid is not None:
                lookup[vid] = i
        if self.to_value is not None:
            lookup = lookup[self.to_value]
        codes = lookup[self.matrix[column]]
        missing = codes < 0  # value not among the choices, or no value at this path
        if missing.any():
            self.bad |= active & missing
            codes[missing] = 0
        return codes


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
             budget: int, stride2: bool) -> np.ndarray:
        if not active.any():
            return shape
        if isinstance(e, Op):
            return self.op(e, path, shape, active, b, stride2)
        if stride2 and not isinstance(e, (Choice, Ref)):
            b.bad |= active
            return shape
        if isinstance(e, Seq):
            for label, item in e.items:
                shape = self.expr(item, _join(path, label), shape, active, b, budget, False)
            return shape
        if isinstance(e, Choice):
            here = path or self.grammar.start
            options = [(label, x) for label, x in e.alternatives if self.grammar.min_depth(x) <= budget]
            code = b.codes(here, tuple(label for label, _ in options), active)
            for a, (label, x) in enumerate(options):
                shape = self.expr(x, _join(here, label), shape, active & (code == a), b, budget, stride2)
            return shape
        if isinstance(e, Repeat):
            depths = np.asarray(e.depth.choices)[b.codes(_join(path, "depth"), e.depth.choices, active)]
            for k in range(1, max(e.depth.choices) + 1):
                body = e.first if (k == 1 and e.first is not None) else e.body
                shape = self.expr(body, _join(path, f"{e.label}{k}"), shape, active & (depths >= k),
                                  b, budget, False)
            return shape
        if isinstance(e, Ref):
            rule = self.grammar.rules[e.rule]
            return self.expr(rule, e.rule if e.shared else path, shape, active, b, budget - 1, stride2)
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
            values = [(name, v) for name, v in e.params if isinstance(v, Value)]
            n_combos = int(np.prod([len(v.choices) for _, v in values])) if values else 1
            pos = {"e": e, "values": values, "stride2": stride2,
                   "layer": np.full((n_combos, 0), _UNKNOWN, dtype=np.int64),
                   "out": np.full((n_combos, 0), _INVALID, dtype=np.int64)}
            self.positions[(id(e), stride2)] = pos
        combo = None  # the index of each arch's value combination at this position
        for name, v in pos["values"]:
            code = b.codes(_join(path, name), v.choices, active)
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
        params = {n: v for n, v in e.params if not isinstance(v, Value)}
        rest = row
        for name, v in reversed(pos["values"]):
            rest, digit = divmod(rest, len(v.choices))
            params[name] = v.choices[digit]
        if pos["stride2"]:
            params["stride"] = 2
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
             budget: int) -> np.ndarray:
        stride = 2 if e.reduction else 1

        def node_shape(s: Shape) -> Shape | None:
            return (s[0], *((d - 1) // stride + 1 for d in s[1:])) if len(s) == 3 else None

        node = self.map_shapes(f"cell-node-{stride}", node_shape, shape)
        b.bad |= active & (node < 0)
        node = np.maximum(node, 0)  # flagged archs walk on with some valid shape id
        states = [shape]
        for j in e.targets():
            if e.in_degree is None:
                edges = [(i, _join(path, f"edge_{j}_{i}"), active) for i in range(j)]
            else:
                combos = tuple(itertools.combinations(range(j), e.in_degree))
                picked = np.asarray(combos)[b.codes(_join(path, f"node{j}.inputs"), combos, active)]
                edges = [(i, _join(path, f"node{j}.op{m}"), active & (picked[:, m] == i))
                         for m in range(e.in_degree) for i in range(j)]
            for i, edge_path, mask in edges:
                out = self.expr(e.op, edge_path, states[i], mask, b, budget, e.reduction and i < 1)
                b.bad |= mask & (out != node)
            states.append(node)
        if e.output == "last":
            return node
        nodes = e.nodes
        out = self.map_shapes(f"cell-concat-{stride}-{nodes}",
                              lambda s: (s[0] * nodes, *s[1:]) if len(s) == 3 else None, node)
        b.bad |= active & (out < 0)
        return np.maximum(out, 0)
