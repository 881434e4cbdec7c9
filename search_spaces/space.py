"""`SearchSpace`: a grammar plus everything downstream needs from it."""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

from search_spaces._count import count_architectures, decision_slots, token_vocabulary
from search_spaces._decisions import DecisionTable, compile_table
from search_spaces._derive import (
    ArchDecider,
    FallbackDecider,
    RandomDecider,
    Recorder,
    derive,
)
from search_spaces._plan import compile_plan, plan, plan_graph, plan_layers
from search_spaces._registry import RngLike, as_generator
from search_spaces._vector import VectorIndex, vectorisable
from search_spaces.architecture import Architecture
from search_spaces.errors import ArchitectureError
from search_spaces.grammar import Grammar
from search_spaces.layers import LayerSpec
from search_spaces.ops import Shape, get_op

__all__ = ["Complexity", "SearchSpace"]

@dataclass(frozen=True)
class Complexity:
    """FLOPs (multiply-accumulates, as fvcore counts them) and parameter count."""

    flops: int
    params: int


class _OptunaDecider:
    """Define-by-run: each decision becomes a categorical parameter named by its path."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def decide(self, path, choices, probs, kind):
        primitive = all(c is None or isinstance(c, (bool, int, float, str)) for c in choices)
        if primitive:
            return self.trial.suggest_categorical(path, list(choices))
        labels = [",".join(map(str, c)) for c in choices]  # tuples: Optuna wants scalars
        return choices[labels.index(self.trial.suggest_categorical(path, labels))]


class SearchSpace:
    """A search space defined by a :class:`~search_spaces.grammar.Grammar`.

    Args:
        grammar: the grammar (single source of truth).
        name: registry name.
        description: one line for listings.
        input_shape: default input shape (no batch dim) for build/layers/graph.
        num_classes: default number of classes.

    All methods are pure functions of their arguments; randomness is injected as a
    ``numpy.random.Generator`` (or a seed).
    """

    def __init__(self, grammar: Grammar, name: str = "custom", description: str = "",
                 input_shape: Shape = (3, 32, 32), num_classes: int = 10) -> None:
        self.grammar = grammar
        self.name = name
        self.description = description
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self._plans = functools.lru_cache(maxsize=4096)(self._plan_uncached)
        # Keys of architectures this space derived itself (sample, mutate, crossover,
        # suggest, validate): members by construction, so validate() skips the walk.
        self._members: OrderedDict[str, None] = OrderedDict()
        # (input_shape, num_classes) -> VectorIndex of FLOPs and params (complexity_batch)
        self._complexity_indexes: dict[tuple[Shape, int], VectorIndex] = {}

    _MEMBERS_MAX = 200_000
    _INDEXES_MAX = 16

    def __getstate__(self) -> dict[str, Any]:
        # Caches stay behind (the plan cache wraps a bound method and cannot pickle), so
        # a space travels to other processes (Ray workers) and is rebuilt there.
        state = self.__dict__.copy()
        del state["_plans"]
        state["_members"] = OrderedDict()
        state["_complexity_indexes"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._plans = functools.lru_cache(maxsize=4096)(self._plan_uncached)
        self.__dict__.setdefault("_complexity_indexes", {})

    def _member(self, decisions: Mapping[str, Any]) -> Architecture:
        arch = decisions if isinstance(decisions, Architecture) else Architecture(decisions)
        self._members[arch.key] = None
        if len(self._members) > self._MEMBERS_MAX:
            self._members.popitem(last=False)
        return arch

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, size={self.size():.3g})"

    # identity ----------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Version hash of the grammar: stored with tables, studies and checkpoints."""
        return self.grammar.fingerprint()

    @functools.cached_property
    def _size(self) -> int:
        return count_architectures(self.grammar)

    def size(self) -> int:
        """Exact number of architectures (within the grammar's recursion bound)."""
        return self._size

    # sampling and variation ---------------------------------------------------------
    def _derive(self, decider) -> tuple[Any, Recorder]:
        return derive(self.grammar, decider)

    def sample(self, rng: RngLike = None) -> Architecture:
        """Draw an architecture following the grammar's probabilities (uniform by default)."""
        _, rec = self._derive(RandomDecider(as_generator(rng)))
        return self._member(rec.decisions)

    def validate(self, arch: Mapping[str, Any]) -> Architecture:
        """Check membership; return the architecture as a canonical :class:`Architecture`.

        Raises:
            ArchitectureError: naming the missing, extra or out-of-range path and the
                allowed values.
        """
        if not isinstance(arch, Architecture):
            arch = Architecture(arch)
        origin = arch._origin
        if origin is not None and origin[0] is self.decision_table:
            return arch  # made from this space's decision table: a member by construction
        if arch.key in self._members:
            return arch
        _, rec = self._derive(ArchDecider(arch))
        extra = sorted(set(arch) - set(rec.decisions))
        if extra:
            raise ArchitectureError(
                f"unexpected decision path(s) {extra} for space {self.name!r} "
                f"(not reached by this architecture's derivation)", extra[0]
            )
        return self._member(arch)

    def contains(self, arch: Mapping[str, Any]) -> bool:
        try:
            self.validate(arch)
        except ArchitectureError:
            return False
        return True

    def mutate(self, arch: Architecture, rng: RngLike = None, n: int = 1) -> Architecture:
        """Change ``n`` random decisions; sub-decisions of a changed production are re-drawn."""
        gen = as_generator(rng)
        _, rec = self._derive(ArchDecider(arch))
        proposal = dict(arch)
        for _ in range(n):
            mutable = [p for p, c in rec.choices.items() if len(c) > 1]
            if not mutable:
                return arch
            path = mutable[int(gen.integers(len(mutable)))]
            options = [c for c in rec.choices[path] if c != proposal.get(path)]
            proposal[path] = options[int(gen.integers(len(options)))]
            _, rec = self._derive(FallbackDecider(proposal, gen))
            proposal = dict(rec.decisions)
        return self._member(proposal)

    def crossover(self, a: Architecture, b: Architecture, rng: RngLike = None) -> Architecture:
        """Uniform crossover of decisions; the child is re-derived so it stays in the space."""
        gen = as_generator(rng)
        proposal = {}
        for path in sorted(set(a) | set(b)):
            if path in a and path in b:
                proposal[path] = a[path] if gen.random() < 0.5 else b[path]
            else:
                proposal[path] = a[path] if path in a else b[path]
        _, rec = self._derive(FallbackDecider(proposal, gen))
        return self._member(rec.decisions)

    # batches -----------------------------------------------------------------------
    @functools.cached_property
    def decision_table(self) -> DecisionTable | None:
        """The compiled :class:`~search_spaces._decisions.DecisionTable` of a grammar
        whose decisions form a fixed set of slots; ``None`` for grammars that do not
        compile (recursive ones): their batch methods loop over the single-arch ones."""
        return compile_table(self.grammar)

    def sample_batch(self, n: int, rng: RngLike = None) -> list[Architecture]:
        """``n`` samples (the decision table's batch draw when the space compiles one)."""
        gen = as_generator(rng)
        table = self.decision_table
        if table is None:
            return [self.sample(gen) for _ in range(n)]
        return table.to_archs(table.sample_batch(n, gen))

    def mutate_batch(self, archs: list[Architecture], rng: RngLike = None) -> list[Architecture]:
        """One mutation of each architecture (batched :meth:`mutate`)."""
        gen = as_generator(rng)
        table = self.decision_table
        if table is None:
            return [self.mutate(a, gen) for a in archs]
        return table.to_archs(table.mutate_batch(self.to_matrix(archs), gen))

    def crossover_batch(self, a: list[Architecture], b: list[Architecture],
                        rng: RngLike = None) -> list[Architecture]:
        """Crossover of ``a[i]`` with ``b[i]`` (batched :meth:`crossover`)."""
        gen = as_generator(rng)
        table = self.decision_table
        if table is None:
            return [self.crossover(x, y, gen) for x, y in zip(a, b, strict=True)]
        return table.to_archs(table.crossover_batch(self.to_matrix(a), self.to_matrix(b), gen))

    def to_matrix(self, archs: list[Mapping[str, Any]]) -> np.ndarray:
        """Index matrix (``decision_table`` rows) of architectures, each validated.

        Raises:
            ArchitectureError: for an architecture outside the space, or a space
                without a decision table.
        """
        table = self.decision_table
        if table is None:
            raise ArchitectureError(f"space {self.name!r} has no decision table (recursive grammar)")
        return table.to_matrix([self.validate(a) for a in archs])

    def from_matrix(self, matrix: np.ndarray) -> list[Architecture]:
        """Architectures of the rows of a ``decision_table`` index matrix (rows checked)."""
        matrix = self._checked_matrix(matrix)  # first: it refuses a space without a table
        return self.decision_table.to_archs(matrix)

    def _checked_matrix(self, matrix: np.ndarray, activity: bool = True) -> np.ndarray:
        """``matrix`` as int64 after checking that each row is an architecture of the table
        (only that its indices are in range when ``activity`` is False)."""
        table = self.decision_table
        if table is None:
            raise ArchitectureError(f"space {self.name!r} has no decision table (recursive grammar)")
        matrix = np.asarray(matrix, dtype=np.int64)
        if matrix.ndim != 2 or matrix.shape[1] != table.num_slots:
            raise ArchitectureError(f"index matrix must have shape (n, {table.num_slots}), got {matrix.shape}")
        self._refuse_rows(~(table.valid(matrix) if activity else
                            ((matrix >= -1) & (matrix < table.sizes)).all(axis=1)))
        return matrix

    def _refuse_rows(self, bad: np.ndarray) -> None:
        rows = np.flatnonzero(bad)
        if rows.size:
            raise ArchitectureError(f"row {int(rows[0])} of the index matrix is not an architecture of "
                                    f"space {self.name!r} (an index out of range or a wrong slot activity)")

    def suggest(self, trial: Any) -> Architecture:
        """Optuna define-by-run: every reached decision is a categorical parameter."""
        _, rec = self._derive(_OptunaDecider(trial))
        return self._member(rec.decisions)

    def choices(self, arch: Architecture) -> dict[str, tuple]:
        """The allowed values at every decision the architecture reaches."""
        _, rec = self._derive(ArchDecider(self.validate(arch)))
        return dict(rec.choices)

    # structure -------------------------------------------------------------------
    def _plan_uncached(self, arch: Architecture, input_shape: Shape, num_classes: int):
        tree, _ = self._derive(ArchDecider(arch))
        return plan(tree, input_shape, num_classes)

    def plan(self, arch: Mapping[str, Any], input_shape: Shape | None = None,
             num_classes: int | None = None):
        """The shape-annotated derivation shared by build, layers and graph (cached)."""
        arch = self.validate(arch)
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        return self._plans(arch, shape, num_classes or self.num_classes)

    def build(self, arch: Mapping[str, Any], num_classes: int | None = None,
              input_shape: Shape | None = None) -> nn.Module:
        """A fresh ``nn.Module`` for ``arch`` taking (N, *input_shape)."""
        return compile_plan(self.plan(arch, input_shape, num_classes))

    def layers(self, arch: Mapping[str, Any], input_shape: Shape | None = None,
               num_classes: int | None = None) -> list[LayerSpec]:
        """Each realised op with its parameters and input shape (latency-table keys)."""
        return plan_layers(self.plan(arch, input_shape, num_classes))

    def graph(self, arch: Mapping[str, Any], input_shape: Shape | None = None,
              num_classes: int | None = None) -> nx.DiGraph:
        """Data-flow DAG of the architecture."""
        return plan_graph(self.plan(arch, input_shape, num_classes))

    def complexity(self, arch: Mapping[str, Any], input_shape: Shape | None = None,
                   num_classes: int | None = None) -> Complexity:
        """FLOPs and parameters: fvcore on each layer (cached per layer), summed."""
        flops = params = 0
        for spec in self.layers(arch, input_shape, num_classes):
            f, p = layer_complexity(spec)
            flops, params = flops + f, params + p
        return Complexity(flops, params)

    def complexity_batch(self, archs: Sequence[Mapping[str, Any]] | np.ndarray,
                         input_shape: Shape | None = None,
                         num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`complexity` of each architecture, as two int64 arrays ``(flops, params)``.

        Equal to ``complexity(arch)`` arch by arch. Each architecture is validated first
        (free for ones this space made or validated before), so a bad one raises the
        same :class:`ArchitectureError` naming its path; an index matrix of
        ``decision_table`` (as :meth:`to_matrix` returns) may be passed instead, its
        rows checked as in :meth:`from_matrix`. Non-recursive grammars sum the layers
        with a :class:`~search_spaces.VectorIndex` (array gathers per op position; one
        index is kept per input shape and number of classes); other spaces, and
        architectures the vectorised walk cannot resolve, go through
        :meth:`complexity` one by one.
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        classes = int(num_classes or self.num_classes)
        index = self._complexity_index(shape, classes)
        if isinstance(archs, np.ndarray):
            # the walk flags rows with a wrong slot activity itself (checked below);
            # out-of-range indices must not reach it
            batch: list[Architecture] | np.ndarray = self._checked_matrix(archs, activity=index is None)
        else:
            batch = [self.validate(a) for a in archs]
        flops = np.zeros(len(batch), np.int64)
        params = np.zeros(len(batch), np.int64)
        if not len(batch):
            return flops, params
        if index is None:
            slow = np.arange(len(batch))
        else:
            sums, bad = index.sums(batch)
            flops[:], params[:] = sums[:, 0], sums[:, 1]
            slow = np.flatnonzero(bad)
            if slow.size and isinstance(batch, np.ndarray):
                invalid = np.zeros(len(batch), dtype=bool)
                invalid[slow] = ~self.decision_table.valid(batch[slow])
                self._refuse_rows(invalid)
        if slow.size:
            lagging = (self.decision_table.to_archs(batch[slow]) if isinstance(batch, np.ndarray)
                       else [batch[i] for i in slow.tolist()])
            for i, arch in zip(slow.tolist(), lagging, strict=True):
                cost = self.complexity(arch, shape, classes)
                flops[i], params[i] = cost.flops, cost.params
        return flops, params

    def _complexity_index(self, input_shape: Shape, num_classes: int) -> VectorIndex | None:
        """The cached FLOPs/params :class:`VectorIndex` at this input, None if not vectorisable."""
        if not self._vectorisable:
            return None
        key = (input_shape, num_classes)
        index = self._complexity_indexes.get(key)
        if index is None:
            if len(self._complexity_indexes) >= self._INDEXES_MAX:
                self._complexity_indexes.pop(next(iter(self._complexity_indexes)))
            index = VectorIndex(self, input_shape, num_classes, layer_complexity, columns=2, dtype=np.int64)
            self._complexity_indexes[key] = index
        return index

    @functools.cached_property
    def _vectorisable(self) -> bool:
        return vectorisable(self)

    # features ------------------------------------------------------------------------
    @functools.cached_property
    def _encoding(self) -> tuple[str, Any]:
        if self.grammar.is_recursive:
            vocab = token_vocabulary(self.grammar)
            return "tokens", {tok: i for i, tok in enumerate(vocab)}
        offsets, pos = {}, 0
        for path, choices in decision_slots(self.grammar):
            offsets[path] = (pos, choices)
            pos += len(choices)
        return "onehot", (offsets, pos)

    @property
    def encoding_size(self) -> int:
        kind, data = self._encoding
        return data[1] if kind == "onehot" else len(data) + 2

    def encode(self, arch: Mapping[str, Any]) -> np.ndarray:
        """Fixed-length float32 features.

        Non-recursive spaces: one-hot per decision slot (zeros for unreached slots).
        Recursive spaces: counts of each (decision kind, value) token, the number of
        decisions and the deepest path.
        """
        arch = self.validate(arch)
        kind, data = self._encoding
        vec = np.zeros(self.encoding_size, dtype=np.float32)
        if kind == "onehot":
            offsets, _ = data
            for path, value in arch.items():
                start, choices = offsets[path]
                vec[start + choices.index(value)] = 1.0
            return vec
        _, rec = self._derive(ArchDecider(arch))
        for path, value in arch.items():
            k = rec.kinds[path]
            token = ("choice", value) if k == "choice" else (
                ("depth", value) if k == "depth" else (path.rsplit(".", 1)[-1], value))
            if token in data:
                vec[data[token]] += 1.0
        vec[-2] = len(arch)
        vec[-1] = max(p.count(".") for p in arch) + 1
        return vec

    @functools.cached_property
    def _slot_offsets(self) -> np.ndarray | None:
        table = self.decision_table
        kind, data = self._encoding
        if table is None or kind != "onehot":
            return None
        offsets, _ = data
        if any(offsets.get(p, (0, None))[1] != c for p, c in zip(table.paths, table.choices, strict=True)):
            return None  # a choice narrowed by the recursion bound: keep the per-arch encoding
        return np.array([offsets[p][0] for p in table.paths], dtype=np.int64)

    def encode_batch(self, archs: list[Mapping[str, Any]] | np.ndarray) -> np.ndarray:
        """:meth:`encode` of each architecture, shape (n, encoding_size).

        Decision-table spaces take the matrix path; an index matrix of the table
        (``space.decision_table``) may be passed directly.
        """
        offsets = self._slot_offsets
        if isinstance(archs, np.ndarray):
            if offsets is None:
                raise ArchitectureError(f"space {self.name!r} has no decision table: pass architectures")
            return self.decision_table.encode_batch(archs, offsets, self.encoding_size)
        archs = list(archs)
        if not archs:
            return np.zeros((0, self.encoding_size), np.float32)
        if offsets is not None:
            return self.decision_table.encode_batch(self.to_matrix(archs), offsets, self.encoding_size)
        return np.stack([self.encode(a) for a in archs])


@functools.lru_cache(maxsize=65536)
def layer_complexity(spec: LayerSpec) -> tuple[int, int]:
    """(FLOPs, params) of one layer, via fvcore on the built op (cached per LayerSpec)."""
    from fvcore.nn import FlopCountAnalysis, parameter_count

    module = get_op(spec.op).build(spec.in_shape, spec.param_dict).eval()
    params = int(parameter_count(module).get("", 0))
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad():
        analysis = FlopCountAnalysis(module, torch.zeros(1, *spec.in_shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        flops = int(analysis.total())
    return flops, params
