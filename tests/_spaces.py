"""Small spaces shared by several test folders."""

from __future__ import annotations

from search_spaces import (
    NUM_CLASSES,
    Choice,
    Grammar,
    Op,
    Repeat,
    Residual,
    SearchSpace,
    Seq,
    Value,
)


def tiny_space(width: int = 8, name: str = "tiny") -> SearchSpace:
    """60 architectures: resolution, a repeat with a strided first block, a choice, a residual."""
    body = Op("mbconv", out=width, kernel=Value([3, 5]), expand=Value([1, 2]))
    grammar = Grammar({"net": Seq(
        resolution=Op("resize", size=Value([8, 12])),
        stem=Op("conv_bn_act", out=width, kernel=3, stride=2),
        body=Repeat(body, depth=[1, 2], first=Op("mbconv", out=2 * width, kernel=Value([3, 5]),
                                                 expand=2, stride=2)),
        tail=Choice({"skip": Op("skip"), "res": Residual(Op("conv_bn_act", kernel=Value([1, 3])))}),
        head=Op("classifier", out=NUM_CLASSES),
    )})
    return SearchSpace(grammar, name=name, input_shape=(3, 8, 8), num_classes=4)
