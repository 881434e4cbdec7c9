"""A small HAT-like transformer space: embedding dim, depth, heads and MLP ratio per layer."""

from __future__ import annotations

from collections.abc import Sequence

from search_spaces.builtin._checks import positive
from search_spaces.grammar import Grammar, Op, Repeat, Seq, Value
from search_spaces.ops import NUM_CLASSES
from search_spaces.registry import register_space
from search_spaces.space import SearchSpace


@register_space("transformer")
def transformer(
    dims: Sequence[int] = (64, 96, 128),
    depths: Sequence[int] = (2, 3, 4, 5, 6),
    heads: Sequence[int] = (2, 4, 8),
    mlp_ratios: Sequence[float] = (2.0, 3.0, 4.0),
    patch: int = 4,
    input_shape: Sequence[int] = (3, 32, 32),
) -> SearchSpace:
    """Vision transformer: patch embedding of elastic dim, then elastic layers (heads, MLP ratio)."""
    positive(dims=dims, depths=depths, heads=heads, mlp_ratios=mlp_ratios, patch=patch)
    bad = [(d, h) for d in dims for h in heads if d % h]
    if bad:
        raise ValueError(f"transformer space: heads must divide every dim, failing pairs {bad}")
    layer = Op("transformer_layer", heads=Value(list(heads)),
               mlp_ratio=Value([float(r) for r in mlp_ratios]))
    net = Seq(
        embed=Op("patch_embed", dim=Value(list(dims)), patch=patch),
        encoder=Repeat(layer, depth=Value(list(depths)), label="layer"),
        head=Op("token_classifier", out=NUM_CLASSES),
    )
    return SearchSpace(Grammar({"net": net}), name="transformer",
                       description="HAT-like ViT: embed dim, depth, heads and MLP ratio per layer",
                       input_shape=tuple(input_shape), num_classes=10)
