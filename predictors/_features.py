"""Architecture features for predictors: the space's encoding, graph and complexity features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from predictors.errors import PredictorError
from search_spaces import SearchSpace, list_ops

__all__ = ["ArchFeaturizer", "free_statistics"]


class ArchFeaturizer:
    """Turns architectures into fixed-length float vectors.

    Features are ``space.encode(arch)`` followed, when ``graph=True``, by
    features of ``space.graph(arch)``: a count of op nodes per registered op,
    the numbers of nodes, edges and merge nodes, and the longest path length;
    when ``numeric=True``, by the value of each numeric decision slot divided by
    its largest choice (0 where the slot is not reached), so that a linear or
    kernel model sees "larger kernel / expand / depth" as one direction instead
    of unrelated one-hot bits; when ``complexity=True``, by log FLOPs and log
    params (``space.complexity``).

    Args:
        space: the search space the architectures belong to.
        graph: append graph features.
        input_shape: input shape for graph and complexity features (default: the space's).
        num_classes: classes for graph and complexity features (default: the space's).
        op_vocab: op names counted by the graph features (default: every registered op).
        numeric: append scaled values of the numeric decision slots (spaces with a
            decision table only; ignored otherwise).
        complexity: append log FLOPs and log params.
    """

    def __init__(self, space: SearchSpace, graph: bool = False,
                 input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 op_vocab: Sequence[str] | None = None, numeric: bool = False,
                 complexity: bool = False) -> None:
        self.space = space
        self.graph = bool(graph)
        self.input_shape = tuple(input_shape) if input_shape is not None else space.input_shape
        self.num_classes = int(num_classes or space.num_classes)
        self.op_vocab = list(op_vocab) if op_vocab is not None else list_ops()
        self.complexity = bool(complexity)
        self.numeric = bool(numeric)
        self._numeric_slots: list[tuple[int, np.ndarray]] = []
        table = space.decision_table if self.numeric else None
        if table is not None:
            for slot, choices in enumerate(table.choices):
                if choices and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
                    values = np.asarray(choices, float)
                    scale = np.abs(values).max() or 1.0
                    self._numeric_slots.append((slot, values / scale))

    @property
    def size(self) -> int:
        """Length of a feature vector."""
        return (self.space.encoding_size + (len(self.op_vocab) + 4 if self.graph else 0)
                + len(self._numeric_slots) + (2 if self.complexity else 0))

    def _numeric_features(self, archs: list[Any]) -> np.ndarray:
        index = self.space.to_matrix(archs)  # (n, slots), -1 where not reached
        out = np.zeros((len(archs), len(self._numeric_slots)), np.float32)
        for j, (slot, values) in enumerate(self._numeric_slots):
            reached = index[:, slot] >= 0
            out[reached, j] = values[index[reached, slot]]
        return out

    def _complexity_features(self, archs: list[Any]) -> np.ndarray:
        costs = [self.space.complexity(a, self.input_shape, self.num_classes) for a in archs]
        return np.log1p(np.array([[c.flops, c.params] for c in costs], float)).astype(np.float32)

    def _graph_features(self, arch: Any) -> np.ndarray:
        g = self.space.graph(arch, self.input_shape, self.num_classes)
        counts = np.zeros(len(self.op_vocab) + 4, dtype=np.float32)
        index = {op: i for i, op in enumerate(self.op_vocab)}
        merges = 0
        for _, data in g.nodes(data=True):
            if data.get("kind") == "op" and data["op"] in index:
                counts[index[data["op"]]] += 1
            elif data.get("kind") in ("add", "concat"):
                merges += 1
        n = len(self.op_vocab)
        counts[n:] = (g.number_of_nodes(), g.number_of_edges(), merges,
                      nx.dag_longest_path_length(g))
        return counts

    def transform(self, archs: Sequence[Any]) -> np.ndarray:
        """Features of each architecture: an ``(n, size)`` float32 array."""
        archs = list(archs)
        if not archs:
            return np.zeros((0, self.size), np.float32)
        # batched (the decision table's matrix path where the space has one)
        parts = [self.space.encode_batch(archs).astype(np.float32)]
        if self.graph:
            parts.append(np.stack([self._graph_features(a) for a in archs]).astype(np.float32))
        if self._numeric_slots:
            parts.append(self._numeric_features(archs))
        if self.complexity:
            parts.append(self._complexity_features(archs))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def config(self) -> dict[str, Any]:
        """JSON-able description, stored with saved predictors."""
        return {"space": self.space.name, "fingerprint": self.space.fingerprint,
                "encoding_size": self.space.encoding_size, "graph": self.graph,
                "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "op_vocab": self.op_vocab, "numeric": self.numeric, "complexity": self.complexity}

    @classmethod
    def from_config(cls, space: SearchSpace, config: dict[str, Any]) -> ArchFeaturizer:
        """Rebuild a featurizer; refuses a space whose grammar differs from the saved one."""
        if config["fingerprint"] != space.fingerprint:
            raise PredictorError(
                f"predictor was fitted on space {config['space']!r} with fingerprint "
                f"{config['fingerprint']}, but got space {space.name!r} with fingerprint "
                f"{space.fingerprint} (same name and options are needed)")
        return cls(space, config["graph"], config["input_shape"], config["num_classes"],
                   config["op_vocab"], config.get("numeric", False), config.get("complexity", False))


def free_statistics(space: SearchSpace, archs: Sequence[Any], input_shape: Sequence[int] | None = None,
                    num_classes: int | None = None, latency: Any = None) -> tuple[np.ndarray, list[str]]:
    """Statistics that cost no training: log FLOPs, log params and optionally log latency.

    Args:
        space: the search space.
        archs: architectures.
        input_shape, num_classes: passed to ``space.complexity``.
        latency: optional object with ``predict(archs) -> milliseconds`` (e.g. a
            ``hardware.LatencyTable``); adds a log-latency column.

    Returns:
        ``(stats, names)``: an ``(n, k)`` float array and its column names.
    """
    archs = list(archs)
    flops, params = [], []
    for arch in archs:
        cost = space.complexity(arch, input_shape, num_classes)
        flops.append(cost.flops)
        params.append(cost.params)
    columns = [np.log1p(np.asarray(flops, float)), np.log1p(np.asarray(params, float))]
    names = ["log_flops", "log_params"]
    if latency is not None:
        ms = np.asarray(latency.predict(archs), dtype=float).ravel()
        if ms.shape != (len(archs),):
            raise PredictorError(f"latency.predict returned {ms.size} values for {len(archs)} archs")
        columns.append(np.log(np.maximum(ms, 1e-9)))
        names.append("log_latency_ms")
    return np.stack(columns, axis=1), names
