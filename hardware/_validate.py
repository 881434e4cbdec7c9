"""`validate`: a latency table's predictions against measured whole networks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from hardware._device import Device
from hardware._profiler import Profiler
from hardware._table import LatencyTable
from hardware.errors import HardwareError
from search_spaces import Architecture

__all__ = ["ValidationReport", "compare", "validate"]


@dataclass(frozen=True)
class ValidationReport:
    """Predicted vs measured latency of ``n`` architectures (milliseconds).

    Attributes:
        mape: mean absolute percentage error, in percent.
        within_10: share of architectures predicted within +-10% of measured (0..1).
        kendall_tau, spearman: rank correlations of predicted and measured.
    """

    predicted_ms: np.ndarray
    measured_ms: np.ndarray
    mape: float
    within_10: float
    kendall_tau: float
    spearman: float
    arch_keys: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.predicted_ms.size)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mape_percent": self.mape, "within_10": self.within_10,
                "kendall_tau": self.kendall_tau, "spearman": self.spearman,
                "predicted_ms": self.predicted_ms.tolist(), "measured_ms": self.measured_ms.tolist(),
                "arch_keys": list(self.arch_keys), **self.info}

    def summary(self) -> str:
        return (f"n={self.n}  MAPE {self.mape:.2f}%  within +-10%: {100 * self.within_10:.1f}%  "
                f"Kendall tau {self.kendall_tau:.3f}  Spearman {self.spearman:.3f}")

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Scatter of predicted vs measured with the y = x line and a +-10% band (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(5, 5))
        lo = float(min(self.predicted_ms.min(), self.measured_ms.min())) * 0.95
        hi = float(max(self.predicted_ms.max(), self.measured_ms.max())) * 1.05
        line = np.array([lo, hi])
        ax.fill_between(line, line * 0.9, line * 1.1, color="0.9", label="+-10%")
        ax.plot(line, line, "k--", lw=1, label="y = x")
        ax.scatter(self.measured_ms, self.predicted_ms, s=12, alpha=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel("predicted latency (ms)")
        default = (f"n={self.n}  MAPE {self.mape:.1f}%  within +-10%: {100 * self.within_10:.0f}%\n"
                   f"Kendall tau {self.kendall_tau:.3f}  Spearman {self.spearman:.3f}")
        ax.set_title(title or default, fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def compare(predicted_ms: Sequence[float], measured_ms: Sequence[float],
            arch_keys: Sequence[str] = (), **info: Any) -> ValidationReport:
    """Error and rank-correlation statistics of predictions against measurements."""
    p = np.asarray(predicted_ms, dtype=float)
    m = np.asarray(measured_ms, dtype=float)
    if p.shape != m.shape or p.size < 2:
        raise HardwareError(f"compare needs two equal-length series of >= 2 values, got {p.size} and {m.size}")
    rel = np.abs(p - m) / m
    tau = stats.kendalltau(p, m).statistic
    rho = stats.spearmanr(p, m).statistic
    return ValidationReport(p, m, float(100 * rel.mean()), float((rel <= 0.10 + 1e-9).mean()),
                            float(tau), float(rho), tuple(arch_keys), dict(info))


def validate(table: LatencyTable, n: int = 100, rng: np.random.Generator | int | None = None,
             device: Device | None = None, profiler: Profiler | None = None,
             archs: Sequence[Architecture] | None = None, group_size: int = 100,
             progress: bool | None = None) -> ValidationReport:
    """Measure ``n`` random architectures end to end and compare with the table.

    Networks are timed round-robin in groups of ``group_size`` (interleaved, so
    drift hits them alike) with the table's statistic.

    Args:
        table: the latency table.
        n: how many random architectures (ignored when ``archs`` is given).
        rng: generator or seed for sampling.
        device: default: the table's device re-created here (refused if the machine differs).
        profiler: default ``Profiler(statistic=table.statistic)``.
        archs: explicit architectures to validate on.
        group_size: networks timed round-robin together; the default times 100 at once
            (about 2 GB for 100 full-width OFA MobileNetV3 networks); lower it to save
            memory at the cost of exposing drift between groups.
        progress: show a progress bar (default: when attached to a terminal).
    """
    from tqdm.auto import tqdm

    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    space = table.space
    archs = list(archs) if archs is not None else [space.sample(gen) for _ in range(n)]
    if device is None:
        device = table.device()
    else:
        table.check_device(device)
    profiler = profiler or Profiler(statistic=table.statistic)
    predicted = table.predict(archs)
    measured: list[float] = []
    bar = tqdm(total=len(archs), desc="measuring networks", unit="net",
               disable=None if progress is None else not progress)
    for start in range(0, len(archs), group_size):
        group = archs[start:start + group_size]
        modules = [space.build(a, table.num_classes, table.input_shape) for a in group]
        measured += [m.value_ms for m in profiler.measure_many(modules, table.input_shape, device)]
        bar.update(len(group))
    bar.close()
    return compare(predicted, measured, [a.key for a in archs], statistic=profiler.statistic,
                   device=device.fingerprint())
