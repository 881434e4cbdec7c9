"""Building a latency table: profile every layer of a space, then calibrate on whole networks.

:meth:`hardware.LatencyTable.build` runs three steps, each here:

1. :func:`profile_layers`: enumerate the space's realisable layers and time them
   round-robin in chunks, with the reference network in every chunk; every
   latency is stored normalised to the reference's median time over the chunks
   (see :mod:`hardware._reference`); the result is the table's rows and metadata.
2. :func:`spanning_archs`: choose calibration networks that span the layer sums
   and contrast the layer mix (:func:`hardware.contrast_design`).
3. :func:`measure_calibration`: time those networks end to end (with the reference
   network again) and fit the correction (:func:`hardware.fit_calibration`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from hardware._calibration import contrast_design, fit_calibration, transform_layers
from hardware._device import Device
from hardware._profiler import Measurement, Profiler
from hardware._reference import normalise, reference_spec, speed_factor
from hardware._table_file import COLUMNS, FORMAT, VERSION, layer_row
from hardware.errors import HardwareError, MissingEntriesError
from search_spaces import Architecture, LayerSpec, SearchSpace, as_generator, get_op

if TYPE_CHECKING:
    from hardware._table import LatencyTable

__all__ = ["BuildSettings", "calibration_record", "measure_calibration", "profile_layers", "spanning_archs",
           "table_metadata"]


@dataclass(frozen=True)
class BuildSettings:
    """How :meth:`hardware.LatencyTable.build` profiles a space.

    Attributes:
        profiler: times layers and calibration networks; default ``Profiler()`` (p10).
        n_calibration: calibration networks chosen by :meth:`~hardware.LatencyTable.spanning_archs`
            when the build is given none (0: no calibration).
        enumeration: ``"auto"``, ``"grammar"`` or ``"sampled"``: how the space's layers
            are found (``"auto"``: the grammar walk, or sampling for a recursive grammar).
        n_samples: architectures sampled by the ``"sampled"`` enumeration.
        chunk_size: layers timed round-robin together.
        reference: time the reference network in every round-robin group and store
            every latency normalised to its median time over the layer groups ("ms at
            build-time machine speed", see :mod:`hardware._reference`). On by default:
            on a machine whose speed drifts it keeps layers profiled early, layers
            profiled late and the calibration networks on one scale, and lets
            :func:`~hardware.validate` measure on that scale too.
        progress: show a progress bar (default: when attached to a terminal).
        refuse_drift: refuse the table when the reference network's slowest group took more
            than this many times its fastest (``None``: never refuse; see :mod:`hardware._guard`,
            which also warns above 1.3x).
        refuse_noise: refuse when the reference's median within-group spread
            (p90 - p10) / median exceeds this (default ``None``: never, it only warns above
            0.25: the p10 statistic is robust to stalls, so spread alone rarely spoils a table).
    """

    profiler: Profiler | None = None
    n_calibration: int = 16
    enumeration: Literal["auto", "grammar", "sampled"] = "auto"
    n_samples: int = 2000
    chunk_size: int = 32
    reference: bool = True
    progress: bool | None = None
    refuse_drift: float | None = 3.0
    refuse_noise: float | None = None

    def __post_init__(self) -> None:
        for name, low in (("n_calibration", 0), ("n_samples", 1), ("chunk_size", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise HardwareError(f"BuildSettings: {name} must be an int >= {low}, got {value!r}")

    def updated(self, **changes: Any) -> BuildSettings:
        """A copy with ``changes`` applied; an unknown name lists the valid ones."""
        valid = [f.name for f in dataclasses.fields(self)]
        unknown = [k for k in changes if k not in valid]
        if unknown:
            raise HardwareError(f"LatencyTable.build: unknown option {unknown[0]!r}; valid options: "
                                f"{', '.join(valid)}, calibration_archs, rng, space_options")
        return dataclasses.replace(self, **changes) if changes else self


def profile_layers(space: SearchSpace, device: Device, shape: tuple[int, ...], classes: int,
                   settings: BuildSettings, profiler: Profiler, gen: np.random.Generator,
                   space_options: Mapping[str, Any] | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Time every realisable layer of ``space``; the table's rows and metadata (uncalibrated)."""
    n_samples, enumeration = settings.n_samples, settings.enumeration
    found = space.realisable_layers(shape, classes, enumeration, n_samples, gen)
    groups = _time_chunks(found.specs, device, settings, profiler)
    refs = [ref for _, _, ref in groups if ref is not None]
    ref_record = reference_record(refs, profiler.statistic, device) if settings.reference and refs else None
    rows = []
    for chunk, measured, ref in groups:
        ref_ms = ref.value_ms if ref is not None else float("nan")
        factor = speed_factor(ref_record["ms"], ref_ms) if ref_record else 1.0
        rows.extend(layer_row(spec, normalise(m, factor), ref_ms)
                    for spec, m in zip(chunk, measured, strict=True))
    metadata = table_metadata(space, space_options, found.method, found.n_samples, shape, classes,
                              device.fingerprint(), device.options(), profiler.settings(),
                              profiler.noise_floor(device), ref_record)
    return pd.DataFrame(rows, columns=list(COLUMNS)), metadata


def reference_record(refs: Sequence[Measurement], statistic: str, device: Any = None) -> dict[str, Any]:
    """The table's reference record from the reference's measurement in each layer group."""
    groups_ms = [r.value_ms for r in refs]
    return {**reference_spec(device), "ms": float(np.median(groups_ms)), "statistic": statistic,
            "layer_groups_ms": groups_ms, "layer_groups_spread": [r.spread for r in refs],
            "layer_groups_runs": [r.n_runs for r in refs]}


def table_metadata(space: SearchSpace, space_options: Mapping[str, Any] | None, method: str,
                   n_samples: int, shape: tuple[int, ...], classes: int, fingerprint: Mapping[str, Any],
                   device_options: Mapping[str, Any], profiler_settings: Mapping[str, Any],
                   noise_floor_ms: float, ref_record: Mapping[str, Any] | None) -> dict[str, Any]:
    """A new table's metadata (uncalibrated): one layout for local builds and imports."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "space": {"name": space.name, "fingerprint": space.fingerprint,
                  "options": dict(space_options or {}),
                  "enumeration": {"method": method, "n_samples": n_samples}},
        "device": dict(fingerprint),
        "device_options": dict(device_options),
        "input_shape": list(shape),
        "num_classes": classes,
        "dtype": fingerprint["dtype"],
        "batch_size": fingerprint["batch_size"],
        "statistic": profiler_settings["statistic"],
        "profiler": dict(profiler_settings),
        "noise_floor_ms": noise_floor_ms,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "calibration": fit_calibration([], []),
        "reference": dict(ref_record) if ref_record else None,
    }


def _time_chunks(specs: Sequence[LayerSpec], device: Device, settings: BuildSettings,
                 profiler: Profiler) -> list[tuple[Sequence[LayerSpec], list[Measurement], Measurement | None]]:
    """Each chunk of layers with their raw measurements and the reference's (None: none)."""
    groups = []
    bar = tqdm(total=len(specs), desc="profiling layers", unit="layer",
               disable=None if settings.progress is None else not settings.progress)
    for start in range(0, len(specs), settings.chunk_size):
        chunk = specs[start:start + settings.chunk_size]
        modules = [_build_layer(spec) for spec in chunk]
        measured, ref = profiler.measure_group(modules, [s.in_shape for s in chunk], device,
                                               reference=settings.reference)
        groups.append((chunk, measured, ref))
        bar.update(len(chunk))
    bar.close()
    return groups


def spanning_archs(table: LatencyTable, n: int, rng: np.random.Generator | int | None,
                   pool: int) -> list[Architecture]:
    """``n`` of ``pool`` sampled architectures, by :func:`hardware.contrast_design`."""
    gen = as_generator(rng)
    space = table.space
    candidates = [space.sample(gen) for _ in range(max(pool, n))]
    try:
        sums = table.predict_raw(candidates)
    except MissingEntriesError:  # sampled enumeration (recursive grammar): skip uncovered archs
        candidates = [a for a in candidates
                      if not table.missing(space.layers(a, table.input_shape, table.num_classes))]
        if not candidates:
            raise HardwareError(
                "no sampled architecture is fully covered by the table; enumerate with more "
                "samples (n_samples) or pass calibration_archs"
            ) from None
        sums = table.predict_raw(candidates)
    # the layer mix: sums of transformed layers (gamma 0.5), t_ref the median layer latency
    t_ref = float(np.median(table.entries["latency_ms"].to_numpy()))
    concave = table._sums(candidates, lambda t: transform_layers(t, 0.5, t_ref))
    return [candidates[i] for i in contrast_design(sums, concave, n)]


def measure_calibration(table: LatencyTable, archs: Sequence[Architecture], device: Device,
                        profiler: Profiler) -> dict[str, Any]:
    """Time whole networks (interleaved, with the reference network when the table has one)
    and fit the correction of the layer sum; the calibration record."""
    space = table.space
    archs = [space.validate(a) for a in archs]
    modules = [space.build(a, table.num_classes, table.input_shape) for a in archs]
    raw, ref = profiler.measure_group(modules, table.input_shape, device, reference=bool(table.reference))
    return calibration_record(table, archs, raw, ref)


def calibration_record(table: LatencyTable, archs: Sequence[Architecture], raw: Sequence[Measurement],
                       ref: Measurement | None) -> dict[str, Any]:
    """The calibration record of whole networks timed (``raw``) with the reference (``ref``, or
    None): timings put on the table's scale, and the correction fitted on them. Shared by a
    local build and an import of a bundle's measurements."""
    layers = [table.layer_latencies(a) for a in archs]  # raises naming any missing layer
    sums = np.array([t.sum() for t in layers])
    ref_record = table.reference
    factor = speed_factor(ref_record["ms"], ref.value_ms) if ref is not None and ref_record else 1.0
    scaled = [normalise(m, factor) for m in raw]
    measured = [m.value_ms for m in scaled]
    cal = fit_calibration(sums, measured, layers)
    cal["archs"] = [a.to_dict() for a in archs]
    cal["sum_ms"] = [float(s) for s in sums]
    cal["measured_ms"] = [float(m) for m in measured]
    cal["measured_raw_ms"] = [m.value_ms for m in raw]
    cal["measured_stats_ms"] = {k: [getattr(m, f"{k}_ms") for m in scaled] for k in ("min", "p10", "median")}
    cal["reference_ms"] = ref.value_ms if ref is not None else None
    cal["reference_spread"] = ref.spread if ref is not None else None
    cal["reference_runs"] = ref.n_runs if ref is not None else None
    return cal


def _build_layer(spec: LayerSpec) -> torch.nn.Module:
    # Weights do not change latency; a fixed seed keeps builds reproducible
    # without touching the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return get_op(spec.op).build(spec.in_shape, spec.param_dict)
