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
from hardware._reference import check_reference, speed_factor
from hardware._table import LatencyTable
from hardware.errors import HardwareError
from search_spaces import Architecture, as_generator

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
        """One line, plus lines for the raw timings and the noise ceiling when known."""
        lines = [_line(self.n, self.to_dict())]
        if self.info.get("drift_reference") == "reference":
            groups = [ms for one_pass in self.info["reference"]["groups_ms"] for ms in one_pass]
            lines[0] += (f"  (normalised: reference {self.info['reference']['at_build_ms']:.3f} ms at build, "
                         f"{min(groups):.3f}-{max(groups):.3f} ms now)")
        if "drift" in self.info:
            factors = [f for one_pass in self.info["drift"]["factors"] for f in one_pass]
            lines[0] += (f"  (normalised by the {self.info['drift']['networks']} calibration networks: "
                         f"build-time / now {min(factors):.3f}-{max(factors):.3f})")
        if "raw" in self.info:
            lines.append("raw timings:   " + _line(self.n, self.info["raw"]))
        if "noise_ceiling" in self.info:
            lines.append("pass 2 vs 1:   " + _line(self.n, self.info["noise_ceiling"])
                         + "  (the noise ceiling)")
        return "\n".join(lines)

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


def _line(n: int, m: dict[str, Any]) -> str:
    return (f"n={n}  MAPE {m['mape_percent']:.2f}%  within +-10%: {100 * m['within_10']:.1f}%  "
            f"Kendall tau {m['kendall_tau']:.3f}  Spearman {m['spearman']:.3f}")


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
             progress: bool | None = None, normalise: bool | str | None = None,
             repeats: int = 1) -> ValidationReport:
    """Measure ``n`` random architectures end to end and compare with the table.

    Networks are timed round-robin in groups of ``group_size`` (interleaved, so
    drift hits them alike) with the table's statistic. The table predicts
    latency at build-time machine speed, and a VM's speed drifts by 10-30% over
    minutes, so by default the timings are put on the table's scale before the
    comparison (``measured_ms``; the comparison with raw timings is in
    ``info["raw"]``), with one of two drift references timed in every group:

    - ``"calibration"`` (default when the table records its calibration
      networks): the table's own calibration networks, timed again beside the
      validated ones; the group's factor is the median of their build-time over
      their current timings. They are the same kind of workload as the networks
      validated, so they slow down alike (measured: the small reference network
      tracked whole networks' drift only partly, see bench/README.md). The
      comparison is then about the table's *relative* accuracy across networks,
      the part a table can get right; the factors are in ``info["drift"]``.
    - ``"reference"`` (``True``; default for a table without calibration
      networks): the fixed reference network of :mod:`hardware._reference`.

    With ``repeats >= 2`` every network is measured in ``repeats`` independent
    passes (one after the other); the ground truth is their per-network median,
    and ``info["noise_ceiling"]`` compares pass 1 with pass 2: Kendall tau between
    two measurements of the same networks bounds the tau a table can reach
    against one of them.

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
        normalise: ``"calibration"``, ``"reference"`` (or ``True``), or ``False`` for raw
            timings; default: the calibration networks when the table records at least
            three, else the reference network when the table has one, else raw.
        repeats: independent measurement passes (>= 1).

    Raises:
        TableMismatchError: ``normalise`` with a table whose reference network is not
            this library's (its scale cannot be reproduced).
    """
    from tqdm.auto import tqdm

    if not isinstance(repeats, int) or repeats < 1:
        raise HardwareError(f"validate: repeats must be an int >= 1, got {repeats!r}")
    gen = as_generator(rng)
    space = table.space
    archs = list(archs) if archs is not None else [space.sample(gen) for _ in range(n)]
    if device is None:
        device = table.device()
    else:
        table.check_device(device)
    mode = _drift_mode(table, normalise)
    if mode == "reference":
        check_reference(table.reference, "the latency table")
    profiler = profiler or Profiler(statistic=table.statistic)
    if mode == "reference" and profiler.statistic != table.reference.get("statistic", profiler.statistic):
        raise HardwareError(
            f"validate: the table's reference time is a {table.reference['statistic']!r} statistic, the "
            f"profiler measures {profiler.statistic!r}; use Profiler(statistic="
            f"{table.reference['statistic']!r}) or normalise=False"
        )
    cal = table.calibration
    cal_archs = [Architecture(a) for a in cal.get("archs", [])] if mode == "calibration" else []
    cal_build = np.asarray(cal.get("measured_ms", []), dtype=float)
    predicted = table.predict(archs)
    raw = np.zeros((repeats, len(archs)))
    scaled = np.zeros((repeats, len(archs)))
    stats_ms = {stat: np.zeros((repeats, len(archs))) for stat in ("min", "median")}
    reference_ms: list[list[float]] = []
    bar = tqdm(total=repeats * len(archs), desc="measuring networks", unit="net",
               disable=None if progress is None else not progress)
    # the reference network is timed too when the table has one (a diagnostic beside the
    # calibration networks), unless its record cannot be reproduced here
    with_reference = mode == "reference" or (mode == "calibration" and _usable_reference(table, profiler))
    drift: list[list[float]] = []
    calibration_now: list[list[list[float]]] = []
    for r in range(repeats):
        reference_ms.append([])
        drift.append([])
        calibration_now.append([])
        for start in range(0, len(archs), group_size):
            group = archs[start:start + group_size]
            modules = [space.build(a, table.num_classes, table.input_shape) for a in cal_archs + group]
            measured, ref = profiler.measure_group(modules, table.input_shape, device,
                                                   reference=with_reference)
            factor = 1.0
            if ref is not None:
                factor = speed_factor(table.reference["ms"], ref.value_ms)
                reference_ms[r].append(ref.value_ms)
            if cal_archs:
                now = np.array([m.value_ms for m in measured[:len(cal_archs)]])
                factor = float(np.median(cal_build / now))
                drift[r].append(factor)
                calibration_now[r].append(now.tolist())
                measured = measured[len(cal_archs):]
            raw[r, start:start + len(group)] = [m.value_ms for m in measured]
            scaled[r, start:start + len(group)] = [m.value_ms * factor for m in measured]
            for stat in ("min", "median"):
                stats_ms[stat][r, start:start + len(group)] = [getattr(m, f"{stat}_ms") * factor
                                                               for m in measured]
            bar.update(len(group))
    bar.close()
    keys = [a.key for a in archs]
    truth, raw_truth = np.median(scaled, axis=0), np.median(raw, axis=0)
    info: dict[str, Any] = {"statistic": profiler.statistic, "device": device.fingerprint(),
                            "normalised": bool(mode), "drift_reference": mode or None, "repeats": repeats,
                            "passes_ms": scaled.tolist(),
                            "passes_stats_ms": {k: v.tolist() for k, v in stats_ms.items()}}
    if with_reference:
        info["reference"] = {"at_build_ms": table.reference["ms"], "groups_ms": reference_ms}
    if mode == "calibration":
        info["drift"] = {"networks": len(cal_archs), "factors": drift, "calibration_raw_ms": calibration_now}
    if mode:
        info["raw"] = _metrics(compare(predicted, raw_truth))
        info["raw_passes_ms"] = raw.tolist()
    if repeats >= 2:
        info["noise_ceiling"] = _metrics(compare(scaled[1], scaled[0]))
        info["against_pass1"] = _metrics(compare(predicted, scaled[0]))
        if mode:
            info["raw_noise_ceiling"] = _metrics(compare(raw[1], raw[0]))
    return compare(predicted, truth, keys, **info)


def _usable_reference(table: LatencyTable, profiler: Profiler) -> bool:
    """Whether the table's reference network can be timed on its scale here."""
    if not table.reference or table.reference.get("statistic", profiler.statistic) != profiler.statistic:
        return False
    try:
        check_reference(table.reference, "the latency table")
    except HardwareError:
        return False
    return True


def _drift_mode(table: LatencyTable, normalise: bool | str | None) -> str:
    """'calibration', 'reference' or '' (raw timings) from the ``normalise`` argument."""
    cal = table.calibration
    recorded = len(cal.get("archs", [])) if len(cal.get("measured_ms", [])) == len(cal.get("archs", [])) else 0
    if normalise is None:
        return "calibration" if recorded >= 3 else ("reference" if table.reference else "")
    if normalise is True or normalise == "reference":
        return "reference"
    if normalise is False:
        return ""
    if normalise == "calibration":
        if not recorded:
            raise HardwareError("validate: normalise='calibration' needs a table calibrated on whole "
                                "networks (it records none); build it with n_calibration >= 3")
        return "calibration"
    raise HardwareError(f"validate: normalise must be None, True, False, 'calibration' or 'reference', "
                        f"got {normalise!r}")


def _metrics(report: ValidationReport) -> dict[str, float]:
    return {"mape_percent": report.mape, "within_10": report.within_10,
            "kendall_tau": report.kendall_tau, "spearman": report.spearman}
