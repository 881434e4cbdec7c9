"""`DartsSupernet`: a search space's cells relaxed into mixed ops with architecture weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from search_spaces import Architecture, LayerSpec, SearchSpace
from search_spaces.derivation import join
from search_spaces.plan import (
    CellStackModule,
    ParallelModule,
    PCell,
    PCellStack,
    PNode,
    PParallel,
    PResidual,
    PSeq,
    ResidualModule,
    compile_plan,
)
from supernets._darts.mixed import MixedCell, WeightContext
from supernets._darts.relax import CellRule, analyse_space, plan_edges
from supernets.errors import SupernetError

__all__ = ["DartsSupernet", "LatencyLookup"]

DERIVE_METHODS = ("argmax", "perturbation")


class LatencyLookup(Protocol):
    """Anything with ``lookup(spec) -> milliseconds`` (e.g. ``hardware.LatencyTable``)."""

    def lookup(self, spec: LayerSpec) -> float: ...


class DartsSupernet(nn.Module):
    """The continuous relaxation of a cell search space (DARTS / PC-DARTS).

    Every edge of every searchable cell is a mixed op over the cell's op choice,
    weighted by ``softmax(alpha)``; one alpha matrix (edges x ops) per cell rule, so
    cells that share a rule (``Ref(..., shared=True)``) share their architecture
    parameters while keeping their own weights. Build with :meth:`from_space`.

    Attributes:
        space: the search space.
        rules: the searchable cell rules (one alpha / beta set each).
        alpha, beta: architecture parameters per rule: (edges, ops) and (edges,).
    """

    def __init__(self, space: SearchSpace, rules: list[CellRule], plan: PNode, num_classes: int,
                 partial_channels: int, edge_normalization: bool, generator: torch.Generator) -> None:
        super().__init__()
        self.space = space
        self.rules = rules
        self.num_classes = num_classes
        self.input_shape = tuple(plan.in_shape)
        self.partial_channels = partial_channels
        self.edge_normalization = edge_normalization
        self._context = WeightContext()
        self._index = {r.path: k for k, r in enumerate(rules)}
        self.cells: list[MixedCell] = []
        self.net = self._compile(plan)
        self.alpha = nn.ParameterList(
            nn.Parameter(1e-3 * torch.randn(len(r.edges), len(r.labels), generator=generator))
            for r in rules
        )
        self.beta = nn.ParameterList(
            nn.Parameter(1e-3 * torch.randn(len(r.edges), generator=generator)) for r in rules
        )
        for k, r in enumerate(rules):  # selection state of perturbation-based derivation
            self.register_buffer(f"op_mask{k}", torch.ones(len(r.edges), len(r.labels)), persistent=False)
            self.register_buffer(f"fixed{k}", torch.zeros(len(r.edges), dtype=torch.bool), persistent=False)
            self.register_buffer(f"edge_mask{k}", torch.ones(len(r.edges)), persistent=False)
        self._latency: list[torch.Tensor] | None = None

    # construction ------------------------------------------------------------------
    @staticmethod
    def check_space(space: SearchSpace) -> list[CellRule]:
        """Check, without building weights, that DARTS can relax ``space``.

        Returns:
            The searchable cell rules (one set of architecture weights each).

        Raises:
            SupernetError: nothing to relax, or a decision DARTS cannot relax (named).
        """
        return analyse_space(space)[1]

    @classmethod
    def from_space(cls, space: SearchSpace, num_classes: int | None = None,
                   input_shape: tuple[int, ...] | None = None, partial_channels: int = 1,
                   edge_normalization: bool | None = None, seed: int = 0) -> DartsSupernet:
        """Relax every categorical op choice on the cell edges of ``space``.

        Args:
            space: a cell space (e.g. ``nb201``, ``darts``, or a user's own).
            num_classes, input_shape: default to the space's.
            partial_channels: K of PC-DARTS (1: plain DARTS).
            edge_normalization: weight each node's incoming edges by a softmax over beta;
                defaults to on with partial channels (as PC-DARTS), off otherwise.
            seed: initial weights and alphas (the global RNG is left untouched).

        Raises:
            SupernetError: the space has nothing DARTS can relax, or a decision it cannot.
        """
        if not isinstance(partial_channels, int) or partial_channels < 1:
            raise SupernetError(f"partial_channels must be an int >= 1, got {partial_channels!r}")
        reference, rules = analyse_space(space)
        num_classes = int(num_classes or space.num_classes)
        shape = tuple(input_shape) if input_shape is not None else space.input_shape
        plan = space.plan(reference, shape, num_classes)
        if edge_normalization is None:
            edge_normalization = partial_channels > 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # module initialisers draw from the global RNG
            gen = torch.Generator().manual_seed(seed)
            return cls(space, rules, plan, num_classes, partial_channels, bool(edge_normalization), gen)

    def _compile(self, p: PNode) -> nn.Module:
        if isinstance(p, PCell) and p.path in self._index:
            k = self._index[p.path]
            edges = plan_edges(self.rules[k], p, self.num_classes, self.partial_channels)
            cell = MixedCell(self.rules[k], k, [compile_plan(x) for x in p.preprocess], edges,
                             p.output, self._context, self.partial_channels)
            self.cells.append(cell)
            return cell
        if isinstance(p, PSeq):
            return nn.Sequential(*(self._compile(c) for c in p.children))
        if isinstance(p, PResidual):
            return ResidualModule(self._compile(p.body))
        if isinstance(p, PParallel):
            return ParallelModule([self._compile(b) for b in p.branches], p.merge, p.split)
        if isinstance(p, PCellStack):
            return CellStackModule([self._compile(c) for c in p.cells])
        return compile_plan(p)

    # parameters ----------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (alphas, and betas with edge normalisation)."""
        return [*self.alpha, *(self.beta if self.edge_normalization else [])]

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights (everything but the architecture parameters)."""
        arch = {id(p) for p in [*self.alpha, *self.beta]}
        return [p for p in self.parameters() if id(p) not in arch]

    def op_weights(self, k: int) -> torch.Tensor:
        """Op weights of rule ``k``: softmax(alpha) (E, ops), with the selection masks applied."""
        mask, fixed = getattr(self, f"op_mask{k}"), getattr(self, f"fixed{k}")
        w = torch.softmax(self.alpha[k], dim=-1) * mask
        return torch.where(fixed[:, None], mask, w)

    def edge_weights(self, k: int) -> torch.Tensor:
        """Edge weights of rule ``k`` (E,): softmax of beta over each node's inputs, or ones."""
        rule, mask = self.rules[k], getattr(self, f"edge_mask{k}")
        if not self.edge_normalization:
            return mask
        parts, start = [], 0
        for j in rule.cell.targets():
            parts.append(torch.softmax(self.beta[k][start:start + j], dim=0))
            start += j
        return torch.cat(parts) * mask

    def alphas(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{cell rule: {edge: {op label: weight}}}``: the current softmax op weights."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        with torch.no_grad():
            for k, rule in enumerate(self.rules):
                w = self.op_weights(k).tolist()
                out[rule.path] = {rule.edge_name(j, i): dict(zip(rule.labels, row, strict=False))
                                  for (j, i), row in zip(rule.edges, w, strict=False)}
        return out

    def edge_strengths(self) -> dict[str, dict[str, float]]:
        """``{cell rule: {edge: strength}}``: largest non-zero op weight x edge weight."""
        out = {}
        with torch.no_grad():
            for k, rule in enumerate(self.rules):
                strength, _ = self._best_ops(k)
                out[rule.path] = {rule.edge_name(j, i): s for (j, i), s in zip(rule.edges, strength, strict=False)}
        return out

    # forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *input_shape) -> (N, num_classes) logits of the mixed network."""
        self._context.op_weights = [self.op_weights(k) for k in range(len(self.rules))]
        self._context.edge_weights = [self.edge_weights(k) for k in range(len(self.rules))]
        return self.net(x)

    # latency ---------------------------------------------------------------------------
    def set_latency_table(self, table: LatencyLookup | None) -> None:
        """Look up every candidate layer of every cell instance once (``None`` clears)."""
        if table is None:
            self._latency = None
            return
        per_rule = [torch.zeros(len(r.edges), len(r.labels), dtype=torch.float64) for r in self.rules]
        for cell in self.cells:
            for e, specs in enumerate(cell.specs):
                per_rule[cell.rule_index][e] += torch.tensor([float(table.lookup(s)) for s in specs],
                                                             dtype=torch.float64)
        self._latency = [t.float() for t in per_rule]

    def expected_latency(self, table: LatencyLookup | None = None) -> torch.Tensor:
        """Differentiable expected latency (ms) of the cells: sum over mixed ops of softmax
        weights x table latency of each candidate (FBNet). Layers outside the searchable
        cells are the same for every architecture and are left out."""
        if table is not None:
            self.set_latency_table(table)
        if self._latency is None:
            raise SupernetError("no latency table: pass one or call set_latency_table(table)")
        return sum((w * lat.to(w.device)).sum() for k, lat in enumerate(self._latency)
                   for w in (self.op_weights(k),))

    # derivation --------------------------------------------------------------------------
    def _best_ops(self, k: int) -> tuple[list[float], list[int]]:
        """Per edge of rule k: (strength, best non-zero op), from the current weights."""
        rule = self.rules[k]
        w = self.op_weights(k).detach()
        ew = self.edge_weights(k).detach()
        zero = torch.tensor(rule.zero_ops)
        if rule.in_degree is not None and not bool(zero.all()):
            w = w.masked_fill(zero, -1.0)
        best = w.argmax(dim=1)
        strength = w.gather(1, best[:, None])[:, 0] * ew
        strength = strength.masked_fill(ew == 0, -float("inf"))
        return strength.tolist(), best.tolist()

    def _argmax(self) -> Architecture:
        decisions: dict[str, Any] = {}
        for k, rule in enumerate(self.rules):
            strength, best = self._best_ops(k)
            edges = list(enumerate(rule.edges))
            for node in rule.cell.layout:
                into = {i: e for e, (t, i) in edges if t == node.index}
                picked = None
                if node.inputs is not None:  # the k strongest edges, in source order
                    ranked = sorted(into, key=lambda i: (-strength[into[i]], i))[:rule.in_degree]
                    picked = tuple(sorted(ranked))
                    decisions[join(rule.path, node.inputs)] = picked
                for source, label in node.wiring(picked):
                    decisions[join(rule.path, label)] = rule.labels[best[into[source]]]
        return self.space.validate(Architecture(decisions))

    def derive(self, method: str = "argmax", data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
               tune: Callable[[], None] | None = None, seed: int = 0) -> Architecture:
        """Discretise the supernet into an architecture of its space.

        Args:
            method: ``"argmax"``: per edge the op of largest weight; for cells that keep k
                inputs per node, the k edges of largest strength (largest non-zero op
                weight x edge weight). ``"perturbation"``: per edge, remove each op in turn
                and keep the one whose removal lowers the supernet's accuracy on ``data``
                most; then drop, per node, the edges whose removal hurts least until k
                remain (Wang et al., 2021).
            data: (inputs, labels) batches for perturbation-based selection.
            tune: called after each discretisation step (e.g. a few weight updates).
            seed: order in which perturbation visits the edges.

        Returns:
            A validated :class:`~search_spaces.Architecture` of ``self.space``. After
            perturbation-based selection the supernet is left discretised to it (and its
            weights retuned by ``tune``); ``reset_selection()`` restores the relaxation.
        """
        if method not in DERIVE_METHODS:
            raise SupernetError(f"unknown derivation method {method!r}; valid: {', '.join(DERIVE_METHODS)}")
        if method == "argmax":
            return self._argmax()
        if data is None:
            raise SupernetError("derive(method='perturbation') needs data: (inputs, labels) batches")
        from supernets._darts.perturb import perturbation_select

        return perturbation_select(self, list(data), tune, np.random.default_rng(seed))

    # selection state ----------------------------------------------------------------------
    def fix_edge(self, k: int, edge: int, op: int) -> None:
        """Discretise one edge of rule k to one op (its weight becomes 1, the others 0)."""
        mask = getattr(self, f"op_mask{k}")
        mask[edge] = 0.0
        mask[edge, op] = 1.0
        getattr(self, f"fixed{k}")[edge] = True

    def reset_selection(self) -> None:
        """Undo every fixed edge and removed op or edge (back to the continuous supernet)."""
        for k in range(len(self.rules)):
            getattr(self, f"op_mask{k}").fill_(1.0)
            getattr(self, f"fixed{k}").fill_(False)
            getattr(self, f"edge_mask{k}").fill_(1.0)

    def describe(self) -> Mapping[str, Any]:
        """Plain summary: rules, edges, ops, K, parameter counts."""
        return {
            "space": self.space.name, "fingerprint": self.space.fingerprint,
            "partial_channels": self.partial_channels, "edge_normalization": self.edge_normalization,
            "rules": {r.path: {"edges": len(r.edges), "ops": list(r.labels), "in_degree": r.in_degree,
                               "instances": sum(c.rule_index == k for c in self.cells)}
                      for k, r in enumerate(self.rules)},
            "weights": sum(p.numel() for p in self.weight_parameters()),
        }
