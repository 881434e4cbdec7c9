"""Conformance suite for the dynamic-op role (weight sharing in OFA supernets).

A :class:`~supernets.DynamicOp` holds the largest instance of an op and serves any
smaller active :class:`~search_spaces.LayerSpec` from its weights. The checks:
the served state has exactly the static module's keys and shapes; the static
module loaded with it computes what the dynamic op computes; gradients reach the
shared weights; re-sorting channels by importance keeps the function. Run it over
your own dynamic op in a few lines::

    from supernets.testing import check_dynamic_op

    def test_my_dynamic_op():
        check_dynamic_op(largest_spec, [smaller_spec, other_spec], {"kernel": (3, 5)})

:func:`supernet_examples` collects ``(largest spec, choices, active specs)`` per op
from an :class:`~supernets.OFASupernet`, which is how the project's tests reach
every registered dynamic op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from search_spaces import LayerSpec, get_op
from supernets._ofa.dynamic import DynamicOp, dynamic_op_class
from supernets._ofa.supernet import OFASupernet
from supernets.errors import SupernetError

__all__ = ["DYNAMIC_OP_CHECKS", "check_dynamic_op", "supernet_examples"]

TOLERANCE = 1e-5


def _fail(check: str, spec: LayerSpec, message: str) -> AssertionError:
    return AssertionError(f"{check}: {spec.op} {spec.param_dict} on {spec.in_shape}: {message}")


def _static(op: DynamicOp, spec: LayerSpec) -> torch.nn.Module:
    module = get_op(spec.op).build(spec.in_shape, spec.param_dict)
    module.load_state_dict({k: v.detach().clone() for k, v in op.subnet_state(spec).items()})
    return module


def state_matches_the_static_module(op: DynamicOp, spec: LayerSpec) -> None:
    """subnet_state(spec) has exactly the keys and shapes of the static module's state dict."""
    want = {k: tuple(v.shape) for k, v in get_op(spec.op).build(spec.in_shape, spec.param_dict)
            .state_dict().items()}
    have = {k: tuple(v.shape) for k, v in op.subnet_state(spec).items()}
    if want != have:
        extra, missing = sorted(set(have) - set(want)), sorted(set(want) - set(have))
        wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
        raise _fail("state_matches_the_static_module", spec,
                    f"extra {extra}, missing {missing}, wrong shapes {wrong}")


def output_equals_the_extracted_module(op: DynamicOp, spec: LayerSpec) -> None:
    """The static module loaded with the served weights computes what the dynamic op computes."""
    op.eval()
    op.spec = spec
    x = torch.randn(3, *spec.in_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        dynamic, static = op(x), _static(op, spec).eval()(x)
    if dynamic.shape != static.shape or not torch.allclose(dynamic, static, atol=TOLERANCE):
        raise _fail("output_equals_the_extracted_module", spec,
                    f"max difference {(dynamic - static).abs().max().item():.3g}")


def gradients_reach_shared_weights(op: DynamicOp, spec: LayerSpec) -> None:
    """Training the active spec updates the shared (largest) weights."""
    op.train()
    op.spec = spec
    op.zero_grad(set_to_none=True)
    out = op(torch.randn(4, *spec.in_shape, generator=torch.Generator().manual_seed(1)))
    if not out.requires_grad:
        return  # weightless op
    out.square().mean().backward()
    grads = [p.grad for p in op.parameters() if p.requires_grad]
    if grads and not any(g is not None and bool(g.abs().sum() > 0) for g in grads):
        raise _fail("gradients_reach_shared_weights", spec, "no shared weight got a gradient")


def sorting_channels_keeps_the_function(op: DynamicOp, spec: LayerSpec) -> None:
    """sort_channels() permutes by importance without changing the largest op's output."""
    op.eval()
    op.spec = op.max_spec
    x = torch.randn(3, *op.max_spec.in_shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = op(x)
        op.sort_channels()
        after = op(x)
    if not torch.allclose(before, after, atol=1e-4):
        raise _fail("sorting_channels_keeps_the_function", op.max_spec,
                    f"output changed by {(before - after).abs().max().item():.3g}")


DYNAMIC_OP_CHECKS: dict[str, Callable[[DynamicOp, LayerSpec], None]] = {
    fn.__name__: fn for fn in (state_matches_the_static_module, output_equals_the_extracted_module,
                               gradients_reach_shared_weights, sorting_channels_keeps_the_function)
}
"""Every check of the dynamic-op role, by name."""


def check_dynamic_op(max_spec: LayerSpec, specs: Sequence[LayerSpec],
                     choices: Mapping[str, tuple] | None = None, seed: int = 0,
                     checks: list[str] | None = None) -> None:
    """Run the dynamic-op checks on the registered dynamic class of ``max_spec.op``.

    Args:
        max_spec: the largest layer (the supernet's).
        specs: smaller active layers it must serve (the largest is always checked too).
        choices: ``{param: allowed values}`` of the op's elastic decisions.
        seed: weights of the largest module.
        checks: names from :data:`DYNAMIC_OP_CHECKS` (default: all).

    Raises:
        AssertionError: ``"<check>: <op> <params> on <shape>: <what was wrong>"``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        op = dynamic_op_class(max_spec.op)(max_spec, dict(choices or {}))
    for name in checks or list(DYNAMIC_OP_CHECKS):
        if name not in DYNAMIC_OP_CHECKS:
            raise SupernetError(f"unknown check {name!r}; checks: {', '.join(DYNAMIC_OP_CHECKS)}")
        for spec in [max_spec, *specs]:
            DYNAMIC_OP_CHECKS[name](op, spec)


def supernet_examples(supernet: OFASupernet, samples: int = 12, seed: int = 0
                      ) -> dict[str, tuple[LayerSpec, dict[str, tuple], list[LayerSpec]]]:
    """Per op name, the dynamic op of ``supernet`` that served the most distinct specs
    across the smallest and ``samples`` random subnets: ``(largest spec, choices, the
    smaller specs it served)``."""
    rng = np.random.default_rng(seed)
    ops = supernet.dynamic_ops()
    served: list[list[LayerSpec]] = [[] for _ in ops]
    for arch in [supernet.smallest(), *(supernet.sample(rng) for _ in range(samples))]:
        supernet.set_active(arch)
        for op, specs in zip(ops, served, strict=True):
            if op.spec != op.max_spec and op.spec not in specs:
                specs.append(op.spec)
    found: dict[str, tuple[LayerSpec, dict[str, tuple], list[LayerSpec]]] = {}
    for op, specs in zip(ops, served, strict=True):
        best = found.get(op.max_spec.op)
        if best is None or len(specs) > len(best[2]):
            found[op.max_spec.op] = (op.max_spec, dict(op.choices), specs)
    return found
