"""Architecture features for predictors: the space's encoding, graph and complexity features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from predictors.errors import PredictorError
from search_spaces import SearchSpace, list_ops

__all__ = ["ArchFeaturizer", "free_statistics"]


ENCODINGS = ("onehot", "onehot+numeric", "compact")


def _is_numeric(choices: Sequence[Any]) -> bool:
    return bool(choices) and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices)


class ArchFeaturizer:
    """Turns architectures into fixed-length float vectors.

    The encoding of the decisions is one of:

    * ``"onehot"``: ``space.encode(arch)`` (one-hot per decision slot, zeros for
      slots not reached);
    * ``"onehot+numeric"``: that, followed by the value of each numeric decision
      slot divided by its largest choice (0 where the slot is not reached), so that
      a linear or kernel model sees "larger kernel / expand / depth" as one
      direction instead of unrelated one-hot bits;
    * ``"compact"``: the numeric values, plus one-hot columns only for the slots
      that are not numeric or are global (a path of at most two parts, such as
      ``resolution.size`` or ``stage2.depth``, whose effect may be anything but
      monotone). Per-block numeric slots (``stage2.block3.kernel``) are then one
      column each instead of one per choice: about 3x fewer features on the OFA
      space, which matters when fitting on 25-200 archs.

    Spaces without a decision table (recursive grammars) always use ``space.encode``.
    Then, when ``graph=True``, features of ``space.graph(arch)``: a count of op
    nodes per registered op, the numbers of nodes, edges and merge nodes, and the
    longest path length; when ``complexity=True``, log FLOPs and log params
    (``space.complexity_batch``, vectorised over the batch).

    Args:
        space: the search space the architectures belong to.
        graph: append graph features.
        input_shape: input shape for graph and complexity features (default: the space's).
        num_classes: classes for graph and complexity features (default: the space's).
        op_vocab: op names counted by the graph features (default: every registered op).
        encoding: ``"onehot"``, ``"onehot+numeric"`` or ``"compact"``.
        complexity: append log FLOPs and log params.
    """

    def __init__(self, space: SearchSpace, graph: bool = False,
                 input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 op_vocab: Sequence[str] | None = None, encoding: str = "onehot",
                 complexity: bool = False) -> None:
        if encoding not in ENCODINGS:
            raise PredictorError(f"encoding {encoding!r} unknown; valid: {', '.join(ENCODINGS)}")
        self.space = space
        self.graph = bool(graph)
        self.input_shape = tuple(input_shape) if input_shape is not None else space.input_shape
        self.num_classes = int(num_classes or space.num_classes)
        self.op_vocab = list(op_vocab) if op_vocab is not None else list_ops()
        self.encoding, self.complexity = encoding, bool(complexity)
        self._table = space.decision_table if encoding != "onehot" else None
        self._numeric_slots: list[tuple[int, np.ndarray]] = []
        self._onehot_slots: list[int] = []  # compact encoding only
        if self._table is not None:
            for slot, choices in enumerate(self._table.choices):
                if _is_numeric(choices):
                    values = np.asarray(choices, float)
                    self._numeric_slots.append((slot, values / (np.abs(values).max() or 1.0)))
                if not _is_numeric(choices) or self._table.paths[slot].count(".") <= 1:
                    self._onehot_slots.append(slot)

    @property
    def _compact(self) -> bool:
        return self.encoding == "compact" and self._table is not None

    @property
    def size(self) -> int:
        """Length of a feature vector."""
        base = (sum(self._table.sizes[s] for s in self._onehot_slots) if self._compact
                else self.space.encoding_size)
        return (base + (len(self.op_vocab) + 4 if self.graph else 0)
                + len(self._numeric_slots) + (2 if self.complexity else 0))

    def _numeric_features(self, index: np.ndarray) -> np.ndarray:
        out = np.zeros((len(index), len(self._numeric_slots)), np.float32)
        for j, (slot, values) in enumerate(self._numeric_slots):
            reached = index[:, slot] >= 0
            out[reached, j] = values[index[reached, slot]]
        return out

    def _onehot_features(self, index: np.ndarray) -> np.ndarray:
        parts = []
        for slot in self._onehot_slots:
            block = np.zeros((len(index), int(self._table.sizes[slot])), np.float32)
            reached = np.flatnonzero(index[:, slot] >= 0)
            block[reached, index[reached, slot]] = 1.0
            parts.append(block)
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(index), 0), np.float32)

    def _complexity_features(self, archs: list[Any] | np.ndarray) -> np.ndarray:
        flops, params = self.space.complexity_batch(archs, self.input_shape, self.num_classes)
        return np.log1p(np.stack([flops, params], axis=1).astype(float)).astype(np.float32)

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
        wants_index = self._table is not None or (self.complexity and self.space.decision_table is not None)
        index = self.space.to_matrix(archs) if wants_index else None  # -1: not reached
        parts = [self._onehot_features(index) if self._compact
                 else self.space.encode_batch(archs).astype(np.float32)]
        if self.graph:
            parts.append(np.stack([self._graph_features(a) for a in archs]).astype(np.float32))
        if self._numeric_slots:
            parts.append(self._numeric_features(index))
        if self.complexity:
            parts.append(self._complexity_features(archs if index is None else index))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def config(self) -> dict[str, Any]:
        """JSON-able description, stored with saved predictors."""
        return {"space": self.space.name, "fingerprint": self.space.fingerprint,
                "encoding_size": self.space.encoding_size, "graph": self.graph,
                "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "op_vocab": self.op_vocab, "encoding": self.encoding, "complexity": self.complexity}

    @classmethod
    def from_config(cls, space: SearchSpace, config: dict[str, Any]) -> ArchFeaturizer:
        """Rebuild a featurizer; refuses a space whose grammar differs from the saved one."""
        if config["fingerprint"] != space.fingerprint:
            raise PredictorError(
                f"predictor was fitted on space {config['space']!r} with fingerprint "
                f"{config['fingerprint']}, but got space {space.name!r} with fingerprint "
                f"{space.fingerprint} (same name and options are needed)")
        return cls(space, config["graph"], config["input_shape"], config["num_classes"],
                   config["op_vocab"], config["encoding"], config["complexity"])


def free_statistics(space: SearchSpace, archs: Sequence[Any], input_shape: Sequence[int] | None = None,
                    num_classes: int | None = None, latency: Any = None) -> tuple[np.ndarray, list[str]]:
    """Statistics that cost no training: log FLOPs, log params and optionally log latency.

    Args:
        space: the search space.
        archs: architectures.
        input_shape, num_classes: passed to ``space.complexity_batch``.
        latency: optional object with ``predict(archs) -> milliseconds`` (e.g. a
            ``hardware.LatencyTable``); adds a log-latency column.

    Returns:
        ``(stats, names)``: an ``(n, k)`` float array and its column names.
    """
    archs = list(archs)
    flops, params = space.complexity_batch(archs, input_shape, num_classes)
    columns = [np.log1p(flops.astype(float)), np.log1p(params.astype(float))]
    names = ["log_flops", "log_params"]
    if latency is not None:
        ms = np.asarray(latency.predict(archs), dtype=float).ravel()
        if ms.shape != (len(archs),):
            raise PredictorError(f"latency.predict returned {ms.size} values for {len(archs)} archs")
        columns.append(np.log(np.maximum(ms, 1e-9)))
        names.append("log_latency_ms")
    return np.stack(columns, axis=1), names
