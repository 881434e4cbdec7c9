"""The shipped dynamic-op conformance suite runs over every registered dynamic op."""

from __future__ import annotations

import pytest

from search_spaces import NUM_CLASSES, Grammar, Op, Repeat, SearchSpace, Seq, Value, get_space
from supernets import DYNAMIC_OPS, DynamicOp, OFASupernet, register_dynamic_op
from supernets.testing import DYNAMIC_OP_CHECKS, check_dynamic_op, supernet_examples


def _covering_spaces():
    mbv3 = get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16, 24])
    # the other elastic ops of the registry, each with an elastic kernel and/or width
    other = SearchSpace(Grammar({"net": Seq(
        stem=Op("conv_bn_act", out=Value([6, 8]), kernel=Value([3, 5])),
        body=Repeat(Op("relu_conv_bn", out=Value([4, 8]), kernel=Value([1, 3])), depth=[1, 2]),
        dw=Op("dwconv", kernel=Value([3, 5])),
        bn=Op("batchnorm"),
        head=Op("classifier", out=NUM_CLASSES))}), name="dynamic_cover", input_shape=(1, 8, 8))
    return [(mbv3, (1, 8, 8)), (other, (1, 8, 8))]


def _examples():
    found = {}
    for space, shape in _covering_spaces():
        net = OFASupernet.from_space(space, 10, shape)
        for name, example in supernet_examples(net).items():
            if name not in found or len(example[2]) > len(found[name][2]):
                found[name] = example
    return found


EXAMPLES = _examples()


def test_every_registered_dynamic_op_is_covered():
    assert set(DYNAMIC_OPS.names()) <= {n for n, (_, _, specs) in EXAMPLES.items() if specs}


@pytest.mark.parametrize("op", sorted(EXAMPLES))
@pytest.mark.parametrize("check", sorted(DYNAMIC_OP_CHECKS))
def test_dynamic_op_conformance(op, check):
    max_spec, choices, specs = EXAMPLES[op]
    check_dynamic_op(max_spec, specs, choices, checks=[check])


def test_a_dynamic_op_serving_a_wrong_state_fails_the_suite():
    max_spec, choices, specs = EXAMPLES["batchnorm"]
    original = DYNAMIC_OPS.get("batchnorm")

    class Wrong(DynamicOp):
        def subnet_state(self, spec):  # forgets the batch counter of the static module
            bn, c = self.full, spec.in_shape[0]
            return {"weight": bn.weight[:c], "bias": bn.bias[:c], "running_mean": bn.running_mean[:c],
                    "running_var": bn.running_var[:c]}

    register_dynamic_op("batchnorm", replace=True)(Wrong)
    try:
        with pytest.raises(AssertionError, match=r"state_matches_the_static_module: batchnorm .*"
                                                 r"missing \['num_batches_tracked'\]"):
            check_dynamic_op(max_spec, specs, choices, checks=["state_matches_the_static_module"])
    finally:
        register_dynamic_op("batchnorm", replace=True)(original)
