"""Per-batch state of :class:`~search_spaces.VectorIndex`: decisions as integer matrices."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from search_spaces.architecture import Architecture


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
