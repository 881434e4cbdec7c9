"""Fixed-length features of architectures (``SearchSpace.encode``).

Non-recursive grammars: one-hot per decision slot (the slots of
:mod:`search_spaces._slots`, in derivation order; zeros for unreached slots).
Recursive grammars: counts of each (decision kind, value) token the grammar can
produce, the number of decisions and the deepest path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from search_spaces._expr import Choice, Expr, Op, Repeat
from search_spaces._slots import Slots
from search_spaces.derivation import ArchDecider, derive
from search_spaces.grammar import Grammar


class Encoding:
    """The feature layout of a grammar.

    Attributes:
        kind: ``"onehot"`` or ``"tokens"``.
        size: length of a feature vector.
        offsets: per slot, its first column (``"onehot"`` only; slot order of ``slots``).
    """

    def __init__(self, grammar: Grammar, slots: Slots | None) -> None:
        self.grammar = grammar
        self.offsets: np.ndarray | None = None
        if slots is None:
            self.kind = "tokens"
            self.tokens = {tok: i for i, tok in enumerate(token_vocabulary(grammar))}
            self.size = len(self.tokens) + 2
            return
        self.kind = "onehot"
        sizes = [len(c) for c in slots.choices]
        self.offsets = np.cumsum([0, *sizes])[:-1].astype(np.int64)
        self._slot = {p: (int(o), c) for p, o, c in zip(slots.paths, self.offsets, slots.choices,
                                                         strict=True)}
        self.size = int(sum(sizes))

    def encode(self, arch: Mapping[str, Any]) -> np.ndarray:
        """Features of one (validated) architecture."""
        vec = np.zeros(self.size, dtype=np.float32)
        if self.kind == "onehot":
            for path, value in arch.items():
                start, choices = self._slot[path]
                vec[start + choices.index(value)] = 1.0
            return vec
        kinds = derive(self.grammar, ArchDecider(arch)).recorder.kinds
        for path, value in arch.items():
            kind = kinds[path]
            token = (kind, value) if kind in ("choice", "depth") else (path.rsplit(".", 1)[-1], value)
            if token in self.tokens:
                vec[self.tokens[token]] += 1.0
        vec[-2] = len(arch)
        vec[-1] = max(p.count(".") for p in arch) + 1
        return vec


def token_vocabulary(grammar: Grammar) -> list[tuple[str, Any]]:
    """(kind, value) tokens a recursive grammar's decisions can take, for histogram features."""
    vocab: dict[tuple[str, Any], None] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, Op):
            for n, v in e.values:
                vocab.update({(n, c): None for c in v.choices})
        elif isinstance(e, Choice):
            vocab.update({("choice", label): None for label in e.labels})
        elif isinstance(e, Repeat):
            vocab.update({("depth", d): None for d in e.depth.choices})
        for c in e.children():
            walk(c)

    for name in sorted(grammar.reachable()):
        walk(grammar.rules[name])
    return list(vocab)
