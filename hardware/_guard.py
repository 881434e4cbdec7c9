"""The busy-machine guard: a table built while the machine's speed moved says so, or is refused.

A table's build times the reference network in every round-robin group (layer
chunks and calibration networks, :mod:`hardware._reference`). Two figures of
those timings tell how trustworthy the build was:

- ``reference_drift``: slowest over fastest reference time across the groups
  (1.0: the machine kept its speed). The normalisation by the reference removes
  drift that slows every workload alike, but on an oversubscribed machine the
  reference and the networks slow down differently (docs/decisions/latency-reference-network.md:
  13x on the reference against 4.6x on networks), so a large drift means the table's
  relative latencies are suspect too.
- ``reference_spread``: the median over the groups of the reference's (p90 - p10) /
  median within its group: run-to-run noise while the table was measured.

Past the warning levels the build warns, naming the figure; past the refusal
levels (``BuildSettings.refuse_drift`` / ``refuse_noise``, ``None`` disables) it
raises, but only when every group timed the reference at least :data:`MIN_RUNS` times
(the profiler's default minimum): a low percentile of fewer runs is itself too noisy to
condemn a table (quick test profilers of 3-5 runs saw 11x on a machine at load 12), so
such builds only warn. The figures are stored in ``metadata["machine_check"]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from hardware.errors import HardwareError

__all__ = ["MIN_RUNS", "WARN_DRIFT", "WARN_NOISE", "BusyMachineError", "BusyMachineWarning", "check_machine",
           "gap_beyond_noise"]

WARN_DRIFT = 1.3  # slowest / fastest reference group
WARN_NOISE = 0.25  # (p90 - p10) / median of the reference within a group
MIN_RUNS = 10  # runs per group below which the figures only warn


class BusyMachineWarning(UserWarning):
    """A table was measured while the machine's speed drifted or was noisy."""


class BusyMachineError(HardwareError):
    """A table's own timings show the machine was too busy for it to be trusted."""


def machine_figures(metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """``reference_drift`` and ``reference_spread`` of a table's metadata (None: no reference)."""
    ref = metadata.get("reference")
    if not ref or not ref.get("layer_groups_ms"):
        return None
    cal = metadata.get("calibration") or {}
    groups = list(ref["layer_groups_ms"]) + ([cal["reference_ms"]] if cal.get("reference_ms") else [])
    spreads = list(ref.get("layer_groups_spread") or [])
    if cal.get("reference_spread") is not None:
        spreads.append(cal["reference_spread"])
    runs = list(ref.get("layer_groups_runs") or []) + ([cal["reference_runs"]] if cal.get("reference_runs") else [])
    return {"reference_drift": float(max(groups) / min(groups)),
            "reference_spread": float(np.median(spreads)) if spreads else float("nan"),
            "groups": len(groups), "min_runs": int(min(runs)) if runs else 0}


def check_machine(metadata: dict[str, Any], refuse_drift: float | None, refuse_noise: float | None,
                  what: str = "latency table") -> dict[str, Any] | None:
    """Store the machine figures in ``metadata["machine_check"]``; warn or refuse past the levels.

    Raises:
        BusyMachineError: a figure past its refusal level (the message names it).
    """
    figures = machine_figures(metadata)
    if figures is None:
        return None
    drift, spread = figures["reference_drift"], figures["reference_spread"]
    problems = []
    if drift > WARN_DRIFT:
        problems.append(f"the reference network's time varied {drift:.2f}x across the {figures['groups']} "
                        f"timing groups (warning above {WARN_DRIFT}x"
                        + (f", refused above {refuse_drift}x)" if refuse_drift else ")"))
    if spread > WARN_NOISE:
        problems.append(f"its run-to-run spread (p90-p10)/median was {spread:.2f} within a group "
                        f"(warning above {WARN_NOISE}" + (f", refused above {refuse_noise})" if refuse_noise else ")"))
    verdict = "ok" if not problems else "warned"
    enough = figures["min_runs"] >= MIN_RUNS
    if enough and ((refuse_drift and drift > refuse_drift) or (refuse_noise and spread > refuse_noise)):
        verdict = "refused"
    elif problems and not enough:
        problems.append(f"too few runs per group ({figures['min_runs']} < {MIN_RUNS}) to refuse it")
    metadata["machine_check"] = {**figures, "verdict": verdict, "warn_drift": WARN_DRIFT,
                                 "warn_noise": WARN_NOISE, "refuse_drift": refuse_drift,
                                 "refuse_noise": refuse_noise}
    message = (f"{what} measured on a busy machine: " + "; ".join(problems)
               + ". Its latencies may disagree with a rebuild on a quiet machine")
    if verdict == "refused":
        raise BusyMachineError(message + "; rebuild when the machine is quiet (or pass --allow-noisy / "
                               "refuse_drift=None, refuse_noise=None to keep it)")
    if problems:
        warnings.warn(message + "; `nas lut show` keeps these figures", BusyMachineWarning, stacklevel=3)
    return metadata["machine_check"]


def gap_beyond_noise(metadata: Mapping[str, Any], table_ms: float, measured_ms: float | None) -> str | None:
    """A one-line flag when a measured latency departs from the table's prediction by more
    than the table's own noise can explain; None when within it (or nothing was measured).

    The tolerance is relative: the larger of 25%, three times the calibration's
    leave-one-out error, and the build's reference drift minus one (a table built while the
    machine's speed moved by 40% cannot be held to 25%). A measurement on a machine busier
    than at build adds its own slow-down, so the flag says which side is slow.
    """
    if measured_ms is None or not (table_ms > 0 and measured_ms > 0):
        return None
    cal = metadata.get("calibration") or {}
    check = metadata.get("machine_check") or {}
    tolerance = max(0.25, 3 * float(cal.get("loo_error") or 0.0),
                    float(check.get("reference_drift", 1.0)) - 1.0)
    ratio = measured_ms / table_ms
    if abs(np.log(ratio)) <= np.log1p(tolerance):
        return None
    side = "slower" if ratio > 1 else "faster"
    return (f"measured {measured_ms:.3f} ms is {ratio:.2f}x the table's {table_ms:.3f} ms ({side}), beyond the "
            f"table's noise (+-{100 * tolerance:.0f}%): the machine's load differs from the build, or the "
            "table is stale; rebuild or validate it (`nas lut validate`)")
