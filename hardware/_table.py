"""`LatencyTable`: per-layer latencies of a space on a device, with a calibrated sum.

A network's latency is predicted from its layers' isolated latencies as
``a * sum(layer latencies) + b``, with a concave per-layer correction when the
calibration finds one: a network is not the sum of its layers (caches stay warm
across layers, the framework has per-call and per-network overheads; on a small
CPU the plain sum is 0.78-0.93x the measured network). The correction is fitted
on a handful of whole networks measured on the device (the model and the fit:
:mod:`hardware._calibration`; the choice of networks: :meth:`LatencyTable.spanning_archs`).

By default a reference network (:func:`hardware.reference_module`) is timed in
every round-robin group, layers and calibration networks alike, and every
latency is stored normalised to the reference's median time over the layer
groups (``metadata["reference"]["ms"]``): predictions are in ms at build-time
machine speed, and :func:`hardware.validate` normalises its measurements the
same way. ``reference_ms`` keeps each row's group time, so the raw timing is
``latency_ms * reference_ms / metadata["reference"]["ms"]``.

This module holds the table itself (lookup, prediction, its metadata and the
checks of space and device); building is :mod:`hardware._build`, the file
format :mod:`hardware._table_file`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from hardware._build import BuildSettings, measure_calibration, profile_layers, spanning_archs
from hardware._calibration import fit_calibration, transform_layers
from hardware._device import IDENTITY_KEYS, VERSION_KEYS, Device, get_device
from hardware._guard import check_machine
from hardware._profiler import Profiler
from hardware._reference import reference_spec
from hardware._table_file import COLUMNS, FORMAT, VERSION, read_table, write_table
from hardware.errors import HardwareError, MissingEntriesError, TableMismatchError
from search_spaces import (
    Architecture,
    LayerSpec,
    SearchSpace,
    VectorIndex,
    as_generator,
    get_space,
    vectorisable,
)

__all__ = ["LatencyTable"]


class LatencyTable:
    """Per-layer latencies of a search space on one device at one input shape.

    Build with :meth:`build` (profiles every unique layer the space can produce),
    or :meth:`load` a saved one. ``predict`` is vectorised over architectures.

    Args:
        entries: one row per layer, with at least ``key`` and ``latency_ms``.
        metadata: space, device fingerprint, input shape, calibration... (see :meth:`build`).
        space: the search space (optional: resolved from the registry on first use).

    Attributes:
        FORMAT, VERSION: the ``format`` and ``version`` of a saved table's metadata.
        COLUMNS: the columns of a saved table (``entries`` of a built table).
    """

    FORMAT: ClassVar[str] = FORMAT
    VERSION: ClassVar[int] = VERSION
    COLUMNS: ClassVar[tuple[str, ...]] = COLUMNS

    def __init__(self, entries: pd.DataFrame, metadata: Mapping[str, Any],
                 space: SearchSpace | None = None) -> None:
        for column in ("key", "latency_ms"):
            if column not in entries.columns:
                raise HardwareError(f"latency table entries need a {column!r} column; got {list(entries.columns)}")
        self.entries = entries.reset_index(drop=True)
        self.metadata: dict[str, Any] = json.loads(json.dumps(metadata))
        self._latency = dict(zip(self.entries["key"], self.entries["latency_ms"].astype(float), strict=True))
        self._space = space
        self._index: VectorIndex | None = None
        self._slow: dict[str, np.ndarray] = {}
        if space is not None:
            self._check_space(space)

    def __len__(self) -> int:
        return len(self._latency)

    def __repr__(self) -> str:
        return (f"LatencyTable(space={self.space_name!r}, device={self.device_fingerprint.get('kind')!r}, "
                f"input_shape={self.input_shape}, layers={len(self)})")

    # metadata ----------------------------------------------------------------------
    @property
    def space_name(self) -> str:
        return self.metadata["space"]["name"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.metadata["input_shape"])

    @property
    def num_classes(self) -> int:
        return int(self.metadata["num_classes"])

    @property
    def statistic(self) -> str:
        return self.metadata.get("statistic", "p10")

    @property
    def device_fingerprint(self) -> dict[str, Any]:
        return self.metadata["device"]

    @property
    def calibration(self) -> dict[str, Any]:
        return self.metadata.get("calibration") or fit_calibration([], [])

    @property
    def reference(self) -> dict[str, Any] | None:
        """The reference network record (``ms``: its time at build), None if built without one."""
        return self.metadata.get("reference")

    @property
    def space(self) -> SearchSpace:
        """The search space (re-created from the registry by name and options if not given)."""
        if self._space is None:
            meta = self.metadata["space"]
            try:
                space = get_space(meta["name"], **meta.get("options", {}))
            except ValueError as exc:
                raise HardwareError(
                    f"cannot re-create space {meta['name']!r} of this table ({exc}); "
                    "pass space= to LatencyTable.load"
                ) from None
            self._check_space(space, hint="; it was re-created from the registry with the stored "
                              "options: pass the table's space with LatencyTable.load(path, space=...)")
            self._space = space
        return self._space

    def _check_space(self, space: SearchSpace, hint: str = "; rebuild the table with `nas lut build`") -> None:
        meta = self.metadata["space"]
        if space.name != meta["name"] or space.fingerprint != meta["fingerprint"]:
            raise TableMismatchError(
                f"latency table was built for space {meta['name']!r} (grammar {meta['fingerprint']}, "
                f"options {meta.get('options', {})}), not for space {space.name!r} "
                f"(grammar {space.fingerprint}){hint}"
            )

    def check_device(self, device: Device) -> None:
        """Refuse a device whose fingerprint differs in kind, processor, threads, dtype or batch size."""
        mine, theirs = self.device_fingerprint, device.fingerprint()
        diff = [k for k in IDENTITY_KEYS if mine.get(k) != theirs.get(k)]
        # the execution provider (ONNX Runtime) is compared when both fingerprints record one
        diff += [k for k in ("provider",) if mine.get(k) and theirs.get(k) and mine[k] != theirs[k]]
        if diff:
            details = ", ".join(f"{k}: table {mine.get(k)!r} vs device {theirs.get(k)!r}" for k in diff)
            raise TableMismatchError(f"latency table was measured on another device ({details})")
        # a library the table's device did not have (torch, for a bundle's runner) is no difference
        versions = [k for k in VERSION_KEYS if mine.get(k) is not None and mine.get(k) != theirs.get(k)]
        if versions:
            warnings.warn(
                "latency table was measured with other library versions: "
                + ", ".join(f"{k} {mine.get(k)} vs {theirs.get(k)}" for k in versions),
                stacklevel=2,
            )

    def device(self) -> Device:
        """Re-create the table's device on this machine (refused if the fingerprint differs)."""
        fp = self.device_fingerprint
        device = get_device(fp["kind"], **self.metadata.get("device_options", {}))
        self.check_device(device)
        return device

    # lookup and prediction ------------------------------------------------------------
    def lookup(self, spec: LayerSpec) -> float:
        """Latency (ms, the table's statistic) of one layer.

        Raises:
            MissingEntriesError: naming the ``LayerSpec`` key when the table lacks it.
        """
        try:
            return self._latency[spec.key]
        except KeyError:
            raise MissingEntriesError([spec.key], self._context()) from None

    def missing(self, specs: Sequence[LayerSpec]) -> list[str]:
        """Keys of the given layers that the table lacks."""
        return sorted({s.key for s in specs if s.key not in self._latency})

    def _context(self) -> str:
        return (f"the table has {len(self)} layers of space {self.space_name!r} at input shape "
                f"{self.input_shape} ({self.metadata['space'].get('enumeration', {}).get('method', '?')} "
                "enumeration); rebuild it for this space and input shape")

    def _nan_lookup(self, spec: LayerSpec) -> float:
        return self._latency.get(spec.key, float("nan"))

    def predict_raw(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Uncalibrated sums of layer latencies (ms), one per architecture."""
        return self._sums(archs)

    def _sums(self, archs: Sequence[Architecture],
              transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Per-architecture sums of ``transform(layer latencies)`` (vectorised where possible)."""
        archs = list(archs)
        if not archs:
            return np.zeros(0)
        space = self.space
        if self._index is None and vectorisable(space):
            self._index = VectorIndex(space, self.input_shape, self.num_classes, self._nan_lookup)
        if self._index is not None:
            sums, bad = self._index.sums(archs, transform)
            slow = np.flatnonzero(bad | np.isnan(sums))
        else:
            sums, slow = np.zeros(len(archs)), np.arange(len(archs))
        missing: set[str] = set()
        for i in slow.tolist():
            layers = self._layers_one(archs[i], missing)
            sums[i] = np.nan if layers is None else (transform(layers) if transform else layers).sum()
        if missing:
            raise MissingEntriesError(sorted(missing), self._context())
        return sums

    def _layers_one(self, arch: Architecture, missing: set[str]) -> np.ndarray | None:
        """Layer latencies of one architecture through ``space.layers`` (validates; memoised
        by key); None, with the keys added to ``missing``, when the table lacks a layer."""
        arch = arch if isinstance(arch, Architecture) else Architecture(arch)
        if arch.key in self._slow:
            return self._slow[arch.key]
        keys = [spec.key for spec in self.space.layers(arch, self.input_shape, self.num_classes)]
        lacking = [k for k in keys if k not in self._latency]
        if lacking:
            missing.update(lacking)
            return None
        layers = np.array([self._latency[k] for k in keys])
        self._slow[arch.key] = layers
        return layers

    def layer_latencies(self, arch: Architecture) -> np.ndarray:
        """Isolated latencies (ms) of one architecture's layers, in network order."""
        missing: set[str] = set()
        layers = self._layers_one(arch, missing)
        if layers is None:
            raise MissingEntriesError(sorted(missing), self._context())
        return layers

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Calibrated latency (ms) of each architecture:
        ``a * sum(t_ref ** (1 - gamma) * layer ** gamma) + b`` (see :func:`fit_calibration`)."""
        cal = self.calibration
        gamma, t_ref = cal.get("gamma", 1.0), cal.get("t_ref_ms")
        if gamma == 1.0 or t_ref is None:
            return cal["a"] * self.predict_raw(archs) + cal["b"]
        return cal["a"] * self._sums(archs, lambda t: transform_layers(t, gamma, t_ref)) + cal["b"]

    def predict_one(self, arch: Architecture) -> float:
        """Calibrated latency (ms) of one architecture."""
        return float(self.predict([arch])[0])

    # building and calibration -------------------------------------------------------------
    @classmethod
    def build(cls, space: SearchSpace, device: Device, input_shape: Sequence[int] | None = None,
              num_classes: int | None = None, *, settings: BuildSettings | None = None,
              calibration_archs: Sequence[Architecture] | None = None,
              rng: np.random.Generator | int | None = None,
              space_options: Mapping[str, Any] | None = None, **options: Any) -> LatencyTable:
        """Profile every unique layer of ``space`` on ``device``, then calibrate.

        Example::

            LatencyTable.build(space, get_device("cpu", threads=1), (3, 32, 32), 10,
                               profiler=Profiler(time_budget_s=0.1), n_calibration=8, rng=0)

        Args:
            space: the search space.
            device: where to measure.
            input_shape: network input without batch (default ``space.input_shape``).
            num_classes: default ``space.num_classes``.
            settings: how to profile (:class:`~hardware.BuildSettings`; default its defaults).
            calibration_archs: whole networks to measure for the calibration; default
                ``settings.n_calibration`` archs spanning layer sums and layer mixes
                (:meth:`spanning_archs`).
            rng: generator or seed (sampling calibration archs and, for recursive
                grammars, the architectures whose layers are enumerated).
            space_options: factory options of a registered space, stored so the table
                can re-create the space on load.
            **options: fields of :class:`~hardware.BuildSettings` that replace those of
                ``settings`` (``profiler=``, ``n_calibration=``, ``progress=``, ``reference=``,
                ``chunk_size=``, ``enumeration=``, ``n_samples=``, ``refuse_drift=``, ``refuse_noise=``).

        Raises:
            BusyMachineError: the reference network's timings show the machine was too
                busy (:mod:`hardware._guard`; above the warning levels it only warns).
        """
        settings = (settings or BuildSettings()).updated(**options)
        gen = as_generator(rng)
        shape = tuple(input_shape) if input_shape is not None else space.input_shape
        classes = int(num_classes or space.num_classes)
        profiler = settings.profiler or Profiler()
        entries, metadata = profile_layers(space, device, shape, classes, settings, profiler, gen,
                                           space_options)
        table = cls(entries, metadata, space)
        if calibration_archs is None and settings.n_calibration > 0:
            calibration_archs = table.spanning_archs(settings.n_calibration, gen)
        if calibration_archs:
            table.calibrate(calibration_archs, device, profiler)
        check_machine(table.metadata, settings.refuse_drift, settings.refuse_noise)
        return table

    def spanning_archs(self, n: int, rng: np.random.Generator | int | None = None,
                       pool: int = 256) -> list[Architecture]:
        """``n`` calibration architectures from ``pool`` samples: they span the layer sum
        and, within it, the layer mix.

        The samples are cut into ``ceil(n / 2)`` bins of equal count along the plain
        layer sum; each bin gives the two samples whose concave sum
        (``gamma = 0.5``, see :func:`fit_calibration`) is highest and lowest relative
        to their plain sum (residuals of a line in log-log), i.e. many small layers vs
        few large ones at the same total (:func:`~hardware.contrast_design`). Networks
        that agree on the plain sum but not on the layer mix are what tells the
        calibration's ``gamma`` apart; with sum quantiles alone the choice of ``gamma``
        rested on sum differences only. Measured (``bench/lut_calibration.py``, 240 timed
        subnets, 30 draws): with 8 networks the spread of the chosen ``gamma`` fell from
        0.13 to 0.07 (standard deviation) and that of held-out tau from 0.015 to 0.009;
        with 16-24 networks the two designs were about equal.
        """
        return spanning_archs(self, n, rng, pool)

    def calibrate(self, archs: Sequence[Architecture], device: Device,
                  profiler: Profiler | None = None) -> dict[str, Any]:
        """Measure whole networks (interleaved) and fit the correction; returns it.

        A table with a reference network times it with the networks and fits on
        their timings normalised to build-time speed (``measured_ms``); the raw
        timings are kept as ``measured_raw_ms``.
        """
        profiler = profiler or Profiler(statistic=self.statistic)
        self.metadata["calibration"] = measure_calibration(self, archs, device, profiler)
        return self.metadata["calibration"]

    # persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``.csv`` (with a ``<file>.meta.json`` sidecar) or ``.parquet`` (metadata embedded)."""
        return write_table(path, self.entries, self.metadata)

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | None = None, device: Device | None = None,
             input_shape: Sequence[int] | None = None) -> LatencyTable:
        """Read a saved table; refuse it for another space, device or input shape.

        Raises:
            TableMismatchError: the table was built for something else (the message
                says what differs).
            HardwareError: the file is not a latency table (names the missing part).
        """
        entries, metadata = read_table(path)
        table = cls(entries, metadata, space)
        stored = table.reference
        if stored and stored.get("fingerprint") != reference_spec()["fingerprint"]:
            warnings.warn(
                f"latency table {str(path)!r} was normalised by reference network "
                f"{stored.get('name')!r} (fingerprint {stored.get('fingerprint')}), not by this "
                f"library's {reference_spec()['name']!r}: its predictions stand, but validate() "
                "cannot put new timings on its scale (drift_reference='none', or rebuild the table)",
                stacklevel=2,
            )
        if input_shape is not None and tuple(input_shape) != table.input_shape:
            raise TableMismatchError(
                f"latency table {str(path)!r} was built for input shape {table.input_shape}, "
                f"not {tuple(input_shape)}"
            )
        if device is not None:
            table.check_device(device)
        return table

    def summary(self) -> str:
        """A few lines for ``nas lut show``."""
        meta, fp, cal = self.metadata, self.device_fingerprint, self.calibration
        lines = [
            f"space        {self.space_name} (grammar {meta['space']['fingerprint']}, options "
            f"{meta['space'].get('options', {})}, {meta['space']['enumeration']['method']} enumeration)",
            f"device       {fp['kind']} threads={fp.get('threads')} dtype={fp['dtype']} "
            f"batch={fp['batch_size']} on {fp['processor']} ({fp['cores']} cores), "
            + (f"onnxruntime {fp.get('onnxruntime')} {fp['provider']}" if fp.get("provider") else f"torch {fp['torch']}"),
            f"input        {self.input_shape}, {self.num_classes} classes; statistic {self.statistic}; "
            f"noise floor {meta.get('noise_floor_ms', float('nan')):.4f} ms",
            f"layers       {len(self)}, total {self.entries['latency_ms'].sum():.3f} ms; created {meta['created']}",
            f"calibration  {cal['model']}: measured = {cal['a']:.4f} * sum + {cal['b']:.4f} ms "
            + (f"over layers t -> {cal['t_ref_ms']:.4f} ** {1 - cal['gamma']:.1f} * t ** {cal['gamma']:.1f} "
               if cal.get("gamma", 1.0) != 1.0 else "")
            +
            f"({cal['n_networks']} networks; plain sum / measured = "
            + (f"{cal['sum_over_measured']:.3f})" if cal.get("sum_over_measured") else "n/a)"),
        ]
        ref = self.reference
        if ref:
            groups = ref.get("layer_groups_ms") or [ref["ms"]]
            lines.append(
                f"reference    {ref['name']}: {ref['ms']:.4f} ms at build (the scale of every latency; "
                f"{min(groups):.4f}-{max(groups):.4f} ms over {len(groups)} layer groups"
                + (f", {cal['reference_ms']:.4f} ms while calibrating)" if cal.get("reference_ms") else ")")
            )
        else:
            lines.append("reference    none (raw timings, not normalised for machine drift)")
        check = meta.get("machine_check")
        if check:
            lines.append(f"machine      {check['verdict']}: reference drift {check['reference_drift']:.2f}x over "
                         f"{check['groups']} groups, spread {check['reference_spread']:.2f} within a group")
        return "\n".join(lines)

