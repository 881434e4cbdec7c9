"""Registry of zero-cost proxies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from predictors.errors import PredictorError

__all__ = ["Proxy", "get_proxy", "list_proxies", "register_proxy"]

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class Proxy:
    """A zero-cost proxy: ``fn(model, x, y) -> float``, higher meaning "better" by design.

    ``fn`` receives its own copy of the model, which it may modify freely.
    """

    name: str
    fn: ProxyFn
    description: str


_PROXIES: dict[str, Proxy] = {}


def register_proxy(name: str, description: str = "") -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering ``fn(model, x, y) -> float`` as the proxy ``name``."""

    def decorator(fn: ProxyFn) -> ProxyFn:
        if name in _PROXIES:
            raise PredictorError(f"proxy {name!r} is already registered")
        _PROXIES[name] = Proxy(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return decorator


def list_proxies() -> list[str]:
    """Names of the registered proxies, sorted."""
    return sorted(_PROXIES)


def get_proxy(name: str) -> Proxy:
    """The registered proxy ``name``; unknown names list the valid ones."""
    if name not in _PROXIES:
        raise PredictorError(f"unknown proxy {name!r}; valid proxies: {', '.join(list_proxies())}")
    return _PROXIES[name]
