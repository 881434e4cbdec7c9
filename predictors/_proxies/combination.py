"""A learned combination of zero-cost proxies, fitted on a few labelled archs.

Method (what and why):

1. **Rank-normalise** each proxy: a score becomes its position among the fitting
   set's scores (interpolated empirical CDF of the signed-log score, in [0, 1],
   plus a 1e-3 z-score slope so the map is strictly increasing). Ranking by one
   transformed proxy equals ranking by the raw proxy, and a proxy with heavy
   tails (synflow spans orders of magnitude) cannot dominate a sum.
2. Three candidate weightings, each computed from the labelled archs:

   * ``single``: the proxy with the largest ``|Kendall tau|`` on the labels,
     with its sign (the usual "pick the best proxy on a few labels");
   * ``tau_weighted``: soft selection: ``w_k = sign(tau_k) * max(|tau_k| - SE, 0)^2``
     where ``SE = sqrt(2(2n+5) / (9n(n-1)))`` is the standard error of a Kendall
     tau on ``n`` labels, so proxies whose tau could be noise get no weight and
     the others are averaged (averaging noisy proxies that carry the same
     signal ranks better than any one of them);
   * ``top2``: the two proxies with the largest ``|tau|``, sign-corrected, equal weights.

3. **Choose** the candidate by leave-pair-out cross-validation on the labels:
   for every pair of labelled archs (up to ``cv_pairs``), each candidate's
   weights are recomputed from the other ``n - 2`` labels and it scores 1 if it
   orders the held-out pair correctly, -1 if not (0 for a tie); the best mean wins, ties going
   to ``single``. Leave-pair-out estimates exactly the pairwise-ranking quality
   that Kendall tau measures and uses every pair, which a 5-fold split of 10-20
   labels cannot. (The rank normalisation uses the scores of all fitting archs,
   never their labels.)

Why not more: on the OFA digits bench (bench/predictor_quality.py, 8 proxies
cached for 600 archs, 100 random label/test splits, paired differences with
their standard error, see docs/decisions/proxy-combination.md) the previous version of this class
(5-fold CV among every single proxy with both signs, ridge and a random weight
search) lost to the single proxy picked on the same labels by 0.11 / 0.03 tau
at 10 / 20 labels; fitting the weights to the labelled tau directly (RoBoT's
objective; random search or optuna TPE over non-negative sign-corrected
weights) lost 0.04-0.06; ridge on ranks lost 0.01-0.03. This version is level
with the picked single proxy there (-0.002 +- 0.007, +0.004 +- 0.006,
-0.001 +- 0.001 at 10 / 20 / 40 labels; +0.021 +- 0.011 on standalone accuracy
with 10 labels), 0.01-0.11 below the best single proxy in hindsight (whose
choice needs all 600 labels); on a synthetic check with two noisy copies of the
target among noise proxies it beats the picked single proxy by +0.02 / +0.06 /
+0.09 and the best single in hindsight at 20 and 40 labels, and with one
perfect proxy it ranks perfectly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from predictors._metrics import kendall_tau
from predictors.errors import PredictorError

__all__ = ["ProxyCombination"]

PROCEDURES = ("single", "tau_weighted", "top2")
_MAX_CV_ARCHS = 200  # labelled archs used to choose the weighting (a random subset beyond)
_SLOPE = 1e-3  # z-score slope added to the ECDF: strictly monotone, ties only for equal scores


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _tau_se(n: int) -> float:
    """Standard error of Kendall's tau on ``n`` items under independence."""
    return float(np.sqrt(2.0 * (2 * n + 5) / (9.0 * n * max(n - 1, 1))))


def _pair_signs(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise sign arrays: ``sz (n, n, k)``, ``sy (n, n)`` and their product ``c``."""
    sz = np.sign(z[:, None, :] - z[None, :, :])
    sy = np.sign(y[:, None] - y[None, :])
    return sz, sy, sz * sy[:, :, None]


def _taus_from_sums(conc: np.ndarray, nz: np.ndarray, ny: float) -> np.ndarray:
    """Kendall tau-b of each proxy from pair sums (concordance, non-tied counts).

    Not ``kendall_tau`` (scipy) because leave-pair-out needs one tau per held-out pair,
    thousands per fit, all derived from the same full pair sums in O(k) each.
    """
    den = np.sqrt(np.maximum(nz, 0.0) * max(ny, 0.0))
    return np.where(den > 0, conc / np.where(den > 0, den, 1.0), 0.0)


class ProxyCombination:
    """Weighted sum of rank-normalised proxy scores, weights fitted on labelled archs.

    Args:
        names: proxy names, in the column order of the score matrices.
        cv_pairs: labelled pairs held out (one at a time) to choose the weighting;
            all pairs when there are fewer (up to 45 labelled archs by default).
        margin: a combined weighting replaces ``single`` only when its held-out
            concordance is higher by more than ``margin`` standard errors of the
            paired difference (0: whenever it is higher; the bench measured no gain
            from 1 or 2 on the OFA data and a loss on the synthetic check).
        seed: seed of the held-out pair subsample.
    """

    def __init__(self, names: Sequence[str], cv_pairs: int = 1000, margin: float = 0.0,
                 seed: int = 0) -> None:
        self.names = list(names)
        self.cv_pairs, self.margin, self.seed = int(cv_pairs), float(margin), int(seed)
        self.weights_: np.ndarray | None = None
        self.procedure_: str | None = None
        self.cv_scores_: dict[str, float] = {}
        self.taus_: np.ndarray | None = None

    # transform -------------------------------------------------------------------------
    def _fit_transform(self, raw: np.ndarray) -> None:
        t = _signed_log(np.where(np.isfinite(raw), raw, np.nan))
        self.reference_ = [np.sort(col[np.isfinite(col)]) for col in t.T]
        self.mean_ = np.nan_to_num(np.nanmean(t, axis=0)) if t.size else np.zeros(t.shape[1])
        std = np.nan_to_num(np.nanstd(t, axis=0))
        self.std_ = np.where(std > 1e-12, std, 1.0)

    def _ranks(self, raw: np.ndarray) -> np.ndarray:
        """Rank-normalised scores, ``nan`` where the raw score is not finite."""
        with np.errstate(all="ignore"):
            t = _signed_log(np.where(np.isfinite(raw), raw, np.nan))
        out = np.full(t.shape, np.nan)
        for k, ref in enumerate(self.reference_):
            col = t[:, k]
            ok = np.isfinite(col)
            if ref.size == 0:
                out[ok, k] = 0.5
                continue
            q = (np.arange(ref.size) + 0.5) / ref.size
            out[ok, k] = (np.interp(col[ok], ref, q)
                          + _SLOPE * (col[ok] - self.mean_[k]) / self.std_[k])
        return out

    def transform(self, raw: Any) -> np.ndarray:
        """Rank-normalised scores (about 0..1); a non-finite score becomes the column median 0.5.

        :meth:`predict` instead ranks a non-finite score as the worst value of its proxy.
        """
        return np.nan_to_num(self._ranks(self._matrix(raw)), nan=0.5)

    def _matrix(self, raw: Any) -> np.ndarray:
        if isinstance(raw, dict):
            raw = [raw]
        if len(raw) and isinstance(raw[0], dict):
            raw = [[row[n] for n in self.names] for row in raw]
        raw = np.asarray(raw, dtype=float)
        if raw.ndim != 2 or raw.shape[1] != len(self.names):
            raise PredictorError(f"expected scores of shape (n, {len(self.names)}) for proxies "
                                 f"{self.names}, got {raw.shape}")
        return raw

    # weightings --------------------------------------------------------------------------
    @staticmethod
    def _weights(procedure: str, taus: np.ndarray, n: int) -> np.ndarray:
        """Weights of one procedure from the proxies' Kendall taus on ``n`` labels."""
        k = taus.size
        best = int(np.argmax(np.abs(taus)))
        single = np.zeros(k)
        single[best] = -1.0 if taus[best] < 0 else 1.0
        if procedure == "single":
            return single
        if procedure == "tau_weighted":
            w = np.sign(taus) * np.maximum(np.abs(taus) - _tau_se(n), 0.0) ** 2
            return w / np.abs(w).sum() if np.any(w) else single
        if procedure == "top2":
            order = np.argsort(-np.abs(taus), kind="stable")[:2]
            w = np.zeros(k)
            w[order] = np.where(taus[order] < 0, -1.0, 1.0) / order.size
            return w
        raise PredictorError(f"unknown procedure {procedure!r}; valid: {', '.join(PROCEDURES)}")

    def fit(self, scores: Any, y: Any) -> ProxyCombination:
        """Choose a weighting by leave-pair-out cross-validation, then fit it on all labelled archs.

        Args:
            scores: ``(n, k)`` raw proxy scores (or a list of ``{name: score}``);
                non-finite scores are allowed (they count as the median while fitting).
            y: ``(n,)`` measured accuracies.
        """
        raw = self._matrix(scores)
        y = np.asarray(y, float).ravel()
        if raw.shape[0] != y.size or y.size < 4:
            raise PredictorError(f"fit needs >= 4 archs with one target each, got {raw.shape[0]} "
                                 f"score rows and {y.size} targets")
        if not np.all(np.isfinite(y)):
            raise PredictorError("fit targets must be finite numbers")
        self._fit_transform(raw)
        z_all = np.nan_to_num(self._ranks(raw), nan=0.5)
        self.taus_ = np.array([kendall_tau(y, col) for col in z_all.T])
        rng = np.random.default_rng(self.seed)
        rows = np.arange(y.size)
        if y.size > _MAX_CV_ARCHS:  # the pair arrays below are O(n^2 k)
            rows = np.sort(rng.choice(y.size, _MAX_CV_ARCHS, replace=False))
        z, y_cv = z_all[rows], y[rows]
        n = y_cv.size
        sz, sy, c = _pair_signs(z, y_cv)
        conc, nz, ny = c.sum((0, 1)) / 2, np.abs(sz).sum((0, 1)) / 2, np.abs(sy).sum() / 2

        # leave-pair-out: taus without archs a and b from the full pair sums
        a_idx, b_idx = np.triu_indices(n, 1)
        keep = sy[a_idx, b_idx] != 0
        a_idx, b_idx = a_idx[keep], b_idx[keep]
        if a_idx.size > self.cv_pairs:
            pick = rng.choice(a_idx.size, self.cv_pairs, replace=False)
            a_idx, b_idx = a_idx[pick], b_idx[pick]
        row_c, row_nz, row_ny = c.sum(1), np.abs(sz).sum(1), np.abs(sy).sum(1)
        hits = {p: [] for p in PROCEDURES}
        for a, b in zip(a_idx, b_idx, strict=True):
            taus = _taus_from_sums(conc - row_c[a] - row_c[b] + c[a, b],
                                   nz - row_nz[a] - row_nz[b] + np.abs(sz[a, b]),
                                   ny - row_ny[a] - row_ny[b] + abs(sy[a, b]))
            for p in PROCEDURES:
                w = self._weights(p, taus, n - 2)
                hits[p].append(np.sign((z[a] - z[b]) @ w) * sy[a, b])
        self.cv_scores_ = {p: float(np.mean(v)) if v else 0.0 for p, v in hits.items()}
        self.procedure_ = "single"
        for p in PROCEDURES[1:]:
            gain = np.asarray(hits[p]) - np.asarray(hits["single"])
            se = gain.std() / np.sqrt(max(gain.size, 1))
            if (gain.size and gain.mean() > self.margin * se
                    and self.cv_scores_[p] > self.cv_scores_[self.procedure_]):
                self.procedure_ = p
        self.weights_ = self._weights(self.procedure_, self.taus_, y.size)
        return self

    def predict(self, scores: Any) -> np.ndarray:
        """Combined score of each row (higher predicts more accurate).

        A non-finite proxy score counts as that proxy's worst value (below every
        finite score when the proxy's weight is positive, above when negative).
        """
        if self.weights_ is None:
            raise PredictorError("ProxyCombination is not fitted; call fit(scores, y) first")
        z = self._ranks(self._matrix(scores))
        # finite ranks lie in [0, 1] up to the small slope term; -1 / 2 are beyond them
        worst = np.where(self.weights_ < 0, 2.0, -1.0)
        z = np.where(np.isfinite(z), z, worst[None, :])
        return z @ self.weights_

    def state_dict(self) -> dict[str, Any]:
        """JSON-able fitted state."""
        if self.weights_ is None:
            raise PredictorError("ProxyCombination is not fitted")
        return {"names": self.names, "weights": self.weights_.tolist(),
                "reference": [r.tolist() for r in self.reference_], "mean": self.mean_.tolist(),
                "std": self.std_.tolist(), "procedure": self.procedure_,
                "cv_scores": dict(self.cv_scores_)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the proxy names must match."""
        if list(state["names"]) != self.names:
            raise PredictorError(f"state is for proxies {state['names']}, not {self.names}")
        missing = [k for k in ("weights", "reference", "mean", "std", "procedure", "cv_scores")
                   if k not in state]
        if missing:
            raise PredictorError(f"ProxyCombination state lacks {missing}; it has {sorted(state)}")
        self.weights_ = np.asarray(state["weights"], float)
        self.reference_ = [np.asarray(r, float) for r in state["reference"]]
        self.mean_, self.std_ = np.asarray(state["mean"], float), np.asarray(state["std"], float)
        self.procedure_ = state["procedure"]
        self.cv_scores_ = dict(state["cv_scores"])
