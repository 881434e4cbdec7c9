"""Dynamic ops: the weights of an op's largest instance, served to any smaller active spec.

A :class:`DynamicOp` holds the static module of the largest layer (``full``) and
maps its tensors to the state dict of the static module of any smaller
:class:`~search_spaces.LayerSpec` (``subnet_state``). The forward pass runs that
static module's own code on the mapped tensors (``torch.func.functional_call``),
so the supernet's output and the extracted subnet's output are the same
computation. Ops are looked up by name in a small registry; users register theirs
with :func:`register_dynamic_op`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from search_spaces import LayerSpec, Registry, get_op
from supernets.errors import SupernetError

__all__ = ["DYNAMIC_OPS", "DynamicOp", "KernelTransform", "dynamic_op_class", "register_dynamic_op"]

DYNAMIC_OPS: Registry[type[DynamicOp]] = Registry("dynamic op", SupernetError)
"""Dynamic implementations of registered ops, by op name."""


def register_dynamic_op(name: str, replace: bool = False) -> Callable[[type], type]:
    """Class decorator registering the dynamic implementation of registered op ``name``."""

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, DynamicOp)):
            raise SupernetError(f"dynamic op {name!r} must subclass DynamicOp, got {cls!r}")
        return DYNAMIC_OPS.add(name, cls, replace=replace)

    return decorator


def dynamic_op_class(name: str) -> type[DynamicOp]:
    """The registered dynamic class of op ``name`` (the generic :class:`DynamicOp` if none)."""
    return DYNAMIC_OPS.find(name, DynamicOp)


def _channels(shape: tuple[int, ...]) -> int:
    return shape[0] if len(shape) == 3 else shape[-1]


class DynamicOp(nn.Module):
    """The largest instance of an op, able to run as any smaller instance.

    Contract for subclasses: override :meth:`subnet_state` to return, for an active
    ``spec``, a dict with exactly the keys of ``get_op(spec.op).build(spec)``'s state
    dict, built from this module's parameters by differentiable slicing (buffers as
    views, so batch-norm statistics update in place). Optionally override
    :meth:`sort_channels` (a function-preserving permutation by importance).

    The generic implementation serves specs whose static module has the same tensor
    shapes as the largest one (e.g. only the spatial size or a weightless parameter
    such as the resize target changes); anything else needs a registered subclass.

    Args:
        spec: the largest layer (from the plan of the largest architecture).
        choices: ``{param: allowed values}`` of the op's elastic decisions.
    """

    def __init__(self, spec: LayerSpec, choices: Mapping[str, tuple]) -> None:
        super().__init__()
        self.max_spec = spec
        self.spec = spec
        self.choices = dict(choices)
        self.full = get_op(spec.op).build(spec.in_shape, spec.param_dict)
        self._templates: dict[LayerSpec, nn.Module] = {}  # plain dict: not submodules

    # ------------------------------------------------------------------ helpers
    def is_full(self, spec: LayerSpec) -> bool:
        """True when ``spec`` runs as the largest module itself (same params and channels)."""
        return spec.params == self.max_spec.params and \
            _channels(spec.in_shape) == _channels(self.max_spec.in_shape)

    def template(self, spec: LayerSpec) -> nn.Module:
        """The static module of ``spec`` on the meta device (code without weights), cached."""
        if spec not in self._templates:
            with torch.device("meta"):
                self._templates[spec] = get_op(spec.op).build(spec.in_shape, spec.param_dict)
        return self._templates[spec]

    def templates(self) -> list[nn.Module]:
        return list(self._templates.values())

    def check(self, spec: LayerSpec) -> None:
        """Raise :class:`SupernetError` (naming the path) if ``spec`` cannot be served."""
        if not self.is_full(spec) and type(self).subnet_state is DynamicOp.subnet_state:
            self.subnet_state(spec)

    # ------------------------------------------------------------------ contract
    def subnet_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        """Tensors of the static module of ``spec``, keyed like its state dict."""
        state = self.full.state_dict(keep_vars=True)
        want = {k: tuple(v.shape) for k, v in self.template(spec).state_dict().items()}
        have = {k: tuple(v.shape) for k, v in state.items()}
        if want != have:
            raise SupernetError(
                f"{spec.path}: op {spec.op!r} changes its weight shapes between "
                f"{self.max_spec.param_dict} and {spec.param_dict} but has no dynamic "
                "implementation; register one with supernets.register_dynamic_op"
            )
        return state

    def sort_channels(self) -> None:
        """Reorder internal channels by importance (no-op unless overridden)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        if self.is_full(spec):
            return self.full(x)
        module = self.template(spec)
        module.train(self.training)
        return functional_call(module, self.subnet_state(spec), (x,))


# ---------------------------------------------------------------------- kernels


class KernelTransform(nn.Module):
    """OFA elastic kernel: a smaller kernel is the centre of the next larger one,
    passed through a learned (k*k x k*k) matrix shared by all channels (identity at init).

    Args:
        max_kernel: the largest kernel size.
        kernels: all allowed kernel sizes (same parity as ``max_kernel``).
    """

    def __init__(self, max_kernel: int, kernels: tuple[int, ...], where: str = "") -> None:
        super().__init__()
        smaller = sorted({k for k in kernels if k < max_kernel}, reverse=True)
        if any((max_kernel - k) % 2 for k in smaller):
            raise SupernetError(
                f"{where}: elastic kernels {sorted(kernels)} must all be odd or all be even"
            )
        self.chain = [max_kernel, *smaller]
        self.matrices = nn.ParameterDict({
            f"{a}to{b}": nn.Parameter(torch.eye(b * b)) for a, b in zip(self.chain, self.chain[1:])
        })

    def forward(self, weight: torch.Tensor, kernel: int) -> torch.Tensor:
        # weight: (out, in, K, K) -> (out, in, kernel, kernel)
        if kernel == weight.shape[-1]:
            return weight
        current = weight
        for a, b in zip(self.chain, self.chain[1:]):
            start = (a - b) // 2
            current = current[..., start:start + b, start:start + b]
            shape = current.shape
            current = F.linear(current.reshape(-1, b * b), self.matrices[f"{a}to{b}"]).reshape(shape)
            if b == kernel:
                return current
        raise SupernetError(f"kernel {kernel} is not one of {self.chain}")


def bn_state(prefix: str, bn: nn.BatchNorm2d, channels: int) -> dict[str, torch.Tensor]:
    """The first ``channels`` of a batch norm (statistics as views: updated in place)."""
    return {
        f"{prefix}weight": bn.weight[:channels],
        f"{prefix}bias": bn.bias[:channels],
        f"{prefix}running_mean": bn.running_mean[:channels],
        f"{prefix}running_var": bn.running_var[:channels],
        f"{prefix}num_batches_tracked": bn.num_batches_tracked,
    }


def _permute_(tensor: torch.Tensor, order: torch.Tensor, dim: int) -> None:
    tensor.copy_(tensor.index_select(dim, order))


def _permute_bn_(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        _permute_(t, order, 0)


def _importance(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """L1 norm of a weight per index of ``dim`` -> descending stable order."""
    dims = [d for d in range(weight.dim()) if d != dim]
    norms = weight.detach().abs().sum(dim=dims)
    return torch.argsort(norms, descending=True, stable=True)


# ---------------------------------------------------------------------- built-in ops


def _kernel_transform(spec: LayerSpec, choices: Mapping[str, tuple]) -> KernelTransform:
    k = spec.param_dict["kernel"]
    return KernelTransform(k, tuple(choices.get("kernel", (k,))), spec.path)


@register_dynamic_op("conv_bn_act")
class DynamicConvBnAct(DynamicOp):
    """conv_bn_act with elastic kernel, output channels and input channels."""

    def __init__(self, spec: LayerSpec, choices: Mapping[str, tuple]) -> None:
        super().__init__(spec, choices)
        self.kernel = _kernel_transform(spec, choices)

    def subnet_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        p, cin = spec.param_dict, spec.in_shape[0]
        conv, bn = self.full[0], self.full[1]
        return {"0.weight": self.kernel(conv.weight[:p["out"], :cin], p["kernel"]),
                **bn_state("1.", bn, p["out"])}


@register_dynamic_op("relu_conv_bn")
class DynamicReluConvBn(DynamicOp):
    """relu_conv_bn with elastic kernel, output channels and input channels."""

    def __init__(self, spec: LayerSpec, choices: Mapping[str, tuple]) -> None:
        super().__init__(spec, choices)
        self.kernel = _kernel_transform(spec, choices)

    def subnet_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        p, cin = spec.param_dict, spec.in_shape[0]
        conv, bn = self.full[1], self.full[2]
        return {"1.weight": self.kernel(conv.weight[:p["out"], :cin], p["kernel"]),
                **bn_state("2.", bn, p["out"])}


@register_dynamic_op("dwconv")
class DynamicDwConv(DynamicOp):
    """Depthwise conv with elastic kernel and channels (= input channels)."""

    def __init__(self, spec: LayerSpec, choices: Mapping[str, tuple]) -> None:
        super().__init__(spec, choices)
        self.kernel = _kernel_transform(spec, choices)

    def subnet_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        c = spec.in_shape[0]
        return {"0.weight": self.kernel(self.full[0].weight[:c], spec.param_dict["kernel"]),
                **bn_state("1.", self.full[1], c)}


@register_dynamic_op("batchnorm")
class DynamicBatchNorm(DynamicOp):
    """Batch norm over the first channels of its input."""

    def subnet_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        return bn_state("", self.full, spec.in_shape[0])


@register_dynamic_op("mbconv")
class DynamicMBConv(DynamicOp):
    """MBConv with elastic kernel, expand ratio (hidden channels, incl. squeeze-excite),
    output and input channels. Hidden channels are kept sorted by importance."""

    def __init__(self, spec: LayerSpec, choices: Mapping[str, tuple]) -> None:
        super().__init__(spec, choices)
        expands = tuple(choices.get("expand", (spec.param_dict["expand"],)))
        if 1 in expands and len(expands) > 1:
            raise SupernetError(
                f"{spec.path}.expand: expand ratio 1 has no expansion layer and cannot share "
                f"weights with {sorted(e for e in expands if e != 1)}; use ratios > 1"
            )
        self.kernel = _kernel_transform(spec, choices)
        self.has_expand = spec.param_dict["expand"] != 1

    def _layout(self) -> tuple[int, int | None, int]:
        """Indices in ``body`` of the depthwise conv, the SE module and the projection."""
        dw = 3 if self.has_expand else 0
        se = dw + 3 if self.max_spec.param_dict["se"] else None
        return dw, se, (se + 1 if se is not None else dw + 3)

    def subnet_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        p, cin = spec.param_dict, spec.in_shape[0]
        hidden, body = cin * p["expand"], self.full.body
        dw, se, proj = self._layout()
        state: dict[str, torch.Tensor] = {}
        if self.has_expand:
            state["body.0.weight"] = body[0].weight[:hidden, :cin]
            state.update(bn_state("body.1.", body[1], hidden))
        state[f"body.{dw}.weight"] = self.kernel(body[dw].weight[:hidden], p["kernel"])
        state.update(bn_state(f"body.{dw + 1}.", body[dw + 1], hidden))
        if se is not None:
            module, squeeze = body[se], max(8, hidden // 4)
            state[f"body.{se}.reduce.weight"] = module.reduce.weight[:squeeze, :hidden]
            state[f"body.{se}.reduce.bias"] = module.reduce.bias[:squeeze]
            state[f"body.{se}.expand.weight"] = module.expand.weight[:hidden, :squeeze]
            state[f"body.{se}.expand.bias"] = module.expand.bias[:hidden]
        state[f"body.{proj}.weight"] = body[proj].weight[:p["out"], :hidden]
        state.update(bn_state(f"body.{proj + 1}.", body[proj + 1], p["out"]))
        return state

    @torch.no_grad()
    def sort_channels(self) -> None:
        if not self.has_expand:
            return  # hidden channels are the input's: their order is not ours
        body = self.full.body
        dw, se, proj = self._layout()
        order = _importance(body[proj].weight, 1)
        _permute_(body[0].weight, order, 0)
        _permute_bn_(body[1], order)
        _permute_(body[dw].weight, order, 0)
        _permute_bn_(body[dw + 1], order)
        if se is not None:
            module = body[se]
            _permute_(module.reduce.weight, order, 1)
            _permute_(module.expand.weight, order, 0)
            _permute_(module.expand.bias, order, 0)
            inner = _importance(module.expand.weight, 1)
            _permute_(module.reduce.weight, inner, 0)
            _permute_(module.reduce.bias, inner, 0)
            _permute_(module.expand.weight, inner, 1)
        _permute_(body[proj].weight, order, 1)


@register_dynamic_op("classifier")
class DynamicClassifier(DynamicOp):
    """Classifier head over the first input channels."""

    def subnet_state(self, spec: LayerSpec) -> dict[str, torch.Tensor]:
        state = dict(self.full.state_dict(keep_vars=True))
        first = next(i for i, m in enumerate(self.full.body) if isinstance(m, nn.Linear))
        key = f"body.{first}.weight"
        state[key] = state[key][:, :spec.in_shape[0]]
        return state
