"""Once-for-All MobileNetV3 elastic space: kernel, expand ratio, depth per stage, resolution."""

from __future__ import annotations

from collections.abc import Sequence

from search_spaces.builtin._checks import positive
from search_spaces.grammar import Grammar, Op, Repeat, Seq, Value
from search_spaces.ops import NUM_CLASSES
from search_spaces.registry import register_space
from search_spaces.space import SearchSpace

# (channels, stride, activation, squeeze-excite) of the five elastic stages (OFA MobileNetV3).
STAGES = ((24, 2, "relu", False), (40, 2, "relu", True), (80, 2, "hswish", False),
          (112, 1, "hswish", True), (160, 2, "hswish", True))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never below 90% of ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@register_space("mobilenetv3_ofa")
def mobilenetv3_ofa(
    width_mult: float = 1.0,
    resolutions: Sequence[int] = (128, 160, 192, 224),
    kernels: Sequence[int] = (3, 5, 7),
    expands: Sequence[int] = (3, 4, 6),
    depths: Sequence[int] = (2, 3, 4),
    input_shape: Sequence[int] = (3, 224, 224),
) -> SearchSpace:
    """OFA MobileNetV3: 5 stages, each block kernel x expand, each stage a depth; input resolution.

    Args:
        width_mult: channel multiplier (a fixed parameter of the space, not a decision).
        resolutions, kernels, expands, depths: the elastic choices.
        input_shape: default (C, H, W) of the raw input, resized to the chosen resolution.
    """
    positive(width_mult=width_mult, resolutions=resolutions, kernels=kernels, expands=expands,
             depths=depths)

    def ch(c: int) -> int:
        return make_divisible(c * width_mult)

    items = {
        "resolution": Op("resize", size=Value(list(resolutions))),
        "stem": Op("conv_bn_act", out=ch(16), kernel=3, stride=2, act="hswish"),
        "first": Op("mbconv", out=ch(16), kernel=3, expand=1, stride=1, act="relu"),
    }
    for i, (channels, stride, act, se) in enumerate(STAGES, start=1):
        def block(s: int, channels=channels, act=act, se=se) -> Op:
            return Op("mbconv", out=ch(channels), kernel=Value(list(kernels)),
                      expand=Value(list(expands)), stride=s, act=act, se=se)

        items[f"stage{i}"] = Repeat(block(1), depth=Value(list(depths)), first=block(stride))
    items["final"] = Op("conv_bn_act", out=ch(960), kernel=1, act="hswish")
    items["head"] = Op("classifier", out=NUM_CLASSES, hidden=ch(1280), act="hswish")
    return SearchSpace(
        Grammar({"net": Seq(**items)}),
        name="mobilenetv3_ofa",
        description="Once-for-All MobileNetV3: elastic kernel/expand/depth per stage, resolution",
        input_shape=tuple(input_shape),
        num_classes=1000,
    )
