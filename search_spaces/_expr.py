"""Grammar expressions and their semantics, each defined once.

An expression is immutable data. Besides its fields, each kind states here what
every walker of a grammar needs from it, so the walkers (derivation, decision
slots, counting, encoding, vectorised sums, realisable layers, planning) never
re-implement it:

* :meth:`Op.values`: the parameters that are decisions;
* :meth:`Choice.options`: the alternatives allowed under a recursion budget, with
  renormalised probabilities; :meth:`Choice.decision_path`;
* :meth:`Repeat.blocks`: the copies of a repeat and their labels;
* :meth:`Ref.resolve`: the rule a reference derives, at which path and budget;
* ``Cell`` (in ``search_spaces._cell``): the decisions of each intermediate node
  (``Cell.layout``), which edges reduce resolution (``Cell.reduces``), how inputs
  are brought to the cell's width (``Cell.preprocess``) and the shapes it makes.

Paths are joined with :func:`join` everywhere.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from search_spaces.errors import GrammarError

if TYPE_CHECKING:
    from search_spaces.grammar import Grammar

__all__ = [
    "Choice",
    "Expr",
    "Op",
    "Option",
    "Parallel",
    "Ref",
    "Repeat",
    "Residual",
    "Seq",
    "Value",
    "join",
]

def join(prefix: str, label: str) -> str:
    """The dotted path of ``label`` under ``prefix`` (the root prefix is ``""``)."""
    return f"{prefix}.{label}" if prefix else label


def _probs(probs: Sequence[float] | None, n: int, where: str) -> tuple[float, ...] | None:
    if probs is None:
        return None
    probs = tuple(float(p) for p in probs)
    if len(probs) != n:
        raise GrammarError(f"{where}: {len(probs)} probabilities for {n} alternatives")
    if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, rel_tol=1e-6):
        raise GrammarError(f"{where}: probabilities must be >= 0 and sum to 1, got {probs}")
    return probs


def _labelled(items: Sequence[Any] | Mapping[str, Any], where: str) -> tuple[tuple[str, Expr], ...]:
    """Turn a mapping or a sequence of expressions into (label, expr) pairs."""
    if isinstance(items, Mapping):
        pairs = tuple(items.items())
    else:
        pairs = tuple((_default_label(e, i), e) for i, e in enumerate(items))
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise GrammarError(f"{where}: labels must be unique, got {labels}")
    for label, expr in pairs:
        if not isinstance(label, str) or not label or "." in label:
            raise GrammarError(f"{where}: labels must be non-empty strings without dots, got {label!r}")
        if not isinstance(expr, Expr):
            raise GrammarError(f"{where}: {label!r} is {type(expr).__name__}, not a grammar expression")
    return pairs


def _default_label(expr: Any, index: int) -> str:
    if isinstance(expr, Op):
        return expr.name
    if isinstance(expr, Ref):
        return expr.rule
    return str(index)


class Expr:
    """Base class of grammar expressions (immutable)."""

    __slots__ = ()

    def children(self) -> tuple[Expr, ...]:
        """Direct sub-expressions."""
        return ()


@dataclass(frozen=True)
class Value(Expr):
    """A categorical value decision (an op hyper-parameter, a resolution...).

    Args:
        choices: allowed values (JSON scalars or tuples of them).
        probs: optional sampling probabilities.
    """

    choices: tuple
    probs: tuple[float, ...] | None = None

    def __init__(self, choices: Sequence[Any], probs: Sequence[float] | None = None) -> None:
        choices = tuple(tuple(c) if isinstance(c, list) else c for c in choices)
        if not choices:
            raise GrammarError("Value: empty choice list")
        if len(set(choices)) != len(choices):
            raise GrammarError(f"Value: duplicate choices in {choices}")
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "probs", _probs(probs, len(choices), "Value"))


@dataclass(frozen=True)
class Op(Expr):
    """A terminal: a registered op with parameters (constants or :class:`Value`)."""

    name: str
    params: tuple[tuple[str, Any], ...]

    def __init__(self, name: str, **params: Any) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", tuple(params.items()))

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @functools.cached_property
    def values(self) -> tuple[tuple[str, Value], ...]:
        """The parameters that are decisions, as (name, Value), in declaration order;
        each is decided at ``join(path, name)``."""
        return tuple((n, v) for n, v in self.params if isinstance(v, Value))

    @functools.cached_property
    def constants(self) -> dict[str, Any]:
        """The parameters fixed by the grammar."""
        return {n: v for n, v in self.params if not isinstance(v, Value)}


@dataclass(frozen=True)
class Seq(Expr):
    """Sequential composition. Positional items are labelled by op/rule name or index;
    keyword items by their keyword (``Seq(stem=..., stage1=...)``)."""

    items: tuple[tuple[str, Expr], ...]

    def __init__(self, *items: Expr, **named: Expr) -> None:
        if items and named:
            raise GrammarError("Seq: give items either all positionally or all by keyword")
        pairs = _labelled(named if named else list(items), "Seq")
        if not pairs:
            raise GrammarError("Seq: empty sequence")
        object.__setattr__(self, "items", pairs)

    def children(self) -> tuple[Expr, ...]:
        return tuple(e for _, e in self.items)

    @property
    def parts(self) -> tuple[tuple[str, Expr], ...]:
        """The labelled sub-expressions; each is derived at ``join(path, label)``."""
        return self.items


class Option(NamedTuple):
    """One alternative of a :class:`Choice` allowed under a recursion budget."""

    label: str
    expr: Expr
    prob: float | None  # renormalised over the allowed alternatives; None: uniform


@dataclass(frozen=True)
class Choice(Expr):
    """A categorical choice among productions; the decision value is the label.

    Alternatives may be a mapping ``{label: expr}`` or a sequence (ops and rule
    references are labelled by their names). Decisions inside the chosen
    alternative live under ``<path>.<label>``.
    """

    alternatives: tuple[tuple[str, Expr], ...]
    probs: tuple[float, ...] | None = None

    def __init__(self, alternatives: Sequence[Expr] | Mapping[str, Expr],
                 probs: Sequence[float] | None = None) -> None:
        pairs = _labelled(alternatives, "Choice")
        if not pairs:
            raise GrammarError("Choice: empty choice (no alternatives)")
        object.__setattr__(self, "alternatives", pairs)
        object.__setattr__(self, "probs", _probs(probs, len(pairs), "Choice"))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.alternatives)

    def children(self) -> tuple[Expr, ...]:
        return tuple(e for _, e in self.alternatives)

    @staticmethod
    def decision_path(path: str, grammar: Grammar) -> str:
        """Where the choice is decided: its path, or the start rule's name at the root.
        The chosen alternative's decisions live under ``join(decision_path, label)``."""
        return path or grammar.start

    def options(self, grammar: Grammar, budget: float) -> tuple[Option, ...]:
        """The alternatives that can still finish within ``budget`` nested rule
        references (``grammar.min_depth(alt) <= budget``), in grammar order, with
        their probabilities renormalised over the allowed ones (``None``: uniform)."""
        allowed = [(label, e, p) for (label, e), p in
                   zip(self.alternatives, self.probs or (None,) * len(self.alternatives))
                   if grammar.min_depth(e) <= budget]
        total = sum(p for _, _, p in allowed) if self.probs is not None else 0.0
        if total <= 0:
            return tuple(Option(label, e, None) for label, e, _ in allowed)
        return tuple(Option(label, e, p / total) for label, e, p in allowed)

    @staticmethod
    def decision(options: Sequence[Option]) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
        """The (choices, probs) of the choice decision over ``options``."""
        labels = tuple(o.label for o in options)
        if not options or options[0].prob is None:
            return labels, None
        return labels, tuple(o.prob for o in options)


@dataclass(frozen=True)
class Repeat(Expr):
    """``depth`` copies of ``body`` in sequence (a depth decision at ``<path>.depth``).

    Args:
        body: the repeated expression; copies are labelled ``<label>1``, ``<label>2``...
        depth: allowed counts (a sequence, a :class:`Value`, or a fixed int).
        first: optional different expression for the first copy (e.g. a strided block).
        label: prefix of the copies' labels.
    """

    body: Expr
    depth: Value
    first: Expr | None = None
    label: str = "block"

    def __init__(self, body: Expr, depth: Sequence[int] | Value | int, first: Expr | None = None,
                 label: str = "block") -> None:
        if isinstance(depth, int):
            depth = Value([depth])
        elif not isinstance(depth, Value):
            depth = Value(list(depth))
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in depth.choices):
            raise GrammarError(f"Repeat: depths must be non-negative ints, got {depth.choices}")
        for name, e in (("body", body), ("first", first)):
            if e is not None and not isinstance(e, Expr):
                raise GrammarError(f"Repeat: {name} is {type(e).__name__}, not a grammar expression")
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "first", first)
        object.__setattr__(self, "label", label)

    def children(self) -> tuple[Expr, ...]:
        return (self.body,) if self.first is None else (self.body, self.first)

    @staticmethod
    def depth_path(path: str) -> str:
        """Where the depth is decided."""
        return join(path, "depth")

    @property
    def max_depth(self) -> int:
        return max(self.depth.choices)

    def blocks(self, depth: int) -> tuple[tuple[str, Expr], ...]:
        """The first ``depth`` copies as (label, expr): ``first`` (when given) then ``body``;
        copy ``k`` (from 1) is reached when the depth decision is at least ``k``."""
        return tuple((f"{self.label}{i + 1}", self.first if i == 0 and self.first is not None
                      else self.body) for i in range(depth))


@dataclass(frozen=True)
class Ref(Expr):
    """A reference to a grammar rule (a nonterminal).

    With ``shared=True`` the rule is derived once, at the path named after the rule,
    and every shared reference reuses that derivation (cells repeated through a
    network with one genotype, as in NAS-Bench-201 and DARTS).
    """

    rule: str
    shared: bool = False

    def resolve(self, grammar: Grammar, path: str, budget: float) -> tuple[Expr, str, float]:
        """The referenced rule's expression, the path it is derived at (the rule's name
        when shared, else ``path``) and the remaining budget (one reference used)."""
        return grammar.rules[self.rule], (self.rule if self.shared else path), budget - 1


@dataclass(frozen=True)
class Residual(Expr):
    """``x + body(x)``; the body must keep the shape."""

    body: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.body,)


@dataclass(frozen=True)
class Parallel(Expr):
    """Branches applied to the same input and merged.

    Args:
        branches: labelled expressions (mapping or sequence).
        merge: ``"add"`` (shapes must match) or ``"concat"`` (along channels).
        split: route a channel split: branch i gets the i-th equal slice of the channels.
    """

    branches: tuple[tuple[str, Expr], ...]
    merge: str = "add"
    split: bool = False

    def __init__(self, branches: Sequence[Expr] | Mapping[str, Expr], merge: str = "add",
                 split: bool = False) -> None:
        if merge not in ("add", "concat"):
            raise GrammarError(f"Parallel: merge must be 'add' or 'concat', got {merge!r}")
        pairs = _labelled(branches, "Parallel")
        if len(pairs) < 2:
            raise GrammarError("Parallel: needs at least two branches")
        object.__setattr__(self, "branches", pairs)
        object.__setattr__(self, "merge", merge)
        object.__setattr__(self, "split", split)

    def children(self) -> tuple[Expr, ...]:
        return tuple(e for _, e in self.branches)

    @property
    def parts(self) -> tuple[tuple[str, Expr], ...]:
        """The labelled sub-expressions; each is derived at ``join(path, label)``."""
        return self.branches
