"""Built-in convolutional ops on image tensors of shape (C, H, W)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.ops._registry import NUM_CLASSES, Param, Shape, register_op

ACTIVATIONS = {"relu": nn.ReLU, "hswish": nn.Hardswish, "gelu": nn.GELU, "none": nn.Identity}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _spatial(size: int, stride: int) -> int:
    """Output size of a 'same'-padded op with this stride."""
    return (size - 1) // stride + 1


def _out(in_shape: Shape, out: int) -> int:
    """``out=0`` means 'as many channels as the input'."""
    return out or in_shape[0]


def _strided(in_shape: Shape, out: int, stride: int) -> Shape:
    c, h, w = in_shape
    return (_out(in_shape, out), _spatial(h, stride), _spatial(w, stride))


def _same_shape(in_shape: Shape, **_: object) -> Shape:
    return tuple(in_shape)


class SqueezeExcite(nn.Module):
    """Channel attention with a hard-sigmoid gate (MobileNetV3)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)  # (N, C, 1, 1)
        scale = F.hardsigmoid(self.expand(F.relu(self.reduce(scale))))
        return x * scale


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            dilation: int = 1) -> list[nn.Module]:
    pad = dilation * (kernel - 1) // 2
    return [nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout)]


@register_op(
    "conv_bn_act",
    params={"out": Param(int, 0, "channels"), "kernel": Param(int, 3, "kernel"),
            "stride": Param(int, 1), "act": Param(str, "relu")},
    out_shape=lambda s, out, kernel, stride, act: _strided(s, out, stride),
)
def conv_bn_act(in_shape: Shape, out: int, kernel: int, stride: int, act: str) -> nn.Module:
    """Convolution, batch norm, activation."""
    return nn.Sequential(*conv_bn(in_shape[0], _out(in_shape, out), kernel, stride), _act(act))


@register_op(
    "relu_conv_bn",
    params={"out": Param(int, 0, "channels"), "kernel": Param(int, 3, "kernel"),
            "stride": Param(int, 1)},
    out_shape=lambda s, out, kernel, stride: _strided(s, out, stride),
)
def relu_conv_bn(in_shape: Shape, out: int, kernel: int, stride: int) -> nn.Module:
    """ReLU, convolution, batch norm (NAS-Bench-201 / DARTS ordering)."""
    return nn.Sequential(nn.ReLU(), *conv_bn(in_shape[0], _out(in_shape, out), kernel, stride))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, optional SE, 1x1 project."""

    def __init__(self, cin: int, cout: int, kernel: int, expand: int, stride: int,
                 act: str, se: bool) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*conv_bn(cin, hidden, 1), _act(act)]
        layers += [*conv_bn(hidden, hidden, kernel, stride, groups=hidden), _act(act)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += conv_bn(hidden, cout, 1)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


@register_op(
    "mbconv",
    params={"out": Param(int, 0, "channels"), "kernel": Param(int, 3, "kernel"),
            "expand": Param(int, 6, "channels"), "stride": Param(int, 1),
            "act": Param(str, "relu"), "se": Param(bool, False)},
    out_shape=lambda s, out, kernel, expand, stride, act, se: _strided(s, out, stride),
)
def mbconv(in_shape: Shape, out: int, kernel: int, expand: int, stride: int, act: str,
           se: bool) -> nn.Module:
    """MobileNetV2/V3 inverted residual (MBConv), residual when shapes allow."""
    return MBConv(in_shape[0], _out(in_shape, out), kernel, expand, stride, act, se)


@register_op(
    "sep_conv",
    params={"kernel": Param(int, 3, "kernel"), "stride": Param(int, 1)},
    out_shape=lambda s, kernel, stride: _strided(s, 0, stride),
)
def sep_conv(in_shape: Shape, kernel: int, stride: int) -> nn.Module:
    """DARTS separable convolution: (ReLU, depthwise, pointwise, BN) twice."""
    c = in_shape[0]
    return nn.Sequential(
        nn.ReLU(), *conv_bn(c, c, kernel, stride, groups=c)[:1], *conv_bn(c, c, 1),
        nn.ReLU(), *conv_bn(c, c, kernel, 1, groups=c)[:1], *conv_bn(c, c, 1),
    )


@register_op(
    "dil_conv",
    params={"kernel": Param(int, 3, "kernel"), "stride": Param(int, 1)},
    out_shape=lambda s, kernel, stride: _strided(s, 0, stride),
)
def dil_conv(in_shape: Shape, kernel: int, stride: int) -> nn.Module:
    """DARTS dilated separable convolution (dilation 2)."""
    c = in_shape[0]
    return nn.Sequential(nn.ReLU(), *conv_bn(c, c, kernel, stride, groups=c, dilation=2)[:1],
                         *conv_bn(c, c, 1))


@register_op(
    "dwconv",
    params={"kernel": Param(int, 3, "kernel"), "stride": Param(int, 1), "act": Param(str, "relu")},
    out_shape=lambda s, kernel, stride, act: _strided(s, 0, stride),
)
def dwconv(in_shape: Shape, kernel: int, stride: int, act: str) -> nn.Module:
    """Depthwise convolution, batch norm, activation."""
    c = in_shape[0]
    return nn.Sequential(*conv_bn(c, c, kernel, stride, groups=c), _act(act))


class Pool(nn.Module):
    def __init__(self, kind: str, kernel: int, stride: int) -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ValueError(f"pool kind must be 'avg' or 'max', got {kind!r}")
        cls = nn.AvgPool2d if kind == "avg" else nn.MaxPool2d
        extra = {"count_include_pad": False} if kind == "avg" else {}
        self.pool = cls(kernel, stride, kernel // 2, **extra)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


@register_op(
    "pool",
    params={"kind": Param(str, "avg"), "kernel": Param(int, 3), "stride": Param(int, 1)},
    out_shape=lambda s, kind, kernel, stride: _strided(s, 0, stride),
)
def pool(in_shape: Shape, kind: str, kernel: int, stride: int) -> nn.Module:
    """Average or max pooling with 'same' padding."""
    return Pool(kind, kernel, stride)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset 1x1 stride-2 convolutions (DARTS)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv2 = nn.Conv2d(cin, cout - cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # odd sizes: keep both paths aligned
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


@register_op(
    "skip",
    params={"stride": Param(int, 1), "out": Param(int, 0)},
    out_shape=lambda s, stride, out: _strided(s, out, stride),
)
def skip(in_shape: Shape, stride: int, out: int) -> nn.Module:
    """Identity; a factorized reduction when it must change stride or channels."""
    cout = _out(in_shape, out)
    if stride == 1 and cout == in_shape[0]:
        return nn.Identity()
    if stride not in (1, 2):
        raise ValueError(f"skip supports stride 1 or 2, got {stride}")
    if stride == 1:
        return nn.Sequential(nn.ReLU(), *conv_bn(in_shape[0], cout, 1))
    return FactorizedReduce(in_shape[0], cout)


class Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride] * 0.0


@register_op(
    "zero",
    params={"stride": Param(int, 1)},
    out_shape=lambda s, stride: _strided(s, 0, stride),
)
def zero(in_shape: Shape, stride: int) -> nn.Module:
    """No connection: outputs zeros of the strided shape."""
    return Zero(stride)


class Resize(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.size and x.shape[-2] == self.size:
            return x
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)


@register_op(
    "resize",
    params={"size": Param(int, elastic="resolution")},
    out_shape=lambda s, size: (s[0], size, size),
)
def resize(in_shape: Shape, size: int) -> nn.Module:
    """Bilinear resize of the input to size x size (the input-resolution decision)."""
    return Resize(size)


class ResBlock(nn.Module):
    """NAS-Bench-201 residual reduction block."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.ReLU(), *conv_bn(cin, cout, 3, stride))
        self.b = nn.Sequential(nn.ReLU(), *conv_bn(cout, cout, 3))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True),
                                          nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


@register_op(
    "resblock",
    params={"out": Param(int, 0), "stride": Param(int, 2)},
    out_shape=lambda s, out, stride: _strided(s, out, stride),
)
def resblock(in_shape: Shape, out: int, stride: int) -> nn.Module:
    """Two 3x3 convolutions with a pooled shortcut (NAS-Bench-201 reduction)."""
    return ResBlock(in_shape[0], _out(in_shape, out), stride)


class Classifier(nn.Module):
    def __init__(self, cin: int, out: int, hidden: int, act: str, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden:
            layers += [nn.Linear(cin, hidden), _act(act)]
            cin = hidden
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(cin, out))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (N, C, H, W) -> (N, out)


@register_op(
    "classifier",
    params={"out": Param(int), "hidden": Param(int, 0), "act": Param(str, "relu"),
            "dropout": Param(float, 0.0)},
    out_shape=lambda s, out, hidden, act, dropout: (out,),
)
def classifier(in_shape: Shape, out: int, hidden: int, act: str, dropout: float) -> nn.Module:
    """Global average pool, optional hidden layer, linear classifier."""
    return Classifier(in_shape[0], out, hidden, act, dropout)


@register_op("batchnorm", out_shape=_same_shape)
def batchnorm(in_shape: Shape) -> nn.Module:
    """Batch normalisation over channels."""
    return nn.BatchNorm2d(in_shape[0])


@register_op("act", params={"kind": Param(str, "relu")}, out_shape=_same_shape)
def act(in_shape: Shape, kind: str) -> nn.Module:
    """Elementwise activation."""
    return _act(kind)


__all__ = ["ACTIVATIONS", "NUM_CLASSES", "conv_bn"]
