"""DartsSupernet: relaxation, mixed ops, PC-DARTS, derivation, latency term, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _darts_helpers import (  # noqa: F401  (one_thread is an autouse fixture)
    FlopsTable,
    custom_cell_space,
    one_thread,
    tiny_darts,
    tiny_digits,
    tiny_nb201,
)
from torch import nn

from search_spaces import Cell, Choice, Grammar, Op, Repeat, SearchSpace, Seq, Value, get_space
from search_spaces.ops import NUM_CLASSES
from supernets import DartsSupernet, SupernetError
from supernets._darts.mixed import MixedOp, channel_shuffle


def _ops() -> list[nn.Module]:
    torch.manual_seed(0)
    return [nn.Conv2d(4, 4, 3, padding=1), nn.AvgPool2d(3, 1, 1), nn.Identity(), nn.Conv2d(4, 4, 1)]


def test_mixed_op_is_the_weighted_sum_of_its_ops():
    ops = _ops()
    mixed = MixedOp(ops)
    x = torch.randn(2, 4, 5, 5)
    w = torch.softmax(torch.randn(4), 0)
    expected = sum(wi * op(x) for wi, op in zip(w, ops, strict=True))
    torch.testing.assert_close(mixed(x, w), expected)


@pytest.mark.parametrize("k", range(4))
def test_mixed_op_with_one_hot_weights_is_the_single_op(k):
    ops = _ops()
    x = torch.randn(2, 4, 5, 5)
    w = torch.nn.functional.one_hot(torch.tensor(k), 4).float()
    torch.testing.assert_close(MixedOp(ops)(x, w), ops[k](x))


def test_partial_channel_mixed_op_shapes_and_bypass():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 6, 6)
    identity = MixedOp([nn.Identity(), nn.Identity()], partial_channels=4)
    # identity ops with weights summing to 1 leave the values, only shuffled
    out = identity(x, torch.tensor([0.25, 0.75]))
    assert out.shape == x.shape
    torch.testing.assert_close(out, channel_shuffle(x, 4))
    strided = MixedOp([nn.MaxPool2d(3, 2, 1)], partial_channels=4, stride=2)
    assert strided(x, torch.ones(1)).shape == (3, 8, 3, 3)


@pytest.mark.parametrize("k", [2, 4])
def test_pc_darts_supernet_forward_shapes(k):
    space = get_space("nb201", channels=8, cells_per_stage=1, input_shape=(1, 8, 8))
    net = DartsSupernet.from_space(space, input_shape=(1, 8, 8), partial_channels=k)
    assert net.edge_normalization
    out = net(torch.randn(5, 1, 8, 8))
    assert out.shape == (5, 10)
    full = DartsSupernet.from_space(space, input_shape=(1, 8, 8))
    assert sum(p.numel() for p in net.weight_parameters()) < sum(p.numel() for p in full.weight_parameters())
    darts = DartsSupernet.from_space(tiny_darts(), input_shape=(1, 8, 8), partial_channels=2)
    assert darts(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_partial_channels_must_divide_the_channels():
    space = get_space("nb201", channels=6, cells_per_stage=1)
    with pytest.raises(SupernetError, match="divisible by K"):
        DartsSupernet.from_space(space, input_shape=(1, 8, 8), partial_channels=4)


def test_one_alpha_set_per_cell_rule():
    nb = DartsSupernet.from_space(tiny_nb201(), input_shape=(1, 8, 8))
    assert [r.path for r in nb.rules] == ["cell"] and len(nb.cells) == 3
    assert nb.alpha[0].shape == (6, 5)
    darts = DartsSupernet.from_space(tiny_darts(), input_shape=(1, 8, 8))
    assert [r.path for r in darts.rules] == ["normal", "reduce"]
    assert [tuple(a.shape) for a in darts.alpha] == [(14, 7), (14, 7)]
    alphas = darts.alphas()
    assert set(alphas) == {"normal", "reduce"} and len(alphas["reduce"]) == 14
    row = alphas["normal"]["edge_2_0"]
    assert list(row) == list(darts.rules[0].labels) and abs(sum(row.values()) - 1) < 1e-6


def test_shared_cells_get_gradients_from_every_instance():
    net = DartsSupernet.from_space(tiny_nb201(), input_shape=(1, 8, 8))
    net(torch.randn(4, 1, 8, 8)).sum().backward()
    assert net.alpha[0].grad is not None and net.alpha[0].grad.abs().sum() > 0


@pytest.mark.parametrize("factory", [tiny_nb201, tiny_darts, custom_cell_space])
def test_argmax_derivation_is_a_valid_buildable_arch(factory):
    space = factory()
    net = DartsSupernet.from_space(space, input_shape=(1, 8, 8), seed=3)
    arch = net.derive("argmax")
    assert space.validate(arch) == arch
    model = space.build(arch, input_shape=(1, 8, 8))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_argmax_follows_the_alphas_nb201():
    space = tiny_nb201()
    net = DartsSupernet.from_space(space, input_shape=(1, 8, 8))
    target = space.sample(np.random.default_rng(7))
    rule = net.rules[0]
    with torch.no_grad():
        for e, (j, i) in enumerate(rule.edges):
            net.alpha[0][e, rule.labels.index(target[f"cell.edge_{j}_{i}"])] = 5.0
    assert net.derive("argmax") == target


def test_argmax_picks_the_strongest_inputs_per_node_darts():
    space = tiny_darts()
    net = DartsSupernet.from_space(space, input_shape=(1, 8, 8))
    rule = net.rules[0]
    sep5 = rule.labels.index("sep_conv_5x5")
    with torch.no_grad():
        for e, (j, i) in enumerate(rule.edges):
            if (j, i) in {(4, 0), (4, 3)}:
                net.alpha[0][e, sep5] = 4.0
            if (j, i) == (4, 1):
                net.alpha[0][e, sep5] = 2.0
    arch = net.derive("argmax")
    assert arch["normal.node4.inputs"] == (0, 3)
    assert arch["normal.node4.op0"] == arch["normal.node4.op1"] == "sep_conv_5x5"


def _perturbation_check(space):
    data = tiny_digits(n_val=32)
    batches = [(data.val.tensors[0][:16], data.val.tensors[1][:16])]
    net = DartsSupernet.from_space(space, input_shape=(1, 8, 8))
    tuned = []
    arch = net.derive("perturbation", data=batches, tune=lambda: tuned.append(1), seed=0)
    assert space.validate(arch) == arch
    assert len(tuned) >= sum(len(r.edges) for r in net.rules)  # retuned after every decision
    # the supernet is left discretised to exactly that architecture
    assert net.derive("argmax") == arch
    net.reset_selection()
    assert space.build(arch, input_shape=(1, 8, 8))(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_perturbation_derivation_returns_a_valid_arch_nb201():
    _perturbation_check(tiny_nb201())


@pytest.mark.slow
def test_perturbation_derivation_returns_a_valid_arch_darts():
    _perturbation_check(tiny_darts())


def test_perturbation_needs_data_and_methods_are_checked():
    net = DartsSupernet.from_space(tiny_nb201(), input_shape=(1, 8, 8))
    with pytest.raises(SupernetError, match="needs data"):
        net.derive("perturbation")
    with pytest.raises(SupernetError, match="argmax, perturbation"):
        net.derive("random")


def test_expected_latency_gradient_flows_into_alphas():
    table = FlopsTable()
    net = DartsSupernet.from_space(tiny_nb201(), input_shape=(1, 8, 8))
    latency = net.expected_latency(table)
    latency.backward()
    grad = net.alpha[0].grad
    assert grad is not None and grad.abs().sum() > 0
    rule = net.rules[0]
    # raising the weight of the costliest op raises the expected latency, of 'none' lowers it
    assert (grad[:, rule.labels.index("nor_conv_3x3")] > 0).all()
    assert (grad[:, rule.labels.index("none")] < 0).all()
    # the term is the softmax-weighted sum of each instance's candidate latencies
    specs = [s for cell in net.cells for edge in cell.specs for s in edge]
    uniform = sum(table.lookup(s) for s in specs) / len(rule.labels)
    assert abs(float(latency) - uniform) < 1e-3 * uniform


def _space_without_cells() -> SearchSpace:
    grammar = Grammar({"net": Seq(stem=Op("conv_bn_act", out=4, kernel=Value([3, 5])),
                                  head=Op("classifier", out=NUM_CLASSES))})
    return SearchSpace(grammar, name="no_cells")


def _cells_and_depth() -> SearchSpace:
    ops = Choice({"conv": Op("relu_conv_bn", kernel=3), "skip": Op("skip")})
    grammar = Grammar({"net": Seq(stem=Op("conv_bn_act", out=4), body=Repeat(Cell(ops, nodes=1), [1, 2]),
                                  head=Op("classifier", out=NUM_CLASSES))})
    return SearchSpace(grammar, name="cells_and_depth")


def _cell_with_param_choice() -> SearchSpace:
    ops = Choice({"conv": Op("relu_conv_bn", kernel=Value([1, 3])), "skip": Op("skip")})
    grammar = Grammar({"net": Seq(stem=Op("conv_bn_act", out=4), cell=Cell(ops, nodes=1),
                                  head=Op("classifier", out=NUM_CLASSES))})
    return SearchSpace(grammar, name="param_choice")


@pytest.mark.parametrize("make, message", [
    (_space_without_cells, "no categorical op choice on cell edges"),
    (lambda: get_space("mobilenetv3_ofa"), "no categorical op choice on cell edges"),
    (_cells_and_depth, r"decision 'body.depth' \(depth\)"),
    (_cell_with_param_choice, "parameter decision"),
])
def test_spaces_without_relaxable_op_choices_are_refused(make, message):
    with pytest.raises(SupernetError, match=message):
        DartsSupernet.from_space(make())


def test_construction_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = DartsSupernet.from_space(tiny_nb201(), input_shape=(1, 8, 8), seed=5)
    assert torch.equal(torch.rand(1), before)
    b = DartsSupernet.from_space(tiny_nb201(), input_shape=(1, 8, 8), seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
