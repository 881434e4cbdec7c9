"""Mixed ops and searchable cells: the continuous relaxation of a cell's edges.

A :class:`MixedOp` returns ``sum_k w_k op_k(x)``. With partial channels (PC-DARTS,
K > 1) only the first C/K channels go through the ops; the rest bypass them
(max-pooled on strided edges) and a channel shuffle mixes the two parts so the next
edge samples other channels. A :class:`MixedCell` connects every predecessor of
each node with a mixed op; with edge normalisation a node's incoming edges are
further weighted by a softmax over per-edge parameters (beta).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.plan import compile_plan
from supernets._darts.relax import CellRule, EdgeCandidates

__all__ = ["MixedCell", "MixedOp", "WeightContext", "channel_shuffle"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: (N, g*c, H, W) -> (N, c*g, H, W)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedOp(nn.Module):
    """Weighted sum of candidate ops on one edge.

    Args:
        candidates: one module per op label (built on C/K channels when ``partial_channels`` > 1).
        partial_channels: K of PC-DARTS (1: plain DARTS).
        stride: the edge's stride (the bypassed channels are max-pooled when 2).
    """

    def __init__(self, candidates: list[nn.Module], partial_channels: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.partial_channels = partial_channels
        self.stride = stride

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``weights``: (num candidates,); exact zeros skip their op (masked candidates)."""
        k = self.partial_channels
        sample, rest = (x, None) if k == 1 else x.split([x.shape[1] // k, x.shape[1] - x.shape[1] // k], 1)
        active = [i for i, w in enumerate(weights.detach().tolist()) if w != 0.0]
        if not active:  # every candidate masked: the edge carries nothing
            out = self.candidates[0](sample) * 0.0
        else:
            out = sum(weights[i] * self.candidates[i](sample) for i in active)
        if rest is None:
            return out
        if self.stride != 1:
            rest = F.max_pool2d(rest, 2, 2, ceil_mode=True)
        return channel_shuffle(torch.cat([out, rest], dim=1), k)


class WeightContext:
    """Per forward pass: the op weights (E, ops) and edge weights (E,) of each cell rule.

    The supernet fills it before running the network; every cell instance of a rule
    reads its rule's entry, so shared cells share architecture parameters.
    """

    def __init__(self) -> None:
        self.op_weights: list[torch.Tensor] = []
        self.edge_weights: list[torch.Tensor] = []


class MixedCell(nn.Module):
    """A searchable cell instance: preprocessing of its inputs, then mixed edges.

    Args:
        rule: the cell rule (shape, labels).
        rule_index: index of the rule's weights in the :class:`WeightContext`.
        preprocess: modules bringing each input to the cell's width and resolution.
        edges: the planned candidates of each edge (see ``relax.plan_edges``).
        output: "last" or "concat" (of the intermediate nodes).
        context: shared weight context.
        partial_channels: K of PC-DARTS.
    """

    def __init__(self, rule: CellRule, rule_index: int, preprocess: list[nn.Module],
                 edges: list[EdgeCandidates], output: str, context: WeightContext,
                 partial_channels: int = 1) -> None:
        super().__init__()
        self.rule_index = rule_index
        self.inputs = rule.inputs
        self.pre = nn.ModuleList(preprocess)
        self.specs = [e.specs for e in edges]
        self.edges = nn.ModuleList(
            MixedOp([compile_plan(p) for p in e.plans], partial_channels,
                    2 if rule.cell.reduces(e.source) else 1)
            for e in edges
        )
        self.output = output
        self.targets = rule.cell.targets()
        self._context = [context]  # a list: keep the context out of the module tree

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        ctx = self._context[0]
        op_w = ctx.op_weights[self.rule_index]  # (E, ops)
        edge_w = ctx.edge_weights[self.rule_index]  # (E,)
        states = [pre(x) for pre, x in zip(self.pre, inputs, strict=False)]
        e = 0
        for j in self.targets:
            total = None
            for src in range(j):  # edges are ordered by target, then source
                if edge_w[e].item() != 0.0:  # zero: a removed edge (topology selection)
                    term = edge_w[e] * self.edges[e](states[src], op_w[e])
                    total = term if total is None else total + term
                e += 1
            if total is None:
                total = self.edges[e - 1](states[j - 1], op_w[e - 1]) * 0.0
            states.append(total)
        if self.output == "last":
            return states[-1]
        return torch.cat(states[self.inputs:], dim=1)
