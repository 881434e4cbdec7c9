"""Built-in attention and MLP ops: token ops on (L, D), and image ops on (C, H, W)."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.ops._conv import _act
from search_spaces.ops._registry import Param, Shape, register_op


def _check_heads(dim: int, heads: int) -> None:
    if dim % heads:
        raise ValueError(f"attention: {heads} heads do not divide dimension {dim}")


class PatchEmbed(nn.Module):
    """Image (C, H, W) -> tokens (L, D) with a learned position embedding."""

    def __init__(self, in_shape: Shape, dim: int, patch: int) -> None:
        super().__init__()
        c, h, w = in_shape
        self.proj = nn.Conv2d(c, dim, patch, patch)
        tokens = (h // patch) * (w // patch)
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (N, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2) + self.pos  # (N, L, D)


@register_op(
    "patch_embed",
    params={"dim": Param(int, elastic="channels"), "patch": Param(int, 2)},
    out_shape=lambda s, dim, patch: ((s[1] // patch) * (s[2] // patch), dim),
)
def patch_embed(in_shape: Shape, dim: int, patch: int) -> nn.Module:
    """Non-overlapping patches projected to tokens, plus position embedding."""
    if in_shape[1] < patch or in_shape[2] < patch:
        raise ValueError(f"patch_embed: patch {patch} is larger than the input {in_shape}")
    return PatchEmbed(in_shape, dim, patch)


class TransformerLayer(nn.Module):
    """Pre-norm encoder layer: multi-head self-attention and an MLP, both residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, act: str = "gelu") -> None:
        super().__init__()
        _check_heads(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), _act(act), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, L, D)
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


@register_op(
    "transformer_layer",
    params={"heads": Param(int, 4), "mlp_ratio": Param(float, 4.0, "channels")},
    out_shape=lambda s, heads, mlp_ratio: tuple(s),
)
def transformer_layer(in_shape: Shape, heads: int, mlp_ratio: float) -> nn.Module:
    """Transformer encoder layer on tokens (L, D)."""
    return TransformerLayer(in_shape[-1], heads, mlp_ratio)


class TokenClassifier(nn.Module):
    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x.mean(dim=1)))  # (N, L, D) -> (N, out)


@register_op(
    "token_classifier",
    params={"out": Param(int)},
    out_shape=lambda s, out: (out,),
)
def token_classifier(in_shape: Shape, out: int) -> nn.Module:
    """Mean over tokens, layer norm, linear classifier."""
    return TokenClassifier(in_shape[-1], out)


class Attention2d(nn.Module):
    """Self-attention over the H*W positions of a feature map, residual-free."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        _check_heads(channels, heads)
        self.norm = nn.GroupNorm(1, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        out = self.attn(tokens, tokens, tokens, need_weights=False)[0]
        return out.transpose(1, 2).reshape(n, c, h, w)


@register_op(
    "attention2d",
    params={"heads": Param(int, 1)},
    out_shape=lambda s, heads: tuple(s),
)
def attention2d(in_shape: Shape, heads: int) -> nn.Module:
    """Multi-head self-attention across spatial positions of a feature map."""
    return Attention2d(in_shape[0], heads)


@register_op(
    "mlp2d",
    params={"ratio": Param(int, 2, "channels"), "act": Param(str, "gelu")},
    out_shape=lambda s, ratio, act: tuple(s),
)
def mlp2d(in_shape: Shape, ratio: int, act: str) -> nn.Module:
    """Per-position MLP (two 1x1 convolutions) on a feature map."""
    c = in_shape[0]
    return nn.Sequential(nn.Conv2d(c, c * ratio, 1), _act(act), nn.Conv2d(c * ratio, c, 1))
