"""Registry of zero-cost proxies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from predictors.errors import PredictorError
from search_spaces import Registry

__all__ = ["PROXIES", "Proxy", "get_proxy", "list_proxies", "register_proxy"]

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class Proxy:
    """A zero-cost proxy: ``fn(model, x, y) -> float``, higher meaning "better" by design.

    ``fn`` receives its own copy of the model, which it may modify freely.
    """

    name: str
    fn: ProxyFn
    description: str


PROXIES: Registry[Proxy] = Registry("proxy", PredictorError, plural="proxies")
"""Registered zero-cost proxies by name."""


def register_proxy(name: str, description: str = "", *, replace: bool = False
                   ) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering ``fn(model, x, y) -> float`` as the proxy ``name``."""

    def decorator(fn: ProxyFn) -> ProxyFn:
        PROXIES.add(name, Proxy(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0]),
                    replace=replace)
        return fn

    return decorator


def list_proxies() -> list[str]:
    """Names of the registered proxies, sorted."""
    return PROXIES.names()


def get_proxy(name: str) -> Proxy:
    """The registered proxy ``name``; unknown names list the valid ones."""
    return PROXIES.get(name)
