"""Score networks with zero-cost proxies, robustly and reproducibly."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from predictors._proxies import scores  # noqa: F401  (registers the built-in proxies)
from predictors._proxies.registry import get_proxy
from predictors.errors import PredictorError

__all__ = ["DEFAULT_PROXIES", "compute_proxies", "proxy_matrix"]

DEFAULT_PROXIES = ("synflow", "snip", "grad_norm", "jacov", "naswot", "gradsign", "flops", "params")


def _reinitialise(model: nn.Module, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
                module.reset_parameters()


def compute_proxies(model: nn.Module, batch_x: torch.Tensor, batch_y: torch.Tensor,
                    names: Sequence[str] | None = None, seed: int | None = 0) -> dict[str, float]:
    """Zero-cost scores of an untrained network from one mini-batch.

    Each proxy works on its own deep copy of ``model``, so the caller's module is
    left untouched. A proxy that fails (an exception, or a non-finite value such
    as synflow overflowing) is reported as ``nan``/``inf`` with a warning naming
    the proxy and the reason; it never raises.

    Args:
        model: the network; called as ``model(batch_x)`` returning logits ``(N, classes)``.
        batch_x: inputs ``(N, ...)``, float.
        batch_y: integer labels ``(N,)``.
        names: proxies to compute (default: all of :data:`DEFAULT_PROXIES`).
        seed: when not ``None``, parameters of the copy are re-initialised from this
            seed (``reset_parameters``), so a score depends only on the
            architecture, the batch and the seed; ``None`` scores the weights as given.

    Returns:
        ``{name: score}`` in the order of ``names``.
    """
    names = list(names) if names is not None else list(DEFAULT_PROXIES)
    proxies = [get_proxy(n) for n in names]  # unknown names raise, listing the valid ones
    if batch_x.shape[0] != batch_y.shape[0]:
        raise PredictorError(f"batch_x has {batch_x.shape[0]} rows but batch_y has {batch_y.shape[0]}")
    if batch_x.shape[0] < 2:
        raise PredictorError("zero-cost proxies need a mini-batch of at least 2 inputs")
    base = copy.deepcopy(model).float()
    if seed is not None:
        _reinitialise(base, int(seed))
    results: dict[str, float] = {}
    for proxy in proxies:
        net = copy.deepcopy(base)
        try:
            value = float(proxy.fn(net, batch_x.float(), batch_y.long()))
        except Exception as exc:  # noqa: BLE001  a proxy may break on an exotic network
            warnings.warn(f"proxy {proxy.name!r} failed: {type(exc).__name__}: {exc}", stacklevel=2)
            value = float("nan")
        if not np.isfinite(value):
            warnings.warn(f"proxy {proxy.name!r} is not finite ({value}) for this network",
                          stacklevel=2)
        results[proxy.name] = value
    return results


def proxy_matrix(space: Any, archs: Sequence[Any], batch_x: torch.Tensor, batch_y: torch.Tensor,
                 names: Sequence[str] | None = None, seed: int = 0,
                 num_classes: int | None = None, progress: bool = False) -> np.ndarray:
    """``(len(archs), len(names))`` proxy scores of architectures built from ``space``.

    Args:
        space: anything with ``build(arch, num_classes, input_shape)``.
        archs: architectures.
        batch_x, batch_y: the mini-batch (its shape gives the input shape).
        names: proxies (default all).
        seed: initialisation seed, the same for every architecture.
        num_classes: classes of the built networks (default: ``batch_y.max() + 1``).
        progress: show a tqdm bar.
    """
    names = list(names) if names is not None else list(DEFAULT_PROXIES)
    classes = int(num_classes or int(batch_y.max()) + 1)
    shape = tuple(batch_x.shape[1:])
    rows = []
    iterator = archs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(archs, desc="proxies", unit="arch")
    for arch in iterator:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = space.build(arch, classes, shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores_ = compute_proxies(model, batch_x, batch_y, names, seed=None)
        rows.append([scores_[n] for n in names])
    return np.asarray(rows, dtype=float).reshape(len(rows), len(names))

