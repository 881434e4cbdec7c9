"""Export a chosen subnet as a plain state_dict, TorchScript and ONNX, each verified."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.errors import NasError
from search_spaces import Architecture, SearchSpace

__all__ = ["export_subnet", "load_exported"]

TOLERANCE = 1e-4


def export_subnet(model: nn.Module, space: SearchSpace, arch: Architecture, out_dir: Path,
                  input_shape: tuple[int, ...], num_classes: int, formats: tuple[str, ...],
                  space_options: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """Write ``model.pt`` (state_dict + arch), ``model.torchscript.pt`` and ``model.onnx``.

    Every file is loaded back and run on the same random batch; the largest absolute
    difference to the original model's output is recorded (and must be <= 1e-4).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((4, *input_shape)).astype(np.float32))
    with torch.inference_mode():
        reference = model(x)
    files: dict[str, Any] = {}
    if "state_dict" in formats:
        path = out_dir / "model.pt"
        torch.save({"state_dict": model.state_dict(), "arch": arch.to_json(), "space": space.name,
                    "space_options": json.dumps(space_options or {}), "fingerprint": space.fingerprint,
                    "input_shape": list(input_shape), "num_classes": num_classes}, path)
        restored = load_exported(path, space)
        files["state_dict"] = _check(path, restored, x, reference)
    if "torchscript" in formats:
        path = out_dir / "model.torchscript.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, x, check_trace=False)
        traced.save(str(path))
        files["torchscript"] = _check(path, torch.jit.load(str(path)), x, reference)
    if "onnx" in formats:
        path = out_dir / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["input"],
                              output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
        files["onnx"] = _record(path, (out - reference).abs().max().item())
    (out_dir / "arch.json").write_text(arch.to_json())
    return files


def _check(path: Path, module: Any, x: torch.Tensor, reference: torch.Tensor) -> dict[str, Any]:
    with torch.inference_mode():
        diff = (module(x) - reference).abs().max().item()
    return _record(path, diff)


def _record(path: Path, diff: float) -> dict[str, Any]:
    if not diff <= TOLERANCE:
        raise NasError(f"{path}: the exported model differs from the original by {diff:.3g}")
    return {"path": str(path), "max_abs_diff": diff}


def load_exported(path: str | Path, space: SearchSpace | None = None) -> nn.Module:
    """Rebuild a model saved as ``model.pt`` (weights only; the space rebuilds the module)."""
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
