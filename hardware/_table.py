"""`LatencyTable`: per-layer latencies of a space on a device, with a calibrated sum.

A network's latency is predicted as ``a * sum(layer latencies) + b`` (with a
concave per-layer correction when the calibration finds one, see
:mod:`hardware._calibration`). Layers are
profiled one by one, but a network is not the sum of its layers (caches stay
warm across layers, the framework has per-call and per-network overheads): on
a small CPU the plain sum is 0.78-0.93x the measured network. ``a`` and ``b``
are fitted on a handful of whole networks measured on the device, by least
squares on *relative* residuals, i.e. minimising
``sum_i ((a * s_i + b - m_i) / m_i) ** 2`` over calibration networks with layer
sum ``s_i`` and measured latency ``m_i``. With fewer than three networks, or if
that fit gives ``a <= 0`` or a non-positive prediction, the model is the ratio
``a = median(m_i / s_i)``, ``b = 0``. The networks are chosen to span the range
of layer sums (quantiles of 256 sampled architectures); the fit itself is
:func:`hardware.fit_calibration`.

By default a reference network (:func:`hardware.reference_module`) is timed in
every round-robin group, layers and calibration networks alike, and every
latency is stored normalised to the reference's median time over the layer
groups (``metadata["reference"]["ms"]``): predictions are in ms at build-time
machine speed, and :func:`hardware.validate` normalises its measurements the
same way. ``reference_ms`` keeps each row's group time, so the raw timing is
``latency_ms * reference_ms / metadata["reference"]["ms"]``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from hardware._calibration import fit_calibration, transform_layers
from hardware._device import IDENTITY_KEYS, VERSION_KEYS, Device, get_device
from hardware._profiler import Measurement, Profiler
from hardware._reference import normalise, reference_spec, speed_factor
from hardware.errors import HardwareError, MissingEntriesError, TableMismatchError
from search_spaces import (
    Architecture,
    LayerSpec,
    SearchSpace,
    VectorIndex,
    as_generator,
    get_op,
    get_space,
    vectorisable,
)

__all__ = ["LatencyTable", "fit_calibration"]  # fit_calibration re-exported from _calibration

FORMAT = "hwnas-latency-table"
VERSION = 1
COLUMNS = ("key", "op", "params", "in_shape", "out_shape", "latency_ms", "min_ms", "p10_ms",
           "median_ms", "p90_ms", "mean_ms", "n_runs")
# Written by tables built with a reference network; older tables lack it.
OPTIONAL_COLUMNS = ("reference_ms",)
_PARQUET_KEY = b"hwnas.latency_table"


def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


class LatencyTable:
    """Per-layer latencies of a search space on one device at one input shape.

    Build with :meth:`build` (profiles every unique layer the space can produce),
    or :meth:`load` a saved one. ``predict`` is vectorised over architectures.

    Args:
        entries: one row per layer, with at least ``key`` and ``latency_ms``.
        metadata: space, device fingerprint, input shape, calibration... (see :meth:`build`).
        space: the search space (optional: resolved from the registry on first use).
    """

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
        if diff:
            details = ", ".join(f"{k}: table {mine.get(k)!r} vs device {theirs.get(k)!r}" for k in diff)
            raise TableMismatchError(f"latency table was measured on another device ({details})")
        versions = [k for k in VERSION_KEYS if mine.get(k) != theirs.get(k)]
        if versions:
            import warnings

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

    # building ---------------------------------------------------------------------------
    @classmethod
    def build(cls, space: SearchSpace, device: Device, input_shape: Sequence[int] | None = None,
              num_classes: int | None = None, profiler: Profiler | None = None,
              calibration_archs: Sequence[Architecture] | None = None, n_calibration: int = 16,
              rng: np.random.Generator | int | None = None, enumeration: str = "auto",
              n_samples: int = 2000, chunk_size: int = 32, progress: bool | None = None,
              space_options: Mapping[str, Any] | None = None, reference: bool = True) -> LatencyTable:
        """Profile every unique layer of ``space`` on ``device``, then calibrate.

        Args:
            space: the search space.
            device: where to measure.
            input_shape: network input without batch (default ``space.input_shape``).
            num_classes: default ``space.num_classes``.
            profiler: default ``Profiler()`` (p10 statistic).
            calibration_archs: whole networks to measure for the calibration; default
                ``n_calibration`` archs spanning layer sums and layer mixes (:meth:`spanning_archs`).
            n_calibration: how many when ``calibration_archs`` is None (0: no calibration).
            rng: generator or seed (sampling calibration archs and, for recursive
                grammars, the architectures whose layers are enumerated).
            enumeration: 'auto', 'grammar' or 'sampled' (see :func:`enumerate_layers`).
            n_samples: architectures sampled when enumerating by sampling.
            chunk_size: layers timed round-robin together.
            progress: show a progress bar (default: when attached to a terminal).
            space_options: factory options of a registered space, stored so the table
                can re-create the space on load.
            reference: time the reference network in every round-robin group and store
                every latency normalised to the reference's median time over the layer
                groups ("ms at build-time machine speed", see :mod:`hardware._reference`).
                On by default: on a machine whose speed drifts it keeps layers profiled
                early, layers profiled late and the calibration networks on one scale,
                and lets :func:`~hardware.validate` measure on that scale too.
        """
        gen = as_generator(rng)
        shape = tuple(input_shape) if input_shape is not None else space.input_shape
        classes = int(num_classes or space.num_classes)
        profiler = profiler or Profiler()
        found = space.realisable_layers(shape, classes, enumeration, n_samples, gen)
        groups: list[tuple[list[LayerSpec], list[Measurement], float]] = []
        bar = tqdm(total=len(found.specs), desc="profiling layers", unit="layer",
                   disable=None if progress is None else not progress)
        for start in range(0, len(found.specs), chunk_size):
            chunk = found.specs[start:start + chunk_size]
            modules = [_build_layer(spec) for spec in chunk]
            measured, ref = profiler.measure_group(modules, [s.in_shape for s in chunk], device,
                                                   reference=reference)
            groups.append((chunk, measured, ref.value_ms if ref is not None else float("nan")))
            bar.update(len(chunk))
        bar.close()
        rows, ref_record = [], None
        if reference and groups:
            ref_ms = [g[2] for g in groups]
            at_build = float(np.median(ref_ms))
            ref_record = {**reference_spec(device), "ms": at_build, "statistic": profiler.statistic,
                          "layer_groups_ms": ref_ms}
        for chunk, measured, ref_ms in groups:
            factor = speed_factor(ref_record["ms"], ref_ms) if ref_record else 1.0
            rows.extend(_row(spec, normalise(m, factor), ref_ms) for spec, m in zip(chunk, measured, strict=True))
        metadata = {
            "format": FORMAT,
            "version": VERSION,
            "space": {"name": space.name, "fingerprint": space.fingerprint,
                      "options": dict(space_options or {}),
                      "enumeration": {"method": found.method, "n_samples": found.n_samples}},
            "device": device.fingerprint(),
            "device_options": device.options(),
            "input_shape": list(shape),
            "num_classes": classes,
            "dtype": device.dtype,
            "batch_size": device.batch_size,
            "statistic": profiler.statistic,
            "profiler": profiler.settings(),
            "noise_floor_ms": profiler.noise_floor(device),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "calibration": fit_calibration([], []),
            "reference": ref_record,
        }
        table = cls(pd.DataFrame(rows, columns=[*COLUMNS, *OPTIONAL_COLUMNS]), metadata, space)
        if calibration_archs is None and n_calibration > 0:
            calibration_archs = table.spanning_archs(n_calibration, gen)
        if calibration_archs:
            table.calibrate(calibration_archs, device, profiler)
        return table

    def spanning_archs(self, n: int, rng: np.random.Generator | int | None = None,
                       pool: int = 256) -> list[Architecture]:
        """``n`` calibration architectures from ``pool`` samples: they span the layer sum
        and, within it, the layer mix.

        The samples are cut into ``ceil(n / 2)`` bins of equal count along the plain
        layer sum; each bin gives the two samples whose concave sum
        (``gamma = 0.5``, see :func:`fit_calibration`) is highest and lowest relative
        to their plain sum (residuals of a line in log-log), i.e. many small layers vs
        few large ones at the same total. Networks that agree on the plain sum but not
        on the layer mix are what tells the calibration's ``gamma`` apart; with
        sum quantiles alone the choice of ``gamma`` rested on sum differences only.
        Measured (``bench/lut_calibration.py``, 240 timed subnets, 30 draws): with 8
        networks the spread of the chosen ``gamma`` fell from 0.13 to 0.07 (standard
        deviation) and that of held-out tau from 0.015 to 0.009; with 16-24 networks
        the two designs were about equal.
        """
        gen = as_generator(rng)
        candidates = [self.space.sample(gen) for _ in range(max(pool, n))]
        try:
            sums = self.predict_raw(candidates)
        except MissingEntriesError:  # sampled enumeration (recursive grammar): skip uncovered archs
            candidates = [a for a in candidates if not self.missing(
                self.space.layers(a, self.input_shape, self.num_classes))]
            if not candidates:
                raise HardwareError(
                    "no sampled architecture is fully covered by the table; enumerate with more "
                    "samples (n_samples) or pass calibration_archs"
                ) from None
            sums = self.predict_raw(candidates)
        return [candidates[i] for i in _contrast_design(sums, self._concave_sums(candidates), n)]

    def _concave_sums(self, archs: Sequence[Architecture], gamma: float = 0.5) -> np.ndarray:
        """Sums of ``transform_layers(t, gamma, t_ref)`` with ``t_ref`` the median layer latency."""
        t_ref = float(np.median(self.entries["latency_ms"].to_numpy()))
        return self._sums(archs, lambda t: transform_layers(t, gamma, t_ref))

    def calibrate(self, archs: Sequence[Architecture], device: Device,
                  profiler: Profiler | None = None) -> dict[str, Any]:
        """Measure whole networks (interleaved) and fit the correction; returns it.

        A table with a reference network times it with the networks and fits on
        their timings normalised to build-time speed (``measured_ms``); the raw
        timings are kept as ``measured_raw_ms``.
        """
        profiler = profiler or Profiler(statistic=self.statistic)
        archs = [self.space.validate(a) for a in archs]
        layers = [self.layer_latencies(a) for a in archs]  # raises naming any missing layer
        sums = np.array([t.sum() for t in layers])
        modules = [self.space.build(a, self.num_classes, self.input_shape) for a in archs]
        ref_record = self.reference
        raw, ref = profiler.measure_group(modules, self.input_shape, device, reference=bool(ref_record))
        factor = speed_factor(ref_record["ms"], ref.value_ms) if ref is not None else 1.0
        scaled = [normalise(m, factor) for m in raw]
        measured = [m.value_ms for m in scaled]
        cal = fit_calibration(sums, measured, layers)
        cal["archs"] = [a.to_dict() for a in archs]
        cal["sum_ms"] = [float(s) for s in sums]
        cal["measured_ms"] = [float(m) for m in measured]
        cal["measured_raw_ms"] = [m.value_ms for m in raw]
        cal["measured_stats_ms"] = {k: [getattr(m, f"{k}_ms") for m in scaled] for k in ("min", "p10", "median")}
        cal["reference_ms"] = ref.value_ms if ref is not None else None
        self.metadata["calibration"] = cal
        return cal

    # persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``.csv`` (with a ``<file>.meta.json`` sidecar) or ``.parquet`` (metadata embedded)."""
        path = Path(path)
        kind = _kind(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "csv":
            self.entries.to_csv(path, index=False)
            _sidecar(path).write_text(json.dumps(self.metadata, indent=2, sort_keys=True))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(self.entries, preserve_index=False)
            meta = dict(arrow.schema.metadata or {})
            meta[_PARQUET_KEY] = json.dumps(self.metadata, sort_keys=True).encode()
            pq.write_table(arrow.replace_schema_metadata(meta), path)
        return path

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | None = None, device: Device | None = None,
             input_shape: Sequence[int] | None = None) -> LatencyTable:
        """Read a saved table; refuse it for another space, device or input shape.

        Raises:
            TableMismatchError: the table was built for something else (the message
                says what differs).
            HardwareError: the file is not a latency table (names the missing part).
        """
        path = Path(path)
        kind = _kind(path)
        if not path.is_file():
            raise HardwareError(f"latency table {str(path)!r} does not exist")
        if kind == "csv":
            sidecar = _sidecar(path)
            if not sidecar.is_file():
                raise HardwareError(f"latency table {str(path)!r} has no metadata file {str(sidecar)!r}")
            metadata = json.loads(sidecar.read_text())
            entries = pd.read_csv(path, dtype={"params": str, "in_shape": str, "out_shape": str})
        else:
            import pyarrow.parquet as pq

            arrow = pq.read_table(path)
            raw = (arrow.schema.metadata or {}).get(_PARQUET_KEY)
            if raw is None:
                raise HardwareError(f"parquet file {str(path)!r} carries no latency-table metadata")
            metadata = json.loads(raw)
            entries = arrow.to_pandas()
        if metadata.get("format") != FORMAT:
            raise HardwareError(f"{str(path)!r} is not a latency table (format {metadata.get('format')!r})")
        absent = [c for c in COLUMNS if c not in entries.columns]
        if absent:
            raise HardwareError(f"latency table {str(path)!r} lacks column(s) {absent}")
        table = cls(entries, metadata, space)
        stored = table.reference
        if stored and stored.get("fingerprint") != reference_spec()["fingerprint"]:
            import warnings

            warnings.warn(
                f"latency table {str(path)!r} was normalised by reference network "
                f"{stored.get('name')!r} (fingerprint {stored.get('fingerprint')}), not by this "
                f"library's {reference_spec()['name']!r}: its predictions stand, but validate() "
                "cannot put new timings on its scale (normalise=False, or rebuild the table)",
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
            f"batch={fp['batch_size']} on {fp['processor']} ({fp['cores']} cores), torch {fp['torch']}",
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
        return "\n".join(lines)


def _contrast_design(sums: np.ndarray, concave: np.ndarray, n: int) -> list[int]:
    """Indices of ``n`` samples spanning ``sums`` with extreme ``concave / sums`` in each bin
    (see :meth:`LatencyTable.spanning_archs`); the sample order is the plain-sum order."""
    order = np.argsort(sums, kind="stable")
    if n >= len(order):
        return order.tolist()
    x = np.log(np.maximum(sums, 1e-12))
    y = np.log(np.maximum(concave, 1e-12)) - x
    residual = y - np.polyval(np.polyfit(x, y, 1), x) if np.ptp(x) > 0 else y
    picks: list[int] = []
    for members in np.array_split(order, (n + 1) // 2):
        ranked = members[np.argsort(residual[members], kind="stable")]
        for i in (ranked[-1], ranked[0]):
            if len(picks) < n and int(i) not in picks:
                picks.append(int(i))
    rest = [int(i) for i in order if int(i) not in picks]  # bins of one sample leave a gap
    picks += rest[: n - len(picks)]
    return sorted(picks, key=lambda i: sums[i])


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise HardwareError(f"latency table file must end in .csv or .parquet, got {str(path)!r}")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _build_layer(spec: LayerSpec) -> torch.nn.Module:
    # Weights do not change latency; a fixed seed keeps builds reproducible
    # without touching the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return get_op(spec.op).build(spec.in_shape, spec.param_dict)


def _row(spec: LayerSpec, m: Measurement, reference_ms: float = float("nan")) -> dict[str, Any]:
    return {"reference_ms": reference_ms, "key": spec.key, "op": spec.op, "params": json.dumps(spec.param_dict, sort_keys=True),
            "in_shape": _shape_str(spec.in_shape), "out_shape": _shape_str(spec.out_shape),
            "latency_ms": m.value_ms, "min_ms": m.min_ms, "p10_ms": m.p10_ms,
            "median_ms": m.median_ms, "p90_ms": m.p90_ms, "mean_ms": m.mean_ms, "n_runs": m.n_runs}
