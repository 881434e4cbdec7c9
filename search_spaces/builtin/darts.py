"""DARTS cell space: a normal and a reduction cell, each 4 nodes picking 2 inputs and 2 ops."""

from __future__ import annotations

from search_spaces.builtin._checks import positive
from search_spaces.grammar import Cell, CellStack, Choice, Grammar, Op, Ref, Seq
from search_spaces.ops import NUM_CLASSES
from search_spaces.registry import register_space
from search_spaces.space import SearchSpace

OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5")


def darts_ops() -> Choice:
    """The seven DARTS candidate ops ("none" is a supernet device, not a derived op)."""
    return Choice({
        "max_pool_3x3": Op("pool", kind="max", kernel=3),
        "avg_pool_3x3": Op("pool", kind="avg", kernel=3),
        "skip_connect": Op("skip"),
        "sep_conv_3x3": Op("sep_conv", kernel=3),
        "sep_conv_5x5": Op("sep_conv", kernel=5),
        "dil_conv_3x3": Op("dil_conv", kernel=3),
        "dil_conv_5x5": Op("dil_conv", kernel=5),
    })


@register_space("darts")
def darts(channels: int = 16, layers: int = 8, stem_multiplier: int = 3,
          input_shape=(3, 32, 32)) -> SearchSpace:
    """DARTS: ``layers`` cells, reduction cells at 1/3 and 2/3 depth doubling the channels."""
    positive(channels=channels, layers=layers, stem_multiplier=stem_multiplier)
    cells, widths, c = {}, [], channels
    for k in range(layers):
        reduction = k in (layers // 3, 2 * layers // 3)
        if reduction:
            c *= 2
        cells[f"cell{k}"] = Ref("reduce" if reduction else "normal", shared=True)
        widths.append(c)
    rules = {
        "net": Seq(
            stem=Op("conv_bn_act", out=channels * stem_multiplier, kernel=3, act="none"),
            cells=CellStack(cells, widths),
            head=Op("classifier", out=NUM_CLASSES),
        ),
        "normal": Cell(darts_ops(), nodes=4, inputs=2, in_degree=2, output="concat"),
        "reduce": Cell(darts_ops(), nodes=4, inputs=2, in_degree=2, output="concat", reduction=True),
    }
    return SearchSpace(Grammar(rules), name="darts",
                       description="DARTS normal + reduction cell (4 nodes, 2 inputs each, 7 ops)",
                       input_shape=tuple(input_shape), num_classes=10)
