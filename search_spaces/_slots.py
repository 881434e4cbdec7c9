"""Decision slots of a non-recursive grammar: every path any derivation can reach.

One walk serves the decision table (batch sampling, mutation, crossover, index
matrices) and the one-hot encoding: slots are listed in derivation order, with
their choices and probabilities exactly as the derivation walk asks them (a
choice's alternatives filtered by the recursion budget), and with their
*controller*: the innermost :class:`~search_spaces.Choice` or
:class:`~search_spaces.Repeat` depth slot above them and its values under which
they are reached.

A grammar whose slots have no fixed controller (a shared rule referenced under
different conditions, one path reached under different conditions) still lists
its slots (the first visit wins, as in a derivation) but is not *compilable*:
:attr:`Slots.reason` says why.
"""

from __future__ import annotations

from search_spaces._cell import Cell, CellStack
from search_spaces._expr import Choice, Expr, Op, Parallel, Ref, Repeat, Residual, Seq, join
from search_spaces.grammar import Grammar

Control = tuple[int, frozenset[int]] | None
"""(controlling slot, indices of its values under which a slot is reached); None: always."""


class Slots:
    """The slots of a grammar, in derivation order (controllers before what they control).

    Attributes:
        paths, choices, probs, control: per slot.
        reason: why the slots do not form a decision table (``None``: they do).
    """

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        self.paths: list[str] = []
        self.choices: list[tuple] = []
        self.probs: list[tuple[float, ...] | None] = []
        self.control: list[Control] = []
        self.index: dict[str, int] = {}
        self.reason: str | None = None
        self._shared: dict[str, Control] = {}
        self.walk(grammar.rules[grammar.start], "", grammar.max_depth, None)

    def _refuse(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def add(self, path: str, choices: tuple, probs: tuple[float, ...] | None, ctrl: Control) -> int:
        if path in self.index:  # the walk asks again at a path: one decision, same rules
            s = self.index[path]
            if self.choices[s] != choices or self.control[s] != ctrl:
                self._refuse(f"path {path!r} is reached under different conditions")
            return s
        self.index[path] = len(self.paths)
        self.paths.append(path)
        self.choices.append(tuple(choices))
        self.probs.append(probs)
        self.control.append(ctrl)
        return self.index[path]

    def walk(self, e: Expr, path: str, budget: float, ctrl: Control) -> None:
        if isinstance(e, Op):
            for name, v in e.values:
                self.add(join(path, name), v.choices, v.probs, ctrl)
        elif isinstance(e, Choice):
            here = e.decision_path(path, self.grammar)
            options = e.options(self.grammar, budget)
            s = self.add(here, *Choice.decision(options), ctrl)
            for k, option in enumerate(options):
                self.walk(option.expr, join(here, option.label), budget, (s, frozenset([k])))
        elif isinstance(e, Repeat):
            depths = e.depth.choices
            s = self.add(e.depth_path(path), depths, e.depth.probs, ctrl)
            for k, (label, body) in enumerate(e.blocks(e.max_depth), start=1):
                allowed = frozenset(i for i, d in enumerate(depths) if d >= k)
                self.walk(body, join(path, label), budget,
                          ctrl if len(allowed) == len(depths) else (s, allowed))
        elif isinstance(e, Ref):
            self.ref(e, path, budget, ctrl)
        elif isinstance(e, Cell):
            for node in e.layout:
                if node.inputs is not None:
                    self.add(join(path, node.inputs), node.combos, None, ctrl)
                for label in node.edges:
                    self.walk(e.op, join(path, label), budget, ctrl)
        elif isinstance(e, Residual):
            self.walk(e.body, path, budget, ctrl)
        elif isinstance(e, (Seq, Parallel, CellStack)):
            for label, x in e.parts:
                self.walk(x, join(path, label), budget, ctrl)
        else:
            self._refuse(f"unknown expression {type(e).__name__}")

    def ref(self, e: Ref, path: str, budget: float, ctrl: Control) -> None:
        rule, where, left = e.resolve(self.grammar, path, budget)
        if e.shared:
            if e.rule in self._shared:  # derived once: its slots are listed already
                if self._shared[e.rule] != ctrl:
                    self._refuse(f"shared rule {e.rule!r} is reached under different conditions")
                return
            self._shared[e.rule] = ctrl
        self.walk(rule, where, left, ctrl)

