"""`import_measurements`: a bundle's runner output becomes a :class:`~hardware.LatencyTable`.

The rows are treated as a local build treats its own timings (:mod:`hardware._build`):
every layer is normalised by the reference network's time in its group, divided by
the reference's median over the layer groups; the calibration networks are fitted by
the same :func:`~hardware._build.calibration_record`; the busy-machine guard
(:mod:`hardware._guard`) judges the device's own timings. The device fingerprint the
runner wrote (``<measurements>.device.json``) becomes the table's device.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from hardware._build import calibration_record, reference_record, table_metadata
from hardware._bundle import read_manifest, spec_from_data
from hardware._guard import check_machine
from hardware._profiler import Measurement
from hardware._reference import normalise, speed_factor
from hardware._table import LatencyTable
from hardware._table_file import COLUMNS, layer_row
from hardware.errors import HardwareError
from search_spaces import Architecture, SearchSpace, get_space

__all__ = ["MEASUREMENT_COLUMNS", "import_measurements"]

MEASUREMENT_COLUMNS = ("bundle_id", "group", "model", "kind", "value_ms", "min_ms", "p10_ms", "median_ms",
                       "p90_ms", "mean_ms", "n_runs", "reference_ms")
_STATS = ("value_ms", "min_ms", "p10_ms", "median_ms", "p90_ms", "mean_ms")


def import_measurements(bundle: str | Path, measurements: str | Path, space: SearchSpace | None = None,
                        refuse_drift: float | None = 3.0, refuse_noise: float | None = None) -> LatencyTable:
    """The latency table of a bundle's measurements (the runner's CSV and its ``.device.json``).

    Args:
        bundle: the bundle folder (its ``manifest.json``).
        measurements: the runner's CSV.
        space: the bundle's space (default: re-created from the registry by name and options).
        refuse_drift, refuse_noise: the busy-machine guard's refusal levels (see
            :class:`~hardware.BuildSettings`; ``None`` never refuses).

    Raises:
        HardwareError: naming the file, row and column: another bundle's measurements, a
            model never measured, a malformed row, a missing device file, a space that differs.
    """
    manifest = read_manifest(bundle)
    path = Path(measurements)
    device = _read_device(path, manifest)
    frame = _read_rows(path, manifest)
    space = _space(manifest, space)
    models = {m["id"]: m for m in manifest["models"]}
    latest = frame.drop_duplicates("model", keep="last").set_index("model")
    _check_complete(path, manifest, models, latest)
    layer_groups = sorted({int(latest.loc[m["id"], "group"]) for m in models.values() if m["kind"] == "layer"})
    ref_rows = frame[frame["kind"] == "reference"].drop_duplicates("group", keep="last").set_index("group")
    refs = {g: _measurement(ref_rows.loc[g], manifest["statistic"]) for g in ref_rows.index}
    holder = SimpleNamespace(dtype=device["dtype"], batch_size=device["batch_size"])
    ref_record = reference_record([refs[g] for g in layer_groups], manifest["statistic"], holder)
    ref_record["fingerprint"] = manifest["reference"]["fingerprint"]
    rows = []
    for model in (m for m in manifest["models"] if m["kind"] == "layer"):
        row = latest.loc[model["id"]]
        group_ms = refs[int(row["group"])].value_ms
        rows.append(layer_row(spec_from_data(model["spec"]),
                              normalise(_measurement(row, manifest["statistic"]),
                                        speed_factor(ref_record["ms"], group_ms)), group_ms))
    options = {"threads": device.get("threads"), "batch_size": device["batch_size"]}
    if manifest["precision"] != "fp32":
        options["precision"] = manifest["precision"]
    metadata = table_metadata(space, manifest["space"]["options"], manifest["space"]["enumeration"]["method"],
                              manifest["space"]["enumeration"]["n_samples"], tuple(manifest["input_shape"]),
                              manifest["num_classes"], device, options,
                              {**manifest["profiler"], **(device.get("profiler") or {})},
                              float(device.get("noise_floor_ms", 0.0)), ref_record)
    metadata["source"] = {"bundle_id": manifest["bundle_id"], "measurements": str(path),
                          "precision": manifest["precision"], "provider": device.get("provider")}
    table = LatencyTable(pd.DataFrame(rows, columns=list(COLUMNS)), metadata, space)
    cal = [m for m in manifest["models"] if m["kind"] == "calibration"]
    if cal:
        group = int(latest.loc[cal[0]["id"], "group"])
        raw = [_measurement(latest.loc[m["id"]], manifest["statistic"]) for m in cal]
        archs = [space.validate(Architecture(m["arch"])) for m in cal]
        table.metadata["calibration"] = calibration_record(table, archs, raw, refs.get(group))
    check_machine(table.metadata, refuse_drift, refuse_noise, what=f"latency table from {str(path)!r}")
    return table


def _read_device(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    device_path = path.with_name(path.name + ".device.json")
    if not device_path.is_file():
        raise HardwareError(f"{str(path)!r} has no device file {str(device_path)!r}: copy it back from "
                            "the device with the measurements (the runner writes both)")
    device = json.loads(device_path.read_text())
    if device.get("bundle_id") != manifest["bundle_id"]:
        raise HardwareError(f"{str(device_path)!r} is from bundle {device.get('bundle_id')!r}, not from this "
                            f"bundle {manifest['bundle_id']!r}")
    missing = [k for k in ("kind", "processor", "dtype", "batch_size") if k not in device]
    if missing:
        raise HardwareError(f"{str(device_path)!r} lacks the key(s) {missing}")
    return device


def _read_rows(path: Path, manifest: dict[str, Any]) -> pd.DataFrame:
    if not path.is_file():
        raise HardwareError(f"measurements file {str(path)!r} does not exist")
    try:
        frame = pd.read_csv(path, dtype={"bundle_id": str, "model": str, "kind": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise HardwareError(f"{str(path)!r} is not a readable CSV ({str(exc).strip()})") from None
    absent = [c for c in MEASUREMENT_COLUMNS if c not in frame.columns]
    if absent:
        raise HardwareError(f"{str(path)!r} lacks column(s) {absent}; is it the runner's measurements.csv?")
    other = frame.index[frame["bundle_id"] != manifest["bundle_id"]]
    if len(other):
        row = int(other[0])
        raise HardwareError(f"{str(path)!r} row {row + 2} is from bundle {frame.loc[row, 'bundle_id']!r}, not "
                            f"from this bundle {manifest['bundle_id']!r}")
    for column in (*_STATS, "n_runs", "reference_ms", "group"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)))
        if bad.size:
            raise HardwareError(f"{str(path)!r} row {int(bad[0]) + 2}, column {column!r}: "
                                f"{frame[column].iloc[bad[0]]!r} is not a non-negative number")
        frame[column] = values
    return frame


def _check_complete(path: Path, manifest: dict[str, Any], models: dict[str, Any],
                    latest: pd.DataFrame) -> None:
    unknown = sorted(set(latest.index) - set(models) - {"reference"})
    if unknown:
        raise HardwareError(f"{str(path)!r} measures model(s) {unknown[:5]} that bundle "
                            f"{manifest['bundle_id']!r} does not hold")
    absent = [m for m in manifest["models"] if m["id"] not in latest.index]
    if absent:
        names = ", ".join(m.get("key") or m["id"] for m in absent[:5])
        more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        raise HardwareError(f"{str(path)!r} lacks {len(absent)} of the bundle's {len(models)} models: "
                            f"{names}{more}; run the runner again with the same output to resume")


def _measurement(row: Any, statistic: str) -> Measurement:
    return Measurement(float(row["value_ms"]), statistic, float(row["min_ms"]), float(row["p10_ms"]),
                       float(row["median_ms"]), float(row["p90_ms"]), float(row["mean_ms"]),
                       int(row["n_runs"]), 0.0)


def _space(manifest: dict[str, Any], space: SearchSpace | None) -> SearchSpace:
    meta = manifest["space"]
    if space is None:
        try:
            space = get_space(meta["name"], **meta["options"])
        except ValueError as exc:
            raise HardwareError(f"cannot re-create the bundle's space {meta['name']!r} ({exc}); pass its "
                                "space") from None
    if space.name != meta["name"] or space.fingerprint != meta["fingerprint"]:
        raise HardwareError(f"the bundle was made for space {meta['name']!r} (grammar {meta['fingerprint']}), "
                            f"not for {space.name!r} (grammar {space.fingerprint})")
    return space
