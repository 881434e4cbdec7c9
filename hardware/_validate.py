"""`validate`: a latency table's predictions against measured whole networks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from scipy import stats

from hardware._device import Device
from hardware._profiler import Profiler
from hardware._reference import check_reference, speed_factor
from hardware._table import LatencyTable
from hardware.errors import HardwareError
from search_spaces import Architecture, as_generator

__all__ = ["DriftReference", "ValidationReport", "compare", "validate"]


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
        """One line, each figure with the machine's noise ceiling beside it when known
        (``repeats >= 2``: pass 2 against pass 1), plus lines for the raw timings."""
        ceiling = self.info.get("noise_ceiling")
        lines = [_line(self.n, self.to_dict(), ceiling)]
        if self.info.get("drift_reference") == "reference":
            groups = [ms for one_pass in self.info["reference"]["groups_ms"] for ms in one_pass]
            lines[0] += (f"  (normalised: reference {self.info['reference']['at_build_ms']:.3f} ms at build, "
                         f"{min(groups):.3f}-{max(groups):.3f} ms now)")
        if "drift" in self.info:
            factors = [f for one_pass in self.info["drift"]["factors"] for f in one_pass]
            lines[0] += (f"  (normalised by the {self.info['drift']['networks']} calibration networks: "
                         f"build-time / now {min(factors):.3f}-{max(factors):.3f})")
        if "raw" in self.info:
            lines.append("raw timings:   " + _line(self.n, self.info["raw"], self.info.get("raw_noise_ceiling")))
        if ceiling:
            lines.append("(in brackets: the noise ceiling, pass 2 of the measurements against pass 1: "
                         "no table can do better on this machine now)")
        else:
            lines.append("(no noise ceiling: measure with repeats >= 2 to tell a bad table from a noisy machine)")
        return "\n".join(lines)


def _line(n: int, m: dict[str, Any], ceiling: dict[str, Any] | None = None) -> str:
    def fig(key: str, fmt: str) -> str:
        return fmt.format(m[key]) + (f" ({fmt.format(ceiling[key])})" if ceiling else "")

    return (f"n={n}  MAPE {fig('mape_percent', '{:.2f}%')}  within +-10%: "
            f"{fig('within_10', '{:.1%}')}  Kendall tau {fig('kendall_tau', '{:.3f}')}  "
            f"Spearman {fig('spearman', '{:.3f}')}")


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


DriftReference = Literal["auto", "calibration", "reference", "none"]
"""What :func:`validate` puts measurements on the table's build-time scale with:

- ``"auto"`` (default): ``"calibration"`` when the table records at least three
  calibration networks, else ``"reference"`` when it has a reference network, else ``"none"``;
- ``"calibration"``: the table's calibration networks, timed again beside the validated ones;
- ``"reference"``: the fixed reference network of :mod:`hardware._reference`;
- ``"none"``: nothing: compare with raw timings.
"""
_DRIFT_REFERENCES: tuple[str, ...] = get_args(DriftReference)


def validate(table: LatencyTable, n: int = 100, rng: np.random.Generator | int | None = None,
             device: Device | None = None, profiler: Profiler | None = None,
             archs: Sequence[Architecture] | None = None, group_size: int = 100,
             progress: bool | None = None, drift_reference: DriftReference = "auto",
             repeats: int = 1) -> ValidationReport:
    """Measure ``n`` random architectures end to end and compare with the table.

    Networks are timed round-robin in groups of ``group_size`` (interleaved, so
    drift hits them alike) with the table's statistic. The table predicts
    latency at build-time machine speed, and a VM's speed drifts by 10-30% over
    minutes, so by default the timings are put on the table's scale before the
    comparison (``measured_ms``; the comparison with raw timings is in
    ``info["raw"]``), with one of two drift references timed in every group
    (``drift_reference``, see :data:`DriftReference`):

    - ``"calibration"`` (what ``"auto"`` picks when the table records its calibration
      networks): the table's own calibration networks, timed again beside the
      validated ones; the group's factor is the median of their build-time over
      their current timings. They are the same kind of workload as the networks
      validated, so they slow down alike (measured: the small reference network
      tracked whole networks' drift only partly, see docs/decisions/latency-validation-drift.md). The
      comparison is then about the table's *relative* accuracy across networks,
      the part a table can get right; the factors are in ``info["drift"]``.
      The reference network, when the table has a usable one, is timed beside
      them as a diagnostic (``info["reference"]``).
    - ``"reference"`` (what ``"auto"`` picks for a table without calibration
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
        drift_reference: ``"auto"`` (default), ``"calibration"``, ``"reference"`` or
            ``"none"`` (raw timings); see :data:`DriftReference`.
        repeats: independent measurement passes (>= 1).

    Raises:
        TableMismatchError: a drift reference ``"reference"`` with a table whose reference
            network is not this library's (its scale cannot be reproduced).
        HardwareError: a bad ``repeats`` or ``drift_reference``, or a drift reference the
            table lacks.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise HardwareError(f"validate: repeats must be an int >= 1, got {repeats!r}")
    gen = as_generator(rng)
    archs = list(archs) if archs is not None else [table.space.sample(gen) for _ in range(n)]
    if device is None:
        device = table.device()
    else:
        table.check_device(device)
    plan = _plan(table, drift_reference, profiler)
    predicted = table.predict(archs)
    passes = _measure(table, archs, device, plan, repeats, group_size, progress)
    return _report(predicted, [a.key for a in archs], passes, plan, device, table)


@dataclass(frozen=True)
class _Plan:
    """How validation puts timings on the table's scale."""

    mode: str  # "calibration", "reference" or "none" ("auto" resolved)
    profiler: Profiler
    with_reference: bool  # time the reference network in every group
    calibration_archs: tuple[Architecture, ...]  # timed first in every group ("calibration")
    calibration_ms: np.ndarray  # their timings at build


def _plan(table: LatencyTable, drift_reference: str, profiler: Profiler | None) -> _Plan:
    """Resolve the drift reference and check that the table and profiler support it."""
    mode = _resolve(table, drift_reference)
    if mode == "reference":
        check_reference(table.reference, "the latency table")
    profiler = profiler or Profiler(statistic=table.statistic)
    if mode == "reference" and profiler.statistic != table.reference.get("statistic", profiler.statistic):
        raise HardwareError(
            f"validate: the table's reference time is a {table.reference['statistic']!r} statistic, the "
            f"profiler measures {profiler.statistic!r}; use Profiler(statistic="
            f"{table.reference['statistic']!r}) or drift_reference='none'"
        )
    cal = table.calibration
    cal_archs = [Architecture(a) for a in cal.get("archs", [])] if mode == "calibration" else []
    # the reference network is timed too when the table has one (a diagnostic beside the
    # calibration networks), unless its record cannot be reproduced here
    with_reference = mode == "reference" or (mode == "calibration" and _usable_reference(table, profiler))
    return _Plan(mode, profiler, with_reference, tuple(cal_archs),
                 np.asarray(cal.get("measured_ms", []), dtype=float))


def _resolve(table: LatencyTable, drift_reference: str) -> str:
    """'calibration', 'reference' or 'none' for a ``drift_reference`` of :data:`DriftReference`."""
    if drift_reference not in _DRIFT_REFERENCES:
        raise HardwareError(f"validate: drift_reference must be one of "
                            f"{', '.join(repr(d) for d in _DRIFT_REFERENCES)}, got {drift_reference!r}")
    cal = table.calibration
    archs, measured = cal.get("archs", []), cal.get("measured_ms", [])
    recorded = len(archs) if len(measured) == len(archs) else 0
    if drift_reference == "auto":
        return "calibration" if recorded >= 3 else ("reference" if table.reference else "none")
    if drift_reference == "calibration" and not recorded:
        raise HardwareError("validate: drift_reference='calibration' needs a table calibrated on whole "
                            "networks (it records none); build it with n_calibration >= 3")
    return drift_reference


def _usable_reference(table: LatencyTable, profiler: Profiler) -> bool:
    """Whether the table's reference network can be timed on its scale here."""
    if not table.reference or table.reference.get("statistic", profiler.statistic) != profiler.statistic:
        return False
    try:
        check_reference(table.reference, "the latency table")
    except HardwareError:
        return False
    return True


@dataclass
class _Passes:
    """Timings of ``repeats`` passes over ``n`` networks (rows: passes)."""

    raw: np.ndarray  # (repeats, n) the profiler's statistic, as measured
    scaled: np.ndarray  # (repeats, n) on the table's scale
    stats: dict[str, np.ndarray]  # "min", "median": (repeats, n) on the table's scale
    reference_ms: list[list[float]] = field(default_factory=list)  # per pass, per group
    drift: list[list[float]] = field(default_factory=list)  # per pass, per group: factors
    calibration_now: list[list[list[float]]] = field(default_factory=list)  # per pass, group, net


def _measure(table: LatencyTable, archs: list[Architecture], device: Device, plan: _Plan,
             repeats: int, group_size: int, progress: bool | None) -> _Passes:
    """Time every network ``repeats`` times, round-robin in groups, with the drift references."""
    from tqdm.auto import tqdm

    shape = (repeats, len(archs))
    passes = _Passes(np.zeros(shape), np.zeros(shape), {s: np.zeros(shape) for s in ("min", "median")})
    bar = tqdm(total=repeats * len(archs), desc="measuring networks", unit="net",
               disable=None if progress is None else not progress)
    for r in range(repeats):
        passes.reference_ms.append([])
        passes.drift.append([])
        passes.calibration_now.append([])
        for start in range(0, len(archs), group_size):
            group = archs[start:start + group_size]
            _measure_group(table, group, device, plan, passes, r, slice(start, start + len(group)))
            bar.update(len(group))
    bar.close()
    return passes


def _measure_group(table: LatencyTable, group: list[Architecture], device: Device, plan: _Plan,
                   passes: _Passes, r: int, where: slice) -> None:
    """Time one group (after the calibration networks) and store it in pass ``r`` at ``where``."""
    cal_archs = list(plan.calibration_archs)
    modules = [table.space.build(a, table.num_classes, table.input_shape) for a in cal_archs + group]
    measured, ref = plan.profiler.measure_group(modules, table.input_shape, device,
                                                reference=plan.with_reference)
    factor = 1.0
    if ref is not None:
        factor = speed_factor(table.reference["ms"], ref.value_ms)
        passes.reference_ms[r].append(ref.value_ms)
    if cal_archs:  # the calibration networks' factor wins over the reference's
        now = np.array([m.value_ms for m in measured[:len(cal_archs)]])
        factor = float(np.median(plan.calibration_ms / now))
        passes.drift[r].append(factor)
        passes.calibration_now[r].append(now.tolist())
        measured = measured[len(cal_archs):]
    passes.raw[r, where] = [m.value_ms for m in measured]
    passes.scaled[r, where] = [m.value_ms * factor for m in measured]
    for stat in ("min", "median"):
        passes.stats[stat][r, where] = [getattr(m, f"{stat}_ms") * factor for m in measured]


def _report(predicted: np.ndarray, keys: list[str], passes: _Passes, plan: _Plan, device: Device,
            table: LatencyTable) -> ValidationReport:
    """Compare the predictions with the per-network median over the passes; the details in ``info``."""
    normalised = plan.mode != "none"
    scaled, raw = passes.scaled, passes.raw
    info: dict[str, Any] = {"statistic": plan.profiler.statistic, "device": device.fingerprint(),
                            "normalised": normalised, "drift_reference": plan.mode if normalised else None,
                            "repeats": len(scaled), "passes_ms": scaled.tolist(),
                            "passes_stats_ms": {k: v.tolist() for k, v in passes.stats.items()}}
    if plan.with_reference:
        info["reference"] = {"at_build_ms": table.reference["ms"], "groups_ms": passes.reference_ms}
    if plan.mode == "calibration":
        info["drift"] = {"networks": len(plan.calibration_archs), "factors": passes.drift,
                         "calibration_raw_ms": passes.calibration_now}
    if normalised:
        info["raw"] = _metrics(compare(predicted, np.median(raw, axis=0)))
        info["raw_passes_ms"] = raw.tolist()
    if len(scaled) >= 2:
        info["noise_ceiling"] = _metrics(compare(scaled[1], scaled[0]))
        info["against_pass1"] = _metrics(compare(predicted, scaled[0]))
        if normalised:
            info["raw_noise_ceiling"] = _metrics(compare(raw[1], raw[0]))
    return compare(predicted, np.median(scaled, axis=0), keys, **info)


def _metrics(report: ValidationReport) -> dict[str, float]:
    return {"mape_percent": report.mape, "within_10": report.within_10,
            "kendall_tau": report.kendall_tau, "spearman": report.spearman}
