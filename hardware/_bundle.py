"""Portable profiling bundles: a space's layers as ONNX files, for devices hwnas cannot run on.

:func:`make_bundle` writes a folder that a phone, a board or a server without hwnas
can time with the standalone runner it carries (``measure.py``: Python 3, numpy and
onnxruntime only)::

    BUNDLE/
      manifest.json        space, fingerprint, shapes, precision, groups, every model
      layers/L00000.onnx   one per realisable layer of the space
      calibration/C000.onnx  whole networks spanning the layer sums (the local build's choice)
      reference.onnx       the reference network timed in every group (hardware._reference)
      noop.onnx            an identity model: the timer's noise floor
      measure.py           the runner (hardware/runner/measure.py)

The runner's output imports back into a :class:`~hardware.LatencyTable` with
:func:`hardware.import_measurements`. The calibration networks are chosen before
any layer is timed, so the design of :meth:`~hardware.LatencyTable.spanning_archs`
runs on a stand-in table whose layer latencies are a roofline proxy
(FLOPs plus 10x the elements moved; docs/decisions/latency-bundles.md).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from hardware._build import _build_layer, table_metadata
from hardware._onnx import PRECISIONS, export_onnx, to_precision
from hardware._profiler import Profiler, _NoOp
from hardware._reference import REFERENCE_INPUT, reference_module, reference_spec
from hardware.errors import HardwareError
from search_spaces import Architecture, LayerSpec, SearchSpace, as_generator, layer_complexity

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "RUNNER", "make_bundle", "read_manifest"]

BUNDLE_FORMAT = "hwnas-latency-bundle"
BUNDLE_VERSION = 1
RUNNER = Path(__file__).with_name("runner") / "measure.py"
"""The standalone runner script copied into every bundle."""


def make_bundle(space: SearchSpace, out: str | Path, input_shape: Sequence[int] | None = None,
                num_classes: int | None = None, *, precision: str = "fp32", batch_size: int = 1,
                n_calibration: int = 16, rng: np.random.Generator | int | None = 0,
                space_options: Mapping[str, Any] | None = None, enumeration: str = "auto",
                n_samples: int = 2000, chunk_size: int = 32, profiler: Profiler | None = None,
                opset: int = 17, progress: bool | None = None) -> Path:
    """Write a profiling bundle of ``space`` to the folder ``out`` (new or empty).

    Args:
        space: the search space.
        out: the bundle folder.
        input_shape, num_classes: default to the space's.
        precision: ``"fp32"`` or ``"int8"`` (every model statically quantised, :mod:`hardware._onnx`).
        batch_size: batch dimension of every model's input.
        n_calibration: whole networks for the calibration (0: none).
        rng: seed or generator (calibration networks; sampled enumeration).
        space_options: factory options of a registered space (stored, so the import re-creates it).
        enumeration, n_samples: how the layers are found (see ``SearchSpace.realisable_layers``).
        chunk_size: layers timed round-robin together by the runner.
        profiler: the runner's defaults (statistic, warm-up, runs, budget); default ``Profiler()``.
        opset: ONNX opset.
        progress: show a progress bar (default: when attached to a terminal).

    Returns:
        The path of ``manifest.json``.
    """
    if precision not in PRECISIONS:
        raise HardwareError(f"bundle precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise HardwareError(f"bundle folder {str(out)!r} is not empty; choose a new folder")
    gen = as_generator(rng)
    shape = tuple(input_shape) if input_shape is not None else tuple(space.input_shape)
    classes = int(num_classes or space.num_classes)
    profiler = profiler or Profiler()
    found = space.realisable_layers(shape, classes, enumeration, n_samples, gen)
    archs = _calibration_archs(space, found.specs, shape, classes, n_calibration, gen)
    writer = _Writer(out, batch_size, precision, opset, progress, len(found.specs) + len(archs) + 2)
    layers = [writer.add(f"layers/L{i:05d}.onnx", _build_layer(spec), spec.in_shape, kind="layer",
                         key=spec.key, spec=_spec_data(spec)) for i, spec in enumerate(found.specs)]
    calibration = [writer.add(f"calibration/C{i:03d}.onnx", space.build(a, classes, shape), shape,
                              kind="calibration", arch=a.to_dict()) for i, a in enumerate(archs)]
    reference = writer.add("reference.onnx", reference_module(), REFERENCE_INPUT, kind="reference")
    noop = writer.add("noop.onnx", _NoOp(), (1,), kind="noop")
    writer.close()
    ids = [m["id"] for m in layers]
    groups = [ids[i:i + chunk_size] for i in range(0, len(ids), chunk_size)]
    if calibration:
        groups.append([m["id"] for m in calibration])
    manifest = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "space": {"name": space.name, "fingerprint": space.fingerprint, "options": dict(space_options or {}),
                  "enumeration": {"method": found.method, "n_samples": found.n_samples}},
        "input_shape": list(shape), "num_classes": classes, "precision": precision,
        "batch_size": batch_size, "opset": opset, "statistic": profiler.statistic,
        "profiler": profiler.settings(), "exporter": {"torch": torch.__version__},
        "reference": reference_spec(), "reference_model": reference, "noop_model": noop,
        "models": layers + calibration, "groups": groups,
    }
    manifest["bundle_id"] = _bundle_id(manifest, writer.digests)
    shutil.copyfile(RUNNER, out / "measure.py")
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return path


class _Writer:
    """Exports modules to ONNX files in the bundle, at the bundle's precision, with a progress bar."""

    def __init__(self, out: Path, batch: int, precision: str, opset: int, progress: bool | None,
                 total: int) -> None:
        self.out, self.batch, self.precision, self.opset = out, batch, precision, opset
        self.digests: dict[str, str] = {}
        self.bar = tqdm(total=total, desc="exporting models", unit="model",
                        disable=None if progress is None else not progress)

    def add(self, name: str, module: torch.nn.Module, shape: Sequence[int], kind: str,
            **extra: Any) -> dict[str, Any]:
        full = (self.batch, *shape)
        gen = torch.Generator().manual_seed(0)
        example = torch.randn(*full, generator=gen)
        data = to_precision(export_onnx(module, example, self.opset), full, self.precision)
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.digests[name] = hashlib.sha256(data).hexdigest()
        self.bar.update(1)
        return {"id": Path(name).stem if kind in ("layer", "calibration") else kind, "kind": kind,
                "file": name, "input_shape": list(full), **extra}

    def close(self) -> None:
        self.bar.close()


def _bundle_id(manifest: Mapping[str, Any], digests: Mapping[str, str]) -> str:
    content = {k: v for k, v in manifest.items() if k != "created"}
    blob = json.dumps({"manifest": content, "files": dict(sorted(digests.items()))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _spec_data(spec: LayerSpec) -> dict[str, Any]:
    return {"op": spec.op, "params": [list(p) for p in spec.params], "in_shape": list(spec.in_shape),
            "out_shape": list(spec.out_shape)}


def spec_from_data(data: Mapping[str, Any]) -> LayerSpec:
    """The :class:`LayerSpec` of a manifest entry (inverse of the bundle's ``spec`` field)."""
    return LayerSpec(data["op"], tuple((k, _tuple(v)) for k, v in data["params"]),
                     tuple(data["in_shape"]), tuple(data["out_shape"]))


def _tuple(value: Any) -> Any:
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


def _calibration_archs(space: SearchSpace, specs: Sequence[LayerSpec], shape: tuple[int, ...], classes: int,
                       n: int, gen: np.random.Generator) -> list[Architecture]:
    """``n`` networks chosen by the local build's design on a table of proxy layer costs."""
    if n <= 0:
        return []
    from hardware._table import LatencyTable
    from hardware._table_file import COLUMNS

    rows = []
    for spec in specs:
        flops, _ = layer_complexity(spec)
        elements = float(np.prod(spec.in_shape)) + float(np.prod(spec.out_shape))
        rows.append({"key": spec.key, "latency_ms": (float(flops) + 10.0 * elements) * 1e-6 + 1e-4})
    meta = table_metadata(space, {}, "proxy", 0, shape, classes, {"dtype": "float32", "batch_size": 1},
                          {}, {"statistic": "p10"}, 0.0, None)
    proxy = LatencyTable(pd.DataFrame(rows, columns=["key", "latency_ms"]).reindex(columns=list(COLUMNS)),
                         meta, space)
    return proxy.spanning_archs(n, gen)


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """The manifest of a bundle folder, checked for format and version.

    Raises:
        HardwareError: naming the folder and what is wrong.
    """
    path = Path(bundle) / "manifest.json"
    if not path.is_file():
        raise HardwareError(f"{str(bundle)!r} is not a latency bundle: it has no manifest.json")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise HardwareError(f"{str(path)!r} is not valid JSON ({exc})") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise HardwareError(f"{str(path)!r} is not a latency bundle manifest (format {manifest.get('format')!r})")
    if manifest.get("version") != BUNDLE_VERSION:
        raise HardwareError(f"{str(path)!r} is bundle version {manifest.get('version')!r}; this hwnas reads "
                            f"version {BUNDLE_VERSION}: make the bundle again with this version")
    return manifest
