"""Perturbation-based architecture selection ("Rethinking Architecture Selection in
Differentiable NAS", Wang et al., 2021): an op's importance is how much the supernet's
accuracy drops when that op alone is removed from its edge, not the size of its alpha."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from search_spaces import Architecture

__all__ = ["perturbation_select", "supernet_accuracy"]


@torch.no_grad()
def supernet_accuracy(net, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Accuracy of the (partly discretised) supernet on the batches, in eval mode."""
    was_training = net.training
    net.eval()
    correct = total = 0
    for x, y in batches:
        correct += int((net(x).argmax(1) == y).sum())
        total += len(y)
    net.train(was_training)
    return correct / max(total, 1)


def perturbation_select(net, batches: list[tuple[torch.Tensor, torch.Tensor]],
                        tune: Callable[[], None] | None, rng: np.random.Generator) -> Architecture:
    """Discretise ``net`` edge by edge (random order), then prune each node's inputs.

    Leaves the supernet discretised to the returned architecture; call
    ``net.reset_selection()`` to go back to the continuous relaxation.
    """
    net.reset_selection()
    order = [(k, e) for k, rule in enumerate(net.rules) for e in range(len(rule.edges))]
    for pos in rng.permutation(len(order)):
        k, e = order[pos]
        rule = net.rules[k]
        mask = getattr(net, f"op_mask{k}")
        candidates = [o for o in range(len(rule.labels))
                      if not (rule.in_degree is not None and rule.zero_ops[o])] or [0]
        if len(candidates) > 1:
            base = supernet_accuracy(net, batches)
            drops = []
            for o in candidates:
                mask[e, o] = 0.0
                drops.append(base - supernet_accuracy(net, batches))
                mask[e, o] = 1.0
            with torch.no_grad():  # ties go to the larger architecture weight
                weight = net.op_weights(k)[e].tolist()
            best = max(range(len(candidates)), key=lambda m: (drops[m], weight[candidates[m]]))
            net.fix_edge(k, e, candidates[best])
        else:
            net.fix_edge(k, e, candidates[0])
        if tune is not None:
            tune()
    for k, rule in enumerate(net.rules):
        if rule.in_degree is None:
            continue
        edge_mask = getattr(net, f"edge_mask{k}")
        for j in rule.cell.targets():
            active = [e for e, (t, _) in enumerate(rule.edges) if t == j]
            while len(active) > rule.in_degree:
                base = supernet_accuracy(net, batches)
                drops = []
                for e in active:
                    edge_mask[e] = 0.0
                    drops.append(base - supernet_accuracy(net, batches))
                    edge_mask[e] = 1.0
                weakest = active[int(np.argmin(drops))]
                edge_mask[weakest] = 0.0
                active.remove(weakest)
                if tune is not None:
                    tune()
    return net._argmax()
