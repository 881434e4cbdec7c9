"""The built-in zero-cost proxies, scored from one mini-batch on an untrained network.

"Weights" below are parameters with two or more dimensions: the kernels of
convolutions, linear layers and attention projections (not norms or biases).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from predictors._proxies.registry import register_proxy

__all__ = ["ACTIVATIONS"]

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU)
"""Modules whose input sign pattern forms the NASWOT binary code."""


def _weights(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.dim() >= 2]


def _loss_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[nn.Parameter]:
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [p for p in _weights(model) if p.grad is not None]


@register_proxy("synflow")
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Synaptic flow (Tanaka et al. 2020): sum |w * dR/dw| with |w| and an all-ones input."""
    model = model.double().eval()  # eval: batch norm uses its (initial) running statistics
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
    torch.sum(model(ones)).backward()
    return float(sum((p * p.grad).abs().sum().item() for p in _weights(model) if p.grad is not None))


@register_proxy("snip")
def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP connection sensitivity (Lee et al. 2019): sum |w * dL/dw|."""
    return float(sum((p * p.grad).abs().sum().item() for p in _loss_grads(model, x, y)))


@register_proxy("grad_norm")
def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over weight tensors of the L2 norm of dL/dw."""
    return float(sum(p.grad.norm().item() for p in _loss_grads(model, x, y)))


@register_proxy("jacov")
def jacov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (Mellor et al. 2020, v1): spread of per-input Jacobian correlations."""
    model.train()
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.backward(torch.ones_like(out))
    jac = x.grad.reshape(x.shape[0], -1).double().numpy()
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return float("nan")  # a constant Jacobian row: the score is undefined
    eig = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(eig + k) + 1.0 / (eig + k)))


@register_proxy("naswot")
def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021): log-determinant of the Hamming kernel of activation codes."""
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)
    seen = [0]

    def hook(_module, inputs, _output):
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)
        seen[0] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, ACTIVATIONS)]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not seen[0]:
        return float("nan")  # no activation module: no binary codes
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


@register_proxy("gradsign")
def gradsign(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """GradSign (Zhang & Jia 2022): sum over weights of |sum over samples of sign(dL_i/dw)|."""
    model.eval()  # per-sample gradients: batch statistics of one sample are meaningless
    weights = _weights(model)
    sign_sums = [torch.zeros_like(w) for w in weights]
    # a plain loop over samples: on CPU it beat torch.func.vmap by ~2x in our measurements
    for i in range(min(x.shape[0], 32)):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for total, w in zip(sign_sums, weights, strict=True):
            if w.grad is not None:
                total += w.grad.sign()
    return float(sum(total.abs().sum().item() for total in sign_sums))


@register_proxy("flops")
def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Multiply-accumulates of one input (fvcore), a classic baseline."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model.eval()
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, x[:1])
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        return float(analysis.total())


@register_proxy("params")
def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Number of parameters, a classic baseline."""
    return float(sum(p.numel() for p in model.parameters()))
