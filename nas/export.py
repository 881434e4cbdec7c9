"""The one export: a model as a state_dict + architecture, TorchScript and ONNX, each verified.

Used by ``nas run`` (OFA and DARTS pipelines), ``nas supernet extract`` and the Python
API. Every file written is loaded back and run on the same random batch as the
original model (on the model's device, or the ``device`` asked for); a difference
above ``TOLERANCE`` is an error, not a warning. Files are written from CPU tensors,
so an export made on a GPU loads on a CPU.

An export cannot be silently wrong: a subnet extracted from an OFA supernet carries
the batch-norm statistics the supernet last had, which belong to another subnet (or
to training) unless they were recalibrated for this one. ``OFASupernet.extract`` marks
its module (``bn_calibrated``); :func:`export_subnet` refuses a module marked
uncalibrated, unless ``calibration`` batches are given, on which it recalibrates the
module's batch-norm statistics first.

Example:
    >>> from nas.export import export_subnet                            # doctest: +SKIP
    >>> evaluate_subnet(supernet, arch, data, "test")  # recalibrates BN for arch
    >>> files = export_subnet(supernet.extract(arch), space, arch, "runs/best",
    ...                       data.input_shape, data.num_classes)
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.errors import NasError
from search_spaces import Architecture, SearchSpace

__all__ = ["FORMATS", "TOLERANCE", "export_subnet", "load_exported"]

FORMATS = ("state_dict", "torchscript", "onnx")
TOLERANCE = 1e-4
"""Largest absolute difference allowed between a re-loaded export and the original."""

_FILES = {"state_dict": "model.pt", "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}


def export_subnet(model: nn.Module, space: SearchSpace, arch: Architecture, out_dir: str | Path,
                  input_shape: Sequence[int], num_classes: int,
                  formats: Sequence[str] = FORMATS, space_options: Mapping[str, Any] | None = None,
                  seed: int = 0,
                  calibration: Iterable[torch.Tensor | Sequence[torch.Tensor]] | None = None,
                  device: str | torch.device | None = None) -> dict[str, dict[str, Any]]:
    """Write ``model.pt`` (state_dict + arch), ``model.torchscript.pt``, ``model.onnx`` and
    ``arch.json`` into ``out_dir``; every file is re-loaded and checked.

    Args:
        model: ``space.build(arch)``'s module with trained weights (e.g. from
            ``OFASupernet.extract``, or an architecture trained standalone).
        space, arch: what the model is (recorded so :func:`load_exported` rebuilds it).
        out_dir: folder of the files (created).
        input_shape, num_classes: the model's input (without batch) and output size.
        formats: any of ``"state_dict"``, ``"torchscript"``, ``"onnx"``.
        space_options: the space's factory options (recorded).
        seed: seed of the random batch the exports are checked on.
        calibration: batches (tensors or (x, y) pairs) of training inputs; when given,
            the model's batch-norm statistics are recalibrated on them first (needed
            for an OFA subnet extracted without recalibrating the supernet for it).
        device: where the state_dict and TorchScript exports are verified against the
            model (default: where the model's weights are). The files are written from a
            CPU copy, so they load anywhere; ONNX is verified with ONNX Runtime on the CPU.

    Returns:
        ``{format: {"path": ..., "max_abs_diff": ...}}``.

    Raises:
        NasError: an unknown format, an uncalibrated OFA subnet without ``calibration``,
            or an export that differs from the model by more than ``TOLERANCE``.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise NasError(f"unknown export format(s) {unknown}; valid: {', '.join(FORMATS)}")
    _ensure_calibrated(model, arch, calibration)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    home = _device_of(model)
    device = torch.device(device) if device is not None else home
    cpu_model = model if home.type == "cpu" else copy.deepcopy(model).cpu()
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((4, *input_shape))
                         .astype(np.float32))
    with torch.inference_mode():
        reference = model.to(device)(x.to(device))
    files: dict[str, dict[str, Any]] = {}
    for fmt in formats:
        path = out_dir / _FILES[fmt]
        if fmt == "state_dict":
            torch.save({"state_dict": cpu_model.state_dict(), "arch": arch.to_json(),
                        "space": space.name, "space_options": json.dumps(dict(space_options or {})),
                        "fingerprint": space.fingerprint, "input_shape": list(input_shape),
                        "num_classes": num_classes}, path)
            files[fmt] = _check(path, load_exported(path, space).to(device), x, reference)
        elif fmt == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.jit.trace(cpu_model, x, check_trace=False).save(str(path))
            files[fmt] = _check(path, torch.jit.load(str(path), map_location=device), x, reference)
        else:
            with torch.inference_mode():
                cpu_reference = cpu_model(x)
            files[fmt] = _record(path, _onnx_diff(cpu_model, path, x, cpu_reference))
    model.to(home)
    (out_dir / "arch.json").write_text(arch.to_json())
    return files


def _ensure_calibrated(model: nn.Module, arch: Architecture, calibration: Any) -> None:
    from supernets import recalibrate_bn

    if calibration is not None:
        if not recalibrate_bn(model, calibration):
            raise NasError("export: the calibration batches are empty")
        return
    if getattr(model, "bn_calibrated", True) is False:
        raise NasError(
            f"export: subnet {arch.key} was extracted from an OFA supernet whose batch-norm "
            "statistics were not recalibrated for it, so the exported model would score far "
            "below its measured accuracy; recalibrate first (supernets.evaluate_subnet(supernet, "
            "arch, data) before supernet.extract(arch)) or pass calibration= batches of "
            "training images (e.g. supernets.calibration_batches(data.train, 256))")


def _onnx_diff(model: nn.Module, path: Path, x: torch.Tensor, reference: torch.Tensor) -> float:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover  (a dependency of the package)
        raise NasError("export format 'onnx' needs onnxruntime (pip install onnxruntime)") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    return (out - reference).abs().max().item()


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter([*model.parameters(), *model.buffers()]), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _check(path: Path, module: Any, x: torch.Tensor, reference: torch.Tensor) -> dict[str, Any]:
    """Runs the re-loaded export on the reference's device."""
    with torch.inference_mode():
        diff = (module(x.to(reference.device)) - reference).abs().max().item()
    return _record(path, diff)


def _record(path: Path, diff: float) -> dict[str, Any]:
    if not diff <= TOLERANCE:
        raise NasError(f"{path}: the exported model differs from the original by {diff:.3g}")
    return {"path": str(path), "max_abs_diff": diff}


def load_exported(path: str | Path, space: SearchSpace | None = None) -> nn.Module:
    """Rebuild a model saved as ``model.pt`` (weights only; the space rebuilds the module).

    Args:
        path: the ``model.pt`` file.
        space: the space (default: rebuilt from the recorded name and options).

    Raises:
        NasError: the space's grammar is not the one the model was saved with.
    """
    from search_spaces import get_space

    data = torch.load(path, map_location="cpu", weights_only=True)
    if space is None:
        space = get_space(data["space"], **json.loads(data["space_options"]))
    if space.fingerprint != data["fingerprint"]:
        raise NasError(f"{path}: saved for space {data['space']!r} with another grammar version "
                       f"({data['fingerprint']} vs {space.fingerprint})")
    arch = Architecture.from_json(data["arch"])
    model = space.build(arch, data["num_classes"], tuple(data["input_shape"]))
    model.load_state_dict(data["state_dict"])
    return model.eval()
