"""`SearchSpace`: a grammar plus everything downstream needs from it."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
from torch import nn

from search_spaces._complexity import Complexity, complexity_batch, layer_complexity
from search_spaces._count import count_architectures
from search_spaces._decisions import DecisionTable, compile_table
from search_spaces._encoding import Encoding
from search_spaces._realisable import Enumeration, realisable_layers
from search_spaces._registry import RngLike, as_generator
from search_spaces._slots import Slots
from search_spaces._vector import VectorIndex, vectorisable
from search_spaces.architecture import Architecture
from search_spaces.derivation import ArchDecider, FallbackDecider, RandomDecider, derive
from search_spaces.errors import ArchitectureError, SearchSpaceError
from search_spaces.grammar import Grammar
from search_spaces.layers import LayerSpec
from search_spaces.ops import Shape
from search_spaces.plan import PNode, compile_plan, plan, plan_graph, plan_layers

__all__ = ["Complexity", "SearchSpace", "layer_complexity"]


class _OptunaDecider:
    """Define-by-run: each decision becomes a categorical parameter named by its path."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def decide(self, path: str, choices: tuple, probs: tuple[float, ...] | None, kind: str) -> Any:
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
    ``numpy.random.Generator`` (or a seed). On spaces with a decision table the
    single-architecture operations are the batch operations with a batch of one
    (same seed, same result).
    """

    def __init__(self, grammar: Grammar, name: str = "custom", description: str = "",
                 input_shape: Shape = (3, 32, 32), num_classes: int = 10) -> None:
        self.grammar = grammar
        self.name = name
        self.description = description
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        if not self.input_shape or not all(isinstance(d, int) and d > 0 for d in self.input_shape):
            raise SearchSpaceError(f"input_shape: must be positive integers, got "
                                   f"{list(input_shape)}")
        if self.num_classes < 1:
            raise SearchSpaceError(f"num_classes: must be >= 1, got {num_classes}")
        self._plans = functools.lru_cache(maxsize=4096)(self._plan_uncached)
        # Keys of architectures this space derived itself (sample, mutate, crossover,
        # suggest, validate): members by construction, so validate() skips the walk.
        self._members: OrderedDict[str, None] = OrderedDict()
        # (input_shape, num_classes) -> VectorIndex of FLOPs and params (complexity_batch)
        self._complexity_indexes: dict[tuple[Shape, int], VectorIndex] = {}

    _MEMBERS_MAX = 200_000

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
    def sample(self, rng: RngLike = None) -> Architecture:
        """Draw an architecture following the grammar's probabilities (uniform by default)."""
        if self.decision_table is not None:
            return self.sample_batch(1, rng)[0]
        return self._member(derive(self, RandomDecider(as_generator(rng))).recorder.decisions)

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
        rec = derive(self, ArchDecider(arch)).recorder
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

    def mutate(self, arch: Mapping[str, Any], rng: RngLike = None, n: int = 1) -> Architecture:
        """Change one random decision that has other values, ``n`` times in a row; the
        decisions of a changed production are re-drawn (``n=0``: the arch unchanged)."""
        gen = as_generator(rng)
        arch = self.validate(arch)
        if n < 1:
            return arch
        table = self.decision_table
        if table is not None:
            return table.to_archs(table.mutate_batch(table.to_matrix([arch]), gen, n=n))[0]
        choices = derive(self, ArchDecider(arch)).recorder.choices
        proposal = dict(arch)
        for _ in range(n):
            mutable = [p for p, c in choices.items() if len(c) > 1]
            if not mutable:
                return arch
            path = mutable[int(gen.integers(len(mutable)))]
            options = [c for c in choices[path] if c != proposal.get(path)]
            proposal[path] = options[int(gen.integers(len(options)))]
            rec = derive(self, FallbackDecider(proposal, gen)).recorder
            proposal, choices = dict(rec.decisions), rec.choices
        return self._member(proposal)

    def crossover(self, a: Mapping[str, Any], b: Mapping[str, Any], rng: RngLike = None) -> Architecture:
        """Uniform crossover of decisions; the child is re-derived so it stays in the space."""
        if self.decision_table is not None:
            return self.crossover_batch([a], [b], rng)[0]
        gen = as_generator(rng)
        proposal = {}
        for path in sorted(set(a) | set(b)):
            if path in a and path in b:
                proposal[path] = a[path] if gen.random() < 0.5 else b[path]
            else:
                proposal[path] = a[path] if path in a else b[path]
        return self._member(derive(self, FallbackDecider(proposal, gen)).recorder.decisions)

    def suggest(self, trial: Any) -> Architecture:
        """Optuna define-by-run: every reached decision is a categorical parameter named by
        its path (tuple values, e.g. a cell node's inputs, as comma-joined strings)."""
        return self._member(derive(self, _OptunaDecider(trial)).recorder.decisions)

    def choices(self, arch: Mapping[str, Any]) -> dict[str, tuple]:
        """The allowed values at every decision the architecture reaches."""
        return dict(derive(self, ArchDecider(self.validate(arch))).recorder.choices)

    # batches -----------------------------------------------------------------------
    @functools.cached_property
    def _slots(self) -> Slots | None:
        return None if self.grammar.is_recursive else Slots(self.grammar)

    @functools.cached_property
    def decision_table(self) -> DecisionTable | None:
        """The compiled decision table of a grammar whose decisions form a fixed set of
        slots; ``None`` for grammars that do not compile (recursive ones): their batch
        methods loop over the single-arch ones."""
        return None if self._slots is None else compile_table(self.grammar, self._slots)

    def sample_batch(self, n: int, rng: RngLike = None) -> list[Architecture]:
        """``n`` samples (the decision table's batch draw when the space compiles one)."""
        gen = as_generator(rng)
        table = self.decision_table
        if table is None:
            return [self.sample(gen) for _ in range(n)]
        return table.to_archs(table.sample_batch(n, gen))

    def mutate_batch(self, archs: Sequence[Mapping[str, Any]], rng: RngLike = None) -> list[Architecture]:
        """One mutation of each architecture (batched :meth:`mutate`)."""
        gen = as_generator(rng)
        table = self.decision_table
        if table is None:
            return [self.mutate(a, gen) for a in archs]
        return table.to_archs(table.mutate_batch(self.to_matrix(archs), gen))

    def crossover_batch(self, a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]],
                        rng: RngLike = None) -> list[Architecture]:
        """Crossover of ``a[i]`` with ``b[i]`` (batched :meth:`crossover`)."""
        gen = as_generator(rng)
        table = self.decision_table
        if table is None:
            return [self.crossover(x, y, gen) for x, y in zip(a, b, strict=True)]
        return table.to_archs(table.crossover_batch(self.to_matrix(a), self.to_matrix(b), gen))

    def to_matrix(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
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

    # structure -------------------------------------------------------------------
    def _plan_uncached(self, arch: Architecture, input_shape: Shape, num_classes: int) -> PNode:
        return plan(derive(self, ArchDecider(arch)).tree, input_shape, num_classes)

    def plan(self, arch: Mapping[str, Any], input_shape: Shape | None = None,
             num_classes: int | None = None) -> PNode:
        """The shape-annotated derivation shared by build, layers and graph (cached; see
        :mod:`search_spaces.plan`)."""
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

    def realisable_layers(self, input_shape: Shape | None = None, num_classes: int | None = None,
                          method: str = "auto", n_samples: int = 2000,
                          rng: RngLike = None) -> Enumeration:
        """Every unique layer (:class:`LayerSpec`) the space's architectures can contain
        at ``input_shape``: the rows a latency table must profile.

        Args:
            input_shape, num_classes: default to the space's.
            method: ``"grammar"`` (one walk of the grammar over sets of shapes: a
                superset of every architecture's layers, exact for the built-in spaces),
                ``"sampled"`` (union over ``n_samples`` sampled architectures: may miss
                rare layers) or ``"auto"`` (grammar unless the grammar is recursive).
            n_samples: architectures to sample for ``"sampled"``.
            rng: generator or seed for sampling.

        Raises:
            SearchSpaceError: an unknown method, or ``"grammar"`` on a recursive grammar.
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        return realisable_layers(self, shape, int(num_classes or self.num_classes), method,
                                 n_samples, rng)

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
        return complexity_batch(self, archs, shape, int(num_classes or self.num_classes))

    @functools.cached_property
    def _vectorisable(self) -> bool:
        return vectorisable(self)

    # features ------------------------------------------------------------------------
    @functools.cached_property
    def _encoding(self) -> Encoding:
        return Encoding(self.grammar, self._slots)

    @property
    def encoding_size(self) -> int:
        return self._encoding.size

    def encode(self, arch: Mapping[str, Any]) -> np.ndarray:
        """Fixed-length float32 features.

        Non-recursive spaces: one-hot per decision slot (zeros for unreached slots).
        Recursive spaces: counts of each (decision kind, value) token, the number of
        decisions and the deepest path.
        """
        return self._encoding.encode(self.validate(arch))

    def encode_batch(self, archs: Sequence[Mapping[str, Any]] | np.ndarray) -> np.ndarray:
        """:meth:`encode` of each architecture, shape (n, encoding_size).

        Decision-table spaces take the matrix path; an index matrix of the table
        (``space.decision_table``) may be passed directly.
        """
        table, encoding = self.decision_table, self._encoding
        if isinstance(archs, np.ndarray):
            if table is None:
                raise ArchitectureError(f"space {self.name!r} has no decision table: pass architectures")
            return table.encode_batch(archs, encoding.offsets, encoding.size)
        archs = list(archs)
        if not archs:
            return np.zeros((0, encoding.size), np.float32)
        if table is not None:
            return table.encode_batch(self.to_matrix(archs), encoding.offsets, encoding.size)
        return np.stack([self.encode(a) for a in archs])
