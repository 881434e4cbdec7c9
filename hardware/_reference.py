"""A fixed reference network that puts timings taken at different moments on one scale.

The speed of a shared machine drifts: the same network timed a few minutes apart
differs by 10-30% on the development VM. A latency table is built at one moment
(layers, then calibration networks) and validated or used at another, so its
absolute numbers inherit that drift. The remedy here is a *reference*: a small,
deterministic MobileNet-like network that is timed in every round-robin group
next to the modules being measured. Its statistic in a group says how fast the
machine was while that group ran; dividing by it and multiplying by the
reference's time at build gives every timing in "ms at build-time machine speed":

    normalised_ms = raw_ms * reference_ms_at_build / reference_ms_in_this_group

This removes drift that slows every workload alike (frequency changes, a
competing process taking a share of the core); it cannot remove noise within
a group, nor slow-downs that hit the measured modules and the reference
differently (e.g. cache or memory-bandwidth contention that hurts large networks
more). ``bench/lut_accuracy.py`` prints the reference's own drift over a run and
the accuracy with and without normalisation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from hardware._profiler import Measurement
from hardware.errors import HardwareError, TableMismatchError

__all__ = ["REFERENCE_INPUT", "normalise", "reference_module", "reference_spec", "speed_factor"]

REFERENCE_NAME = "mbconv-reference-v1"
REFERENCE_INPUT = (3, 128, 128)  # ~2 ms at 1 thread on the development VM
# (kind, in, out, kernel, stride, groups): a stem, two inverted-residual blocks, a head.
_LAYERS = (
    ("conv", 3, 16, 3, 2, 1),
    ("conv", 16, 48, 1, 1, 1),
    ("conv", 48, 48, 3, 2, 48),
    ("conv", 48, 24, 1, 1, 1),
    ("conv", 24, 96, 1, 1, 1),
    ("conv", 96, 96, 5, 1, 96),
    ("conv", 96, 40, 1, 1, 1),
    ("linear", 40, 100, 0, 0, 0),
)


def reference_spec(device: Any | None = None) -> dict[str, Any]:
    """The reference network as plain data, with a ``fingerprint`` of its structure.

    Args:
        device: a :class:`~hardware.Device`; its dtype and batch size are recorded
            (the module is converted and fed by the device like any other).
    """
    spec: dict[str, Any] = {"name": REFERENCE_NAME, "input_shape": list(REFERENCE_INPUT),
                            "layers": [list(layer) for layer in _LAYERS]}
    spec["fingerprint"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    if device is not None:
        spec["dtype"], spec["batch_size"] = device.dtype, device.batch_size
    return spec


def reference_module() -> nn.Module:
    """The reference network (fixed weights; the caller's RNG state is untouched)."""
    with torch.random.fork_rng(devices=[]):  # layer constructors draw default init weights
        return _build()


def _build() -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    layers: list[nn.Module] = []
    for kind, c_in, c_out, k, stride, groups in _LAYERS:
        if kind == "linear":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, c_out)]
        else:
            layers += [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                       nn.BatchNorm2d(c_out), nn.Hardswish()]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return net.eval()


def speed_factor(reference_at_build_ms: float, reference_now_ms: float) -> float:
    """The factor turning a timing taken now into ms at build-time speed.

    > 1 when the machine was faster now than at build (timings are scaled up).
    """
    if not (reference_at_build_ms > 0 and reference_now_ms > 0):
        raise HardwareError(
            f"reference timings must be positive, got {reference_at_build_ms} ms at build and "
            f"{reference_now_ms} ms now"
        )
    return reference_at_build_ms / reference_now_ms


def normalise(measurement: Measurement, factor: float) -> Measurement:
    """A measurement with every latency statistic multiplied by ``factor``.

    The noise floor (timer overhead) and the run count are left as they are.
    """
    return replace(measurement, value_ms=measurement.value_ms * factor,
                   min_ms=measurement.min_ms * factor, p10_ms=measurement.p10_ms * factor,
                   median_ms=measurement.median_ms * factor, p90_ms=measurement.p90_ms * factor,
                   mean_ms=measurement.mean_ms * factor)


def check_reference(stored: Mapping[str, Any] | None, what: str) -> None:
    """Raise when a stored reference record is not this library's reference network."""
    if not stored:
        raise HardwareError(f"{what} was built without a reference network; pass drift_reference='none' to validate")
    mine = reference_spec()
    if stored.get("fingerprint") != mine["fingerprint"]:
        raise TableMismatchError(
            f"{what} was normalised by reference network {stored.get('name')!r} (fingerprint "
            f"{stored.get('fingerprint')}), but this library's reference is {mine['name']!r} "
            f"(fingerprint {mine['fingerprint']}): timings cannot be put on the table's scale; "
            "rebuild the table or pass drift_reference='none' to validate"
        )
