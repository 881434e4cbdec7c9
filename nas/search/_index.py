"""A compact in-memory index of a search's evaluations: no architecture objects kept.

The search loop needs, for any architecture proposed again, its stored values (to
``tell`` the engine) and the batch that first evaluated it; it never needs the
architecture itself, which the engine proposes again. So each evaluation costs one
dict entry (its 16-hex-digit key -> row) and one row of a float array, a few hundred
bytes, whatever the size of the architecture.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

from nas.storage import Record
from search_spaces import Architecture

__all__ = ["EvaluationIndex"]


class EvaluationIndex:
    """Evaluations by architecture key: values, constraints, violation, measures, batch, index.

    Args:
        objectives, constraints: how many of each a record has.
        measures: the measure names, sorted (as :class:`Record` keeps them).
    """

    def __init__(self, objectives: int, constraints: int, measures: Sequence[str]) -> None:
        self.m, self.c, self.measures = objectives, constraints, list(measures)
        self.rows: dict[str, int] = {}
        self.data = np.empty((1024, self.m + self.c + 1 + len(self.measures)))
        self.where = np.empty((1024, 2), dtype=np.int64)  # batch, index

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def _append(self, key: str, numbers: Sequence[float], batch: int, index: int) -> None:
        row = len(self.rows)
        if row == len(self.data):  # grow by half: amortised O(1), bounded slack
            extra = len(self.data) // 2
            self.data = np.concatenate([self.data, np.empty((extra, self.data.shape[1]))])
            self.where = np.concatenate([self.where, np.empty((extra, 2), dtype=np.int64)])
        self.data[row] = numbers
        self.where[row] = batch, index
        self.rows[key] = row

    def add(self, record: Record) -> None:
        """Index ``record`` (its measures must be this index's measures)."""
        measures = dict(record.measures)
        self._append(record.arch.key, [*record.values, *record.constraints, record.violation,
                                       *(measures[n] for n in self.measures)],
                     record.batch, record.index)

    def load(self, rows: Iterable[tuple]) -> int:
        """Index stored log rows (``StudySession.rows``); the largest batch seen (-1 if none)."""
        last = -1
        for key, batch, index, _trial, payload, _arch in rows:
            values, constraints, violation, measures = json.loads(payload)
            named = dict(measures)
            self._append(key, [*values, *constraints, violation,
                               *(named.get(n, np.nan) for n in self.measures)], batch, index)
            last = max(last, batch)
        return last

    def batch_of(self, key: str) -> int:
        """The batch that first evaluated ``key``."""
        return int(self.where[self.rows[key], 0])

    def record(self, arch: Architecture) -> Record:
        """The stored evaluation of ``arch`` as a :class:`Record` (trial unknown: -1)."""
        row = self.rows[arch.key]
        numbers = self.data[row].tolist()
        m, c = self.m, self.c
        batch, index = self.where[row].tolist()
        return Record(arch, tuple(numbers[:m]), tuple(numbers[m:m + c]), numbers[m + c], batch, index,
                      measures=tuple(zip(self.measures, numbers[m + c + 1:], strict=True)))

    def scores(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw objective values, shape (n, m), and violations, shape (n,), of ``keys``."""
        rows = self.data[[self.rows[k] for k in keys]]
        return rows[:, :self.m], rows[:, self.m + self.c]
