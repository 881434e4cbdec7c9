"""Compiled decision tables: batch sampling, mutation and crossover on index matrices.

A non-recursive grammar has a fixed set of decision *slots* (every path any
derivation can reach, listed by :class:`~search_spaces._slots.Slots`). An
architecture is then a row of slot indices: the index of its value in the slot's
choices, or ``-1`` where the slot is not reached (a deeper block of a shallower
stage, the decisions of an unchosen production). Whether a slot is reached
depends on one *controlling* slot only: the innermost
:class:`~search_spaces.grammar.Choice` or :class:`~search_spaces.grammar.Repeat`
depth above it (slot ``s`` is active iff its controller is active and holds one
of the values in ``allowed[s]``). :class:`DecisionTable` compiles the slots
into these arrays once, then samples, mutates, crosses over, encodes and
converts whole batches with numpy, with the semantics of the derivation walk.
``SearchSpace.sample``, ``mutate`` and ``crossover`` are these operations on a
batch of one:

* ``sample``: every reached decision independently by its probabilities (uniform
  by default): the distribution of the walk with ``RandomDecider`` (tested); the
  random stream differs.
* ``mutate``: one uniformly chosen reached decision with more than one choice
  takes a different value uniformly (``n`` rounds, or per-slot ``rate``);
  decisions that become reached are sampled, as ``FallbackDecider`` does.
* ``crossover``: uniform crossover of the decisions both parents reach, the
  others taken from the parent that has them; then the same re-derivation.

Grammars the table cannot express (recursive rules, a shared rule referenced
under different conditions, one path reached under different conditions) do
not compile: :func:`compile_table` returns ``None`` and the space keeps its
per-architecture path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from search_spaces._registry import as_generator
from search_spaces._slots import Slots
from search_spaces.architecture import Architecture, _jsonable
from search_spaces.errors import ArchitectureError
from search_spaces.grammar import Grammar

__all__ = ["DecisionTable", "compile_table"]

INACTIVE = -1


def compile_table(grammar: Grammar, slots: Slots | None = None) -> DecisionTable | None:
    """The grammar's decision table, or ``None`` when the grammar does not compile
    (``slots``: the grammar's slots when already listed)."""
    if grammar.is_recursive:
        return None
    slots = slots if slots is not None else Slots(grammar)
    if slots.reason is not None:
        return None
    return DecisionTable(slots.paths, slots.choices, slots.probs, slots.control)


def _objects(items: list[Any]) -> np.ndarray:
    """1-D object array of ``items`` (tuples stay elements, not rows)."""
    out = np.empty(len(items), dtype=object)
    for j, item in enumerate(items):
        out[j] = item
    return out


def _fragment(path: str, value: Any) -> str:
    """``"path":value`` exactly as ``Architecture.to_json`` writes it."""
    return json.dumps({path: _jsonable(value)}, separators=(",", ":"))[1:-1]


class DecisionTable:
    """The slots of a non-recursive grammar and batch operations on index matrices.

    A batch is an ``int64`` matrix ``X`` of shape ``(n, num_slots)``: ``X[r, s]``
    is the index of row ``r``'s value in ``choices[s]``, ``-1`` where slot ``s``
    is not reached. Build one with :func:`compile_table` (or
    ``SearchSpace.decision_table``).

    Attributes:
        paths: slot paths, in derivation order.
        choices: allowed values per slot.
        sizes: number of choices per slot.
        parent: controlling slot of each slot (``-1``: always reached).
    """

    def __init__(self, paths: Sequence[str], choices: Sequence[tuple],
                 probs: Sequence[tuple[float, ...] | None],
                 control: Sequence[tuple[int, frozenset[int]] | None]) -> None:
        self.paths = list(paths)
        self.choices = [tuple(c) for c in choices]
        self.num_slots = len(self.paths)
        self.sizes = np.array([len(c) for c in self.choices], dtype=np.int64)
        self.parent = np.array([-1 if c is None else c[0] for c in control], dtype=np.int64)
        self._cumulative = {s: np.cumsum(p) for s, p in enumerate(probs) if p is not None}
        # allowed[s]: bool over the parent's choices plus a last False for "parent inactive".
        self._levels = self._compile_levels(control)
        # conversions to architectures: slots in sorted-path order, JSON fragments per value
        self._order = np.array(sorted(range(self.num_slots), key=self.paths.__getitem__), dtype=np.int64)
        # flat object arrays over every (slot, value) in sorted-path order, gathered per batch
        sizes = self.sizes[self._order]
        self._flat_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._flat_paths = _objects([self.paths[s] for s in self._order for _ in self.choices[s]])
        self._flat_values = _objects([v for s in self._order for v in self.choices[s]])
        self._flat_fragments = _objects([_fragment(self.paths[s], v)
                                         for s in self._order for v in self.choices[s]])
        self._value_index = [{v: k for k, v in enumerate(c)} for c in self.choices]
        self.mutable = self.sizes > 1

    def _compile_levels(self, control) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Group controlled slots by depth in the control tree: per level the slots,
        their parents, and flat offsets into one boolean ``allowed`` lookup."""
        depth = np.zeros(self.num_slots, dtype=np.int64)
        for s, c in enumerate(control):
            if c is not None:
                depth[s] = depth[c[0]] + 1
        chunks, offsets, pos = [], np.zeros(self.num_slots, dtype=np.int64), 0
        for s, c in enumerate(control):
            if c is None:
                continue
            parent, allowed = c
            k = len(self.choices[parent])
            chunks.append(np.array([i in allowed for i in range(k)] + [False]))
            offsets[s] = pos
            pos += k + 1
        self._allowed = np.concatenate(chunks) if chunks else np.zeros(0, dtype=bool)
        levels = []
        for d in range(1, int(depth.max(initial=0)) + 1):
            slots = np.flatnonzero(depth == d)
            parents = self.parent[slots]
            levels.append((slots, parents, offsets[slots], self.sizes[parents]))
        return levels

    def __repr__(self) -> str:
        return f"DecisionTable(slots={self.num_slots}, controlled={int((self.parent >= 0).sum())})"

    # core --------------------------------------------------------------------------
    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """A full matrix of independent draws, every slot by its probabilities."""
        u = rng.random((n, self.num_slots))
        x = np.minimum((u * self.sizes).astype(np.int64), self.sizes - 1)
        for s, cum in self._cumulative.items():
            x[:, s] = np.minimum(np.searchsorted(cum, u[:, s], side="right"), self.sizes[s] - 1)
        return x

    def _resolve(self, x: np.ndarray, fill: np.ndarray | None) -> np.ndarray:
        """In place: unreached slots become -1; newly reached ones (-1) take ``fill``."""
        if fill is not None:
            roots = self.parent < 0
            x[:, roots] = np.where(x[:, roots] < 0, fill[:, roots], x[:, roots])
        for slots, parents, offsets, psizes in self._levels:
            pv = x[:, parents]
            active = self._allowed[offsets + np.where(pv < 0, psizes, pv)]
            cur = x[:, slots]
            if fill is not None:
                cur = np.where(cur < 0, fill[:, slots], cur)
            x[:, slots] = np.where(active, cur, INACTIVE)
        return x

    def sample_batch(self, n: int, rng: np.random.Generator | int | None) -> np.ndarray:
        """``n`` architectures drawn as ``SearchSpace.sample`` draws them (per-slot
        independent, by the grammar's probabilities), as an index matrix."""
        return self._resolve(self._draw(n, as_generator(rng)), None)

    def mutate_batch(self, x: np.ndarray, rng: np.random.Generator | int | None, n: int = 1,
                     rate: float | None = None) -> np.ndarray:
        """Mutated copies of the rows of ``x``.

        Each row changes ``n`` times one uniformly chosen reached decision that has
        more than one choice, to a uniformly chosen other value (``SearchSpace.mutate``).
        With ``rate``, every reached mutable decision also changes with probability
        ``rate`` (at least one always does). Rows with no mutable decision are returned
        unchanged.
        """
        x = np.array(x, dtype=np.int64, copy=True)
        rng = as_generator(rng)
        if len(x) == 0:
            return x
        rows = np.arange(len(x))
        for _ in range(max(int(n), 1)):
            mutable = (x >= 0) & self.mutable
            count = mutable.sum(axis=1)
            pick = np.minimum((rng.random(len(x)) * count).astype(np.int64), np.maximum(count - 1, 0))
            slot = np.argmax(np.cumsum(mutable, axis=1) > pick[:, None], axis=1)
            change = np.zeros_like(mutable)
            change[rows, slot] = count > 0
            if rate is not None:
                change |= mutable & (rng.random(x.shape) < rate)
            shift = 1 + (rng.random(x.shape) * (self.sizes - 1)).astype(np.int64)
            x = np.where(change, (x + shift) % self.sizes, x)
            self._resolve(x, self._draw(len(x), rng))
        return x

    def crossover_batch(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator | int | None) -> np.ndarray:
        """Uniform crossover of rows ``a[i]`` and ``b[i]`` (``SearchSpace.crossover``)."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        rng = as_generator(rng)
        take_a = rng.random(a.shape) < 0.5
        child = np.where((a >= 0) & (b >= 0), np.where(take_a, a, b), np.maximum(a, b))
        return self._resolve(child, self._draw(len(child), rng))

    # features ----------------------------------------------------------------------
    def encode_batch(self, x: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
        """One-hot features: slot ``s`` value ``k`` sets column ``offsets[s] + k``."""
        x = np.asarray(x, dtype=np.int64)
        out = np.zeros((len(x), size), dtype=np.float32)
        r, s = np.nonzero(x >= 0)
        out[r, offsets[s] + x[r, s]] = 1.0
        return out

    # conversions -------------------------------------------------------------------
    def to_archs(self, x: np.ndarray) -> list[Architecture]:
        """Architectures of the rows (their JSON key computed from per-value fragments);
        each remembers its row (a read-only copy), so :meth:`to_matrix` on them is a stack."""
        x = np.array(x, dtype=np.int64, copy=True)
        x.setflags(write=False)
        xs = x[:, self._order]
        active = xs >= 0
        # per row: the reached slots first (still in sorted-path order), then gathers
        perm = np.argsort(~active, axis=1, kind="stable")
        flat = np.take_along_axis(self._flat_offsets + np.where(active, xs, 0), perm, axis=1)
        counts = active.sum(axis=1).tolist()
        paths = self._flat_paths[flat].tolist()
        values = self._flat_values[flat].tolist()
        frags = self._flat_fragments[flat].tolist()
        sha1, trusted = hashlib.sha1, Architecture._trusted
        out = []
        for i, k in enumerate(counts):
            decisions = dict(zip(paths[i][:k], values[i][:k]))
            text = "{" + ",".join(frags[i][:k]) + "}"
            out.append(trusted(decisions, sha1(text.encode()).hexdigest()[:16], (self, x[i])))
        return out

    def row(self, arch: Mapping[str, Any]) -> np.ndarray:
        """The index row of one architecture (raises ArchitectureError for values or paths
        outside the table; activity is not checked: validate first)."""
        origin = getattr(arch, "_origin", None)
        if origin is not None and origin[0] is self:
            return origin[1]
        out = np.full(self.num_slots, INACTIVE, dtype=np.int64)
        seen = 0
        for s, path in enumerate(self.paths):
            if path in arch:
                value = arch[path]
                k = self._value_index[s].get(value)
                if k is None or isinstance(value, bool) != isinstance(self.choices[s][k], bool):
                    raise ArchitectureError(
                        f"decision {path!r} = {value!r} is not allowed; allowed values: "
                        + ", ".join(map(repr, self.choices[s])), path)
                out[s] = k
                seen += 1
        if seen != len(arch):
            extra = sorted(set(arch) - set(self.paths))
            raise ArchitectureError(f"unexpected decision path(s) {extra}", extra[0])
        return out

    def to_matrix(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Index matrix of architectures (rows of table-made architectures are reused)."""
        if not archs:
            return np.zeros((0, self.num_slots), dtype=np.int64)
        return np.stack([self.row(a) for a in archs])

    def valid(self, x: np.ndarray) -> np.ndarray:
        """Rows whose indices are in range and whose reached slots are exactly the active ones."""
        x = np.asarray(x, dtype=np.int64)
        ok = ((x >= -1) & (x < self.sizes)).all(axis=1)
        fixed = self._resolve(np.where(x < self.sizes, x, 0), np.zeros_like(x))
        return ok & (fixed == x).all(axis=1)
