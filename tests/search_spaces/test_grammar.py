"""The grammar API: custom spaces, recursion bounds and the documented errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from search_spaces import (
    NUM_CLASSES,
    Architecture,
    ArchitectureError,
    Choice,
    Grammar,
    GrammarError,
    Op,
    Param,
    Ref,
    Repeat,
    Residual,
    SearchSpace,
    Seq,
    UnknownNameError,
    Value,
    get_op,
    get_space,
    register_op,
    register_space,
)


def tiny_grammar(**kw) -> Grammar:
    return Grammar({
        "net": Seq(
            stem=Op("conv_bn_act", out=8, kernel=Value([1, 3])),
            body=Repeat(Op("mbconv", out=8, kernel=Value([3, 5]), expand=Value([2, 4])), depth=[1, 2]),
            head=Op("classifier", out=NUM_CLASSES),
        )
    }, **kw)


def test_custom_space_with_public_api():
    space = SearchSpace(tiny_grammar(), name="tiny", input_shape=(1, 8, 8))
    # stem 2 x (depth 1: 4 + depth 2: 16)
    assert space.size() == 2 * (4 + 16)
    arch = space.sample(np.random.default_rng(0))
    assert set(arch) >= {"stem.kernel", "body.depth", "body.block1.kernel", "body.block1.expand"}
    assert space.build(arch, num_classes=3)(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_user_registered_op_and_space():
    @register_op("test_scale", params={"factor": Param(float, 1.0)}, replace=True)
    def test_scale(in_shape, factor):  # out_shape inferred on the meta device
        class Scale(nn.Module):
            def forward(self, x):
                return x * factor

        return Scale()

    @register_space("test_scaled", replace=True)
    def scaled() -> SearchSpace:
        g = Grammar({"net": Seq(Op("test_scale", factor=Value([0.5, 2.0])), Op("classifier", out=NUM_CLASSES))})
        return SearchSpace(g, input_shape=(2, 4, 4))

    space = get_space("test_scaled")
    arch = Architecture({"test_scale.factor": 2.0})
    assert space.layers(arch)[0].out_shape == (2, 4, 4)
    assert space.build(arch)(torch.ones(1, 2, 4, 4)).shape == (1, 10)
    assert get_op("test_scale").params["factor"].type is float


def test_recursive_grammar_terminates_within_its_bound():
    g = Grammar({
        "net": Seq(stem=Op("conv_bn_act", out=8), body=Ref("m"), head=Op("classifier", out=NUM_CLASSES)),
        "m": Choice({"op": Op("act"), "seq": Seq(a=Ref("m"), b=Ref("m")), "res": Residual(Ref("m"))},
                    probs=[0.1, 0.6, 0.3]),  # strongly recursive: only the bound stops it
    }, max_depth=4)
    space = SearchSpace(g, input_shape=(1, 8, 8))
    rng = np.random.default_rng(0)
    for _ in range(30):
        arch = space.sample(rng)
        assert max(p.count(".") for p in arch) <= 2 * 4
        space.validate(arch)
    assert g.is_recursive and 0 < space.size() < 10**9


@pytest.mark.parametrize(
    ("rules", "kwargs", "message"),
    [
        ({"net": Ref("nope")}, {}, "undefined rule 'nope'"),
        ({"net": Op("act")}, {"start": "main"}, "start rule 'main' is not defined"),
        ({"net": Seq(a=Ref("loop")), "loop": Seq(a=Op("act"), b=Ref("loop"))}, {}, "cycle with no exit"),
        ({"net": Op("warp_drive")}, {}, "unknown op 'warp_drive'; valid ops:"),
        ({"net": Op("conv_bn_act", kernal=3)}, {}, "has no parameter(s) ['kernal']"),
        ({"net": Op("classifier")}, {}, "needs parameter(s) ['out']"),
        ({"net": Op("conv_bn_act", kernel=Value(["big"]))}, {}, "must be int"),
        ({"net": Seq(a=Ref("deep")), "deep": Seq(a=Ref("deeper")), "deeper": Op("act")},
         {"max_depth": 1}, "max_depth is 1"),
        ({}, {}, "no rules"),
    ],
)
def test_bad_grammars_raise_clear_errors(rules, kwargs, message):
    with pytest.raises(GrammarError) as info:
        Grammar(rules, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Choice([]), "empty choice"),
        (lambda: Value([]), "empty choice list"),
        (lambda: Value([1, 1]), "duplicate choices"),
        (lambda: Choice([Op("act"), Op("act")]), "labels must be unique"),
        (lambda: Choice([Op("act"), Op("batchnorm")], probs=[0.9, 0.3]), "sum to 1"),
        (lambda: Repeat(Op("act"), depth=[-1]), "non-negative"),
        (lambda: Seq(), "empty sequence"),
    ],
)
def test_bad_expressions_raise_clear_errors(build, message):
    with pytest.raises(GrammarError, match=None) as info:
        build()
    assert message in str(info.value)


def test_bad_architectures_name_the_path_and_allowed_values():
    space = SearchSpace(tiny_grammar(), input_shape=(1, 8, 8))
    good = space.sample(np.random.default_rng(0)).to_dict()

    bad = dict(good, **{"stem.kernel": 7})
    with pytest.raises(ArchitectureError) as info:
        space.validate(bad)
    assert info.value.path == "stem.kernel"
    assert "'stem.kernel' = 7 is not allowed; allowed values: 1, 3" in str(info.value)

    missing = {k: v for k, v in good.items() if k != "body.depth"}
    with pytest.raises(ArchitectureError, match="missing decision 'body.depth'"):
        space.validate(missing)

    extra = dict(good, **{"body.block9.kernel": 3})
    with pytest.raises(ArchitectureError, match=r"unexpected decision path\(s\) \['body.block9.kernel'\]"):
        space.validate(extra)

    with pytest.raises(ArchitectureError, match="not valid JSON"):
        Architecture.from_json("{nope")


def test_bool_and_int_values_are_not_confused():
    g = Grammar({"net": Seq(Op("mbconv", out=8, se=Value([False, True])), Op("classifier", out=NUM_CLASSES))})
    space = SearchSpace(g, input_shape=(8, 4, 4))
    with pytest.raises(ArchitectureError):
        space.validate({"mbconv.se": 1})
    assert space.contains({"mbconv.se": True})


def test_shape_errors_name_the_path():
    g = Grammar({"net": Seq(embed=Op("patch_embed", dim=16, patch=Value([2, 16])),
                            head=Op("token_classifier", out=NUM_CLASSES))})
    space = SearchSpace(g, input_shape=(1, 8, 8))
    with pytest.raises(ArchitectureError, match=r"embed: op 'patch_embed' on input \(1, 8, 8\) gives empty output"):
        space.build({"embed.patch": 16})


def test_unknown_space_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        get_space("nb202")
    assert "valid spaces: " in str(info.value) and "nb201" in str(info.value)


def test_architecture_is_immutable_and_canonical():
    a = Architecture({"b": [1, 2], "a": 3})
    assert list(a) == ["a", "b"] and a["b"] == (1, 2)
    with pytest.raises(AttributeError):
        a.foo = 1
    assert a.update({"a": 4})["a"] == 4 and a["a"] == 3
    assert a.to_json() == '{"a":3,"b":[1,2]}'
