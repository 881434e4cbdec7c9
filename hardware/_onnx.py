"""ONNX export and INT8 quantisation of modules: one place for the ONNX Runtime device and bundles.

INT8 is onnxruntime's *static* quantisation in the QDQ format (weights and activations
int8, per-channel weights), calibrated on a few random inputs. Static, not dynamic:
dynamic quantisation turns a Conv into ``ConvInteger`` with activations quantised at
run time, which is neither what a deployed INT8 network runs nor fast on CPUs (it timed
slower than FP32 here, see docs/decisions/latency-int8.md). The calibration data only set
the quantisation scales, which do not change the latency, so random inputs are enough.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hardware.errors import DeviceUnavailableError, HardwareError

__all__ = ["PRECISIONS", "export_onnx", "quantize_int8", "to_precision"]

PRECISIONS = ("fp32", "int8")
INPUT_NAME = "x"


def export_onnx(module: nn.Module, example: torch.Tensor, opset: int = 17) -> bytes:
    """The module exported to ONNX (TorchScript exporter), input named ``x``.

    The module is put in eval mode and float32; gradients and inference mode are off
    during the export (which the exporter needs).
    """
    module = module.eval().float()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example.float(),), buffer, dynamo=False, input_names=[INPUT_NAME],
                          opset_version=opset)
    return buffer.getvalue()


class _RandomReader:
    """onnxruntime's CalibrationDataReader protocol: a few seeded random inputs."""

    def __init__(self, shape: Sequence[int], n: int = 4, seed: int = 0) -> None:
        gen = np.random.default_rng(seed)
        self._batches = iter([{INPUT_NAME: gen.standard_normal(tuple(shape)).astype(np.float32)}
                              for _ in range(n)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(model: bytes, input_shape: Sequence[int]) -> bytes:
    """Static INT8 (QDQ) quantisation of an ONNX model whose input ``x`` has ``input_shape``
    (batch included); see the module docstring for the choice."""
    try:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    except ImportError:
        raise DeviceUnavailableError("INT8 quantisation needs onnxruntime.quantization "
                                     "(pip install onnx onnxruntime)") from None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        with open(src, "wb") as f:
            f.write(model)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs advice on the root logger for every model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                quantize_static(src, dst, _RandomReader(input_shape), quant_format=QuantFormat.QDQ,
                                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                per_channel=True)
            except Exception as exc:  # onnxruntime raises plain exceptions on unsupported graphs
                raise HardwareError(f"INT8 quantisation failed: {type(exc).__name__}: {exc}") from None
            finally:
                root.setLevel(level)
        with open(dst, "rb") as f:
            return f.read()


def to_precision(model: bytes, input_shape: Sequence[int], precision: str) -> bytes:
    """``model`` as is (``"fp32"``) or quantised (``"int8"``)."""
    if precision not in PRECISIONS:
        raise HardwareError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return model if precision == "fp32" else quantize_int8(model, input_shape)
