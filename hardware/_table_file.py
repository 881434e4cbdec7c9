"""The latency-table file format: one row per layer, plus the table's metadata.

Two layouts hold the same data:

- ``.csv``: the rows, and the metadata as JSON in a sidecar ``<file>.meta.json``;
- ``.parquet`` (or ``.pq``): the rows, with the metadata as JSON in the schema's
  key-value metadata under ``hwnas.latency_table``.

The metadata's ``format`` is :data:`FORMAT` and its ``version`` :data:`VERSION`;
the rows have the columns :data:`COLUMNS` (:func:`layer_row` writes one). This
module is the one place that reads and writes the files; :class:`hardware.LatencyTable`
gives them meaning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hardware._profiler import Measurement
from hardware.errors import HardwareError
from search_spaces import LayerSpec

__all__ = ["COLUMNS", "FORMAT", "VERSION", "layer_row", "read_table", "write_table"]

FORMAT = "hwnas-latency-table"
VERSION = 1
COLUMNS = ("key", "op", "params", "in_shape", "out_shape", "latency_ms", "min_ms", "p10_ms",
           "median_ms", "p90_ms", "mean_ms", "n_runs", "reference_ms")
"""Columns of a saved table. ``latency_ms`` is the profiler's statistic and, like the
other ``*_ms`` columns, at build-time machine speed; ``reference_ms`` is the reference
network's time in the layer's round-robin group (NaN for a table built without one)."""

_PARQUET_KEY = b"hwnas.latency_table"
_TEXT_COLUMNS = {"params": str, "in_shape": str, "out_shape": str}


def layer_row(spec: LayerSpec, m: Measurement, reference_ms: float = float("nan")) -> dict[str, Any]:
    """One row of :data:`COLUMNS`: a layer and its measured latency distribution."""
    return {"key": spec.key, "op": spec.op, "params": json.dumps(spec.param_dict, sort_keys=True),
            "in_shape": _shape_str(spec.in_shape), "out_shape": _shape_str(spec.out_shape),
            "latency_ms": m.value_ms, "min_ms": m.min_ms, "p10_ms": m.p10_ms,
            "median_ms": m.median_ms, "p90_ms": m.p90_ms, "mean_ms": m.mean_ms, "n_runs": m.n_runs,
            "reference_ms": reference_ms}


def _pyarrow(path: Path) -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, or one line saying how to get them (an optional extra)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise HardwareError(f"latency table {str(path)!r}: .parquet files need pyarrow "
                            "(pip install 'hwnas[parquet]'), or use .csv") from None
    return pyarrow, pyarrow.parquet


def write_table(path: str | Path, entries: pd.DataFrame, metadata: Mapping[str, Any]) -> Path:
    """Write ``entries`` and ``metadata`` to ``path`` (``.csv`` with a sidecar, or ``.parquet``)."""
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        entries.to_csv(path, index=False)
        _sidecar(path).write_text(json.dumps(metadata, indent=2, sort_keys=True))
        return path
    pa, pq = _pyarrow(path)
    arrow = pa.Table.from_pandas(entries, preserve_index=False)
    schema_meta = dict(arrow.schema.metadata or {})
    schema_meta[_PARQUET_KEY] = json.dumps(metadata, sort_keys=True).encode()
    pq.write_table(arrow.replace_schema_metadata(schema_meta), path)
    return path


def read_table(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows and metadata of a saved table.

    Raises:
        HardwareError: naming the file and what is wrong: a missing file or
            sidecar, no embedded metadata, another format, missing columns.
    """
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise HardwareError(f"latency table {str(path)!r} does not exist")
    if kind == "csv":
        metadata, entries = _read_csv(path)
    else:
        metadata, entries = _read_parquet(path)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise HardwareError(f"{str(path)!r} is not a latency table (format {found!r})")
    absent = [c for c in COLUMNS if c not in entries.columns]
    if absent:
        raise HardwareError(f"latency table {str(path)!r} lacks column(s) {absent}")
    _check_rows(path, entries)
    return entries, metadata


def _read_csv(path: Path) -> tuple[Any, pd.DataFrame]:
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        raise HardwareError(f"latency table {str(path)!r} has no metadata file {str(sidecar)!r}")
    try:
        metadata = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HardwareError(f"metadata file {str(sidecar)!r} is not valid JSON ({exc})") from None
    try:
        entries = pd.read_csv(path, dtype=_TEXT_COLUMNS)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HardwareError(f"latency table {str(path)!r} is not a readable CSV: {first}") from None
    return metadata, entries


def _read_parquet(path: Path) -> tuple[Any, pd.DataFrame]:
    pa, pq = _pyarrow(path)
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise HardwareError(f"latency table {str(path)!r} is not a readable parquet file: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    raw = (arrow.schema.metadata or {}).get(_PARQUET_KEY)
    if raw is None:
        raise HardwareError(f"parquet file {str(path)!r} carries no latency-table metadata")
    try:
        metadata = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HardwareError(f"parquet file {str(path)!r}: its table metadata is not JSON ({exc})") from None
    return metadata, arrow.to_pandas()


MAX_LATENCY_MS = 1e6
"""A layer latency above this (over 16 minutes) is a broken measurement, not a layer."""


def _check_rows(path: Path, entries: pd.DataFrame) -> None:
    """Every layer once, with a finite, non-negative and plausible latency (rows numbered as
    in a CSV file: the header is row 1)."""
    keys = entries["key"].astype(str)
    dup = keys.duplicated(keep="first")
    if dup.any():
        row = int(dup.to_numpy().argmax())
        first = int((keys == keys.iloc[row]).to_numpy().argmax())
        raise HardwareError(f"latency table {str(path)!r} row {row + 2}: layer {keys.iloc[row]!r} "
                            f"repeats row {first + 2}")
    values = pd.to_numeric(entries["latency_ms"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0) | (values > MAX_LATENCY_MS)
    if bad.any():
        row = int(bad.argmax())
        raise HardwareError(f"latency table {str(path)!r} row {row + 2}: latency_ms "
                            f"{entries['latency_ms'].iloc[row]!r} of layer {keys.iloc[row]!r} is not a "
                            f"latency (needs a finite value in [0, {MAX_LATENCY_MS:g}] ms)")


def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise HardwareError(f"latency table file must end in .csv or .parquet, got {str(path)!r}")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")
