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
        sidecar = _sidecar(path)
        if not sidecar.is_file():
            raise HardwareError(f"latency table {str(path)!r} has no metadata file {str(sidecar)!r}")
        metadata = json.loads(sidecar.read_text())
        entries = pd.read_csv(path, dtype=_TEXT_COLUMNS)
    else:
        _, pq = _pyarrow(path)
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
    return entries, metadata


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
