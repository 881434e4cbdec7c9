"""Gradient-boosted regression trees, stored as plain arrays and evaluated in numpy.

Trees are grown with scikit-learn's ``DecisionTreeRegressor`` on residuals;
their node arrays are then copied out, so prediction and saving never touch a
pickled estimator. A small bag of boosted models trained on different row
subsamples gives the uncertainty (spread across the bag).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeRegressor

from predictors._accuracy.base import AccuracyPredictor, register_predictor

__all__ = ["GBDTPredictor", "TreeArrays"]


class TreeArrays:
    """Many regression trees flattened into shared node arrays.

    Node ``i`` of the forest: ``left[i] == -1`` marks a leaf with value ``value[i]``;
    otherwise rows with ``x[feature[i]] <= threshold[i]`` go to ``left[i]``.
    ``roots[t]`` is the root node of tree ``t``.
    """

    def __init__(self, left, right, feature, threshold, value, roots) -> None:
        self.left, self.right = np.asarray(left, np.int64), np.asarray(right, np.int64)
        self.feature = np.asarray(feature, np.int64)
        self.threshold = np.asarray(threshold, np.float64)
        self.value = np.asarray(value, np.float64)
        self.roots = np.asarray(roots, np.int64)

    @classmethod
    def from_sklearn(cls, trees: list[DecisionTreeRegressor]) -> TreeArrays:
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("l", "r", "f", "t", "v")}
        roots, offset = [], 0
        for est in trees:
            t = est.tree_
            leaf = t.children_left == -1
            parts["l"].append(np.where(leaf, -1, t.children_left + offset))
            parts["r"].append(np.where(leaf, -1, t.children_right + offset))
            parts["f"].append(np.where(leaf, 0, t.feature))
            parts["t"].append(t.threshold)
            parts["v"].append(t.value[:, 0, 0])
            roots.append(offset)
            offset += t.node_count
        return cls(*(np.concatenate(parts[k]) for k in "lrftv"), roots)

    def leaf_values(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_trees)`` leaf value of each row in each tree."""
        # sklearn casts rows to float32, then compares them with float64 thresholds
        x = np.asarray(x, np.float32).astype(np.float64)
        node = np.broadcast_to(self.roots, (x.shape[0], self.roots.size)).copy()
        rows = np.arange(x.shape[0])[:, None]
        while True:
            internal = self.left[node] != -1
            if not internal.any():
                return self.value[node]
            go_left = x[rows, self.feature[node]] <= self.threshold[node]
            nxt = np.where(go_left, self.left[node], self.right[node])
            node = np.where(internal, nxt, node)

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in
                ("left", "right", "feature", "threshold", "value", "roots")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "") -> TreeArrays:
        return cls(*(arrays[f"{prefix}{k}"] for k in
                     ("left", "right", "feature", "threshold", "value", "roots")))


@register_predictor("gbdt")
class GBDTPredictor(AccuracyPredictor):
    """Bag of gradient-boosted tree ensembles (squared loss).

    Default features: the plain one-hot encoding. Trees split on single columns, so
    they gain nothing from the compact encoding, and log FLOPs / params columns
    invite early splits on them: at 100 archs of the digits_aug ground truth, tau
    0.757 (one-hot) vs 0.716 (compact + complexity) and 0.709 (one-hot + complexity)
    (docs/decisions/accuracy-predictors.md).

    Args:
        n_estimators: boosting rounds per member.
        learning_rate: shrinkage.
        max_depth: tree depth.
        subsample: fraction of rows each member (and each round) sees.
        members: boosted models in the bag (uncertainty = their spread).
        min_samples_leaf: minimum rows in a leaf.
        **kwargs: see :class:`AccuracyPredictor`.
    """

    default_encoding = "onehot"
    default_complexity_features = False

    def __init__(self, space, *, n_estimators: int = 300, learning_rate: float = 0.05,
                 max_depth: int = 3, subsample: float = 0.8, members: int = 5,
                 min_samples_leaf: int = 2, **kwargs: Any) -> None:
        super().__init__(space, **kwargs)
        self.n_estimators, self.learning_rate = int(n_estimators), float(learning_rate)
        self.max_depth, self.subsample = int(max_depth), float(subsample)
        self.members, self.min_samples_leaf = int(members), int(min_samples_leaf)

    def hparams(self) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                "max_depth": self.max_depth, "subsample": self.subsample,
                "members": self.members, "min_samples_leaf": self.min_samples_leaf}

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        n = x.shape[0]
        take = max(2, int(round(self.subsample * n)))
        trees, base = [], []
        for _ in range(self.members):
            rows = rng.choice(n, take, replace=False)
            xm, ym = x[rows], y[rows]
            pred = np.full(take, ym.mean())
            base.append(ym.mean())
            for _ in range(self.n_estimators):
                sub = rng.choice(take, max(2, int(round(self.subsample * take))), replace=False)
                tree = DecisionTreeRegressor(max_depth=self.max_depth,
                                             min_samples_leaf=self.min_samples_leaf,
                                             random_state=int(rng.integers(2**31)))
                tree.fit(xm[sub], (ym - pred)[sub])
                pred += self.learning_rate * tree.predict(xm.astype(np.float32))
                trees.append(tree)
        self.forest_ = TreeArrays.from_sklearn(trees)
        self.base_ = np.asarray(base)

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        leaves = self.forest_.leaf_values(x).reshape(x.shape[0], self.members, self.n_estimators)
        per_member = self.base_[None, :] + self.learning_rate * leaves.sum(axis=2)
        return per_member.mean(axis=1), per_member.std(axis=1)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {**self.forest_.arrays("tree_"), "base": self.base_}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.forest_ = TreeArrays.from_arrays(arrays, "tree_")
        self.base_ = arrays["base"]
