"""Zero-cost proxies (private implementation; import from ``predictors``)."""

from predictors._proxies.combination import ProxyCombination
from predictors._proxies.compute import DEFAULT_PROXIES, compute_proxies, proxy_matrix
from predictors._proxies.registry import PROXIES, Proxy, get_proxy, list_proxies, register_proxy

__all__ = ["DEFAULT_PROXIES", "Proxy", "ProxyCombination", "compute_proxies", "get_proxy",
           "list_proxies", "proxy_matrix", "register_proxy", "PROXIES"]
