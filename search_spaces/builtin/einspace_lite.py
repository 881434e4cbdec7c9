"""einspace-lite: an open-ended recursive space of sequential, branching and routing
compositions over convolution, attention, MLP, norm, pooling and activation ops."""

from __future__ import annotations

from search_spaces.builtin._checks import positive
from search_spaces.grammar import Choice, Grammar, Op, Parallel, Ref, Residual, Seq, Value
from search_spaces.ops import NUM_CLASSES
from search_spaces.registry import register_space
from search_spaces.space import SearchSpace


@register_space("einspace_lite")
def einspace_lite(channels: int = 32, max_depth: int = 6, input_shape=(3, 32, 32)) -> SearchSpace:
    """A probabilistic grammar; ``max_depth`` bounds the nesting of modules.

    Channel splits halve the width at most ``max_depth - 2`` times, so ``channels``
    must be divisible by ``2 ** (max_depth - 2)`` (attention uses at most 2 heads).
    """
    positive(channels=channels, max_depth=max_depth)
    if channels % 2 ** (max_depth - 1):
        raise ValueError(
            f"einspace_lite: channels ({channels}) must be divisible by 2**(max_depth-1) "
            f"= {2 ** (max_depth - 1)} so that nested channel splits stay whole"
        )
    rules = {
        "net": Seq(
            stem=Op("conv_bn_act", out=channels, kernel=3, stride=2),
            body=Ref("module"),
            down=Op("conv_bn_act", out=2 * channels, kernel=3, stride=2),
            body2=Ref("module"),
            head=Op("classifier", out=NUM_CLASSES),
        ),
        "module": Choice(
            {
                "op": Ref("op"),
                "seq": Seq(first=Ref("module"), second=Ref("module")),
                "branch": Parallel({"left": Ref("module"), "right": Ref("module")}, merge="add"),
                "route": Parallel({"a": Ref("module"), "b": Ref("module")}, merge="concat", split=True),
                "residual": Residual(Ref("module")),
            },
            probs=[0.5, 0.2, 0.1, 0.1, 0.1],
        ),
        "op": Choice({
            "conv": Op("conv_bn_act", kernel=Value([1, 3, 5])),
            "dwconv": Op("dwconv", kernel=Value([3, 5])),
            "attention": Op("attention2d", heads=Value([1, 2])),
            "mlp": Op("mlp2d", ratio=Value([2, 4])),
            "norm": Op("batchnorm"),
            "pool": Op("pool", kind=Value(["avg", "max"]), kernel=3),
            "act": Op("act", kind=Value(["relu", "gelu"])),
        }),
    }
    return SearchSpace(Grammar(rules, max_depth=max_depth), name="einspace_lite",
                       description="recursive einspace-style grammar: seq/branch/route over conv, attention, MLP",
                       input_shape=tuple(input_shape), num_classes=10)
