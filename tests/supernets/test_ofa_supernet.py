"""OFA supernet: extraction equals the active subnet, each kind of elasticity, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces import (
    NUM_CLASSES,
    Choice,
    Grammar,
    Op,
    Param,
    Repeat,
    Residual,
    SearchSpace,
    Seq,
    Value,
    get_space,
    register_op,
)
from supernets import DynamicOp, OFASupernet, SupernetError, register_dynamic_op
from supernets._ofa.dynamic import DynamicMBConv


def small_mbv3() -> SearchSpace:
    return get_space("mobilenetv3_ofa", width_mult=0.25, resolutions=[16, 24], input_shape=(1, 8, 8))


def resnet_like() -> SearchSpace:
    """A user's space: elastic stem width, residual plain-conv stage, MBConv stage."""
    net = Seq(
        stem=Op("conv_bn_act", out=Value([8, 16]), kernel=3),
        stage1=Repeat(Residual(Op("conv_bn_act", out=0, kernel=Value([3, 5]))), depth=[1, 2, 3]),
        down=Op("mbconv", out=24, kernel=Value([3, 5]), expand=Value([2, 4]), stride=2, se=True),
        stage2=Repeat(Op("mbconv", out=0, kernel=Value([3, 5]), expand=Value([2, 4])), depth=[1, 2]),
        head=Op("classifier", out=NUM_CLASSES),
    )
    return SearchSpace(Grammar({"net": net}), name="resnet_like", input_shape=(1, 8, 8), num_classes=10)


def scramble(net: OFASupernet, seed: int = 0) -> None:
    """Non-trivial batch-norm statistics, affine parameters and kernel matrices."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict(keep_vars=True).items():
            if name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.3)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif "matrices" in name or (name.endswith("weight") and t.dim() == 1):
                t.add_(torch.randn(t.shape, generator=gen) * 0.2)


@pytest.fixture(scope="module", params=["mbv3", "resnet_like"])
def net(request) -> OFASupernet:
    space = small_mbv3() if request.param == "mbv3" else resnet_like()
    supernet = OFASupernet.from_space(space, num_classes=10, input_shape=(1, 8, 8), seed=1)
    scramble(supernet)
    return supernet


def test_extract_equals_active_output(net: OFASupernet) -> None:
    rng = np.random.default_rng(0)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    archs = [net.largest_arch, net.smallest()] + [net.sample(rng) for _ in range(10)]
    assert len({a.key for a in archs}) >= 10
    for arch in archs:
        net.eval().set_active(arch)
        with torch.no_grad():
            expected = net(x)
        module = net.extract(arch)
        assert not any(isinstance(m, (DynamicOp, OFASupernet)) for m in module.modules())
        with torch.no_grad():
            assert (module(x) - expected).abs().max().item() <= 1e-5, arch


def test_train_mode_bn_updates_reach_the_supernet(net: OFASupernet) -> None:
    arch = net.smallest()
    net.train().set_active(arch)
    before = {k: v.clone() for k, v in net.state_dict().items() if k.endswith("running_mean")}
    with torch.no_grad():
        net(torch.randn(8, 1, 8, 8))
    after = net.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert changed  # statistics of the active channels moved, through the sliced views
    net.eval()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_extracted_module_saves_loads_and_traces(net: OFASupernet, tmp_path) -> None:
    arch = net.sample(np.random.default_rng(3))
    module = net.extract(arch)
    x = torch.randn(2, 1, 8, 8)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    fresh = net.space.build(arch, 10, (1, 8, 8)).eval()
    fresh.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    traced = torch.jit.trace(module, x)
    with torch.no_grad():
        assert torch.allclose(fresh(x), module(x), atol=1e-6)
        assert torch.allclose(traced(x), module(x), atol=1e-6)


def test_categories_cover_every_decision() -> None:
    net = OFASupernet.from_space(small_mbv3(), 10, (1, 8, 8))
    kinds = set(net.categories.values())
    assert kinds == {"kernel", "width", "depth", "resolution"}
    assert net.categories["stage3.depth"] == "depth"
    assert net.categories["stage3.block2.kernel"] == "kernel"
    assert net.categories["stage3.block2.expand"] == "width"
    assert net.largest_arch["stage2.block1.kernel"] == 7 and net.smallest()["stage2.depth"] == 2
    rng = np.random.default_rng(0)
    only_kernel = [net.sample(rng, ["kernel"]) for _ in range(5)]
    assert all(a["stage1.depth"] == 4 and a["resolution.size"] == 24 for a in only_kernel)
    assert len({a["stage1.block1.kernel"] for a in only_kernel}) > 1
    with pytest.raises(SupernetError, match="valid: kernel, width, depth, resolution"):
        net.sample(rng, ["colour"])


def test_elastic_kernel_centre_and_transform() -> None:
    net = OFASupernet.from_space(resnet_like(), 10, (1, 8, 8))
    arch = dict(net.largest_arch)
    arch["down.kernel"] = 3
    net.set_active(arch)
    down = net.body.items[2]
    full_w = down.full.body[3].weight  # depthwise (hidden, 1, 5, 5)
    w3 = down.subnet_state(down.spec)["body.3.weight"]
    assert w3.shape[-1] == 3
    assert torch.allclose(w3, full_w[..., 1:4, 1:4])  # identity transform at init
    net.train()
    net(torch.randn(4, 1, 8, 8)).sum().backward()
    grad = full_w.grad
    assert grad[..., 1:4, 1:4].abs().sum() > 0
    ring = grad.clone()
    ring[..., 1:4, 1:4] = 0
    assert ring.abs().sum() == 0  # the outer ring is unused by a 3x3 kernel
    assert down.kernel.matrices["5to3"].grad.abs().sum() > 0


def test_elastic_width_slices_and_sorts() -> None:
    net = OFASupernet.from_space(resnet_like(), 10, (1, 8, 8), seed=2)
    scramble(net)
    net.eval()
    x = torch.randn(5, 1, 8, 8)
    arch = dict(net.largest_arch)
    arch["down.expand"] = 2
    arch["stem.out"] = 8
    net.set_active(arch)
    down: DynamicMBConv = net.body.items[2]
    assert down.spec.in_shape[0] == 8
    assert down.subnet_state(down.spec)["body.0.weight"].shape[:2] == (16, 8)  # hidden 8*2
    net.train()
    net(x).sum().backward()
    expand_grad = down.full.body[0].weight.grad  # (64, 16, 1, 1)
    assert expand_grad[16:].abs().sum() == 0 and expand_grad[:, 8:].abs().sum() == 0
    assert expand_grad[:16, :8].abs().sum() > 0
    net.eval().set_active(net.largest_arch)
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        after = net(x)
    assert torch.allclose(before, after, atol=1e-5)  # sorting keeps the largest function
    norms = down.full.body[-2].weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(norms[:-1] >= norms[1:])


def test_elastic_depth_runs_first_blocks() -> None:
    net = OFASupernet.from_space(resnet_like(), 10, (1, 8, 8))
    arch = dict(net.largest_arch)
    arch["stage1.depth"] = 1
    for k in ("stage1.block2.kernel", "stage1.block3.kernel"):
        del arch[k]
    net.set_active(arch)
    assert net.body.items[1].active == [0]
    net.train()
    net(torch.randn(4, 1, 8, 8)).sum().backward()
    blocks = net.body.items[1].items
    assert blocks[0].body.full[0].weight.grad is not None
    assert blocks[1].body.full[0].weight.grad is None and blocks[2].body.full[0].weight.grad is None
    module = net.extract(arch)
    assert len(module[1]) == 1


def test_elastic_resolution_resizes_input() -> None:
    net = OFASupernet.from_space(small_mbv3(), 10, (1, 8, 8))
    arch = dict(net.largest_arch)
    arch["resolution.size"] = 16
    module = net.extract(arch)
    seen = []
    module[1].register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    module(torch.randn(2, 1, 8, 8))
    assert seen == [(16, 16)]


@pytest.mark.parametrize("space_fn", [resnet_like, small_mbv3])
def test_recalibrate_bn_is_the_exact_average(space_fn) -> None:
    net = OFASupernet.from_space(space_fn(), 10, (1, 8, 8))
    scramble(net)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 1, 8, 8, generator=gen) for _ in range(3)]
    for seed in (5, 6):  # fresh subnets: their layers were never run before
        arch = net.sample(np.random.default_rng(seed))
        net.set_active(arch)
        net.recalibrate_bn(batches)
        assert not net.training
        inherited = net.extract(arch)
        reference = net.extract(arch)  # same weights; statistics re-estimated the plain way
        norms = [m for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        reference.train()
        with torch.no_grad():
            for b in batches:
                reference(b)
        ours = [m for m in inherited.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(ours) == len(norms) > 3
        for a, b in zip(ours, norms):
            assert torch.allclose(a.running_mean, b.running_mean, atol=1e-5)
            assert torch.allclose(a.running_var, b.running_var, atol=1e-4)


def test_recalibrate_bn_weights_batches_by_their_size() -> None:
    # Regression: a short last batch used to count as much as a full one (momentum None).
    net = OFASupernet.from_space(small_mbv3(), 10, (1, 8, 8))
    scramble(net)
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(n, 1, 8, 8, generator=gen) * s + s for n, s in ((24, 1.0), (24, 2.0), (3, 9.0))]
    arch = net.sample(np.random.default_rng(7))
    net.set_active(arch)
    net.recalibrate_bn(batches)
    ours = [m for m in net.extract(arch).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    reference = net.extract(arch)
    norms = [m for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    per_batch = []
    reference.train()
    for b in batches:  # each batch's own statistics
        for m in norms:
            m.reset_running_stats()
            m.momentum = 1.0
        with torch.no_grad():
            reference(b)
        per_batch.append([(m.running_mean.clone(), m.running_var.clone()) for m in norms])
    sizes = torch.tensor([len(b) for b in batches], dtype=torch.float32)
    weights = sizes / sizes.sum()
    for i, a in enumerate(ours):
        mean = sum(w * stats[i][0] for w, stats in zip(weights, per_batch))
        var = sum(w * stats[i][1] for w, stats in zip(weights, per_batch))
        assert torch.allclose(a.running_mean, mean, atol=1e-4)
        assert torch.allclose(a.running_var, var, rtol=1e-4, atol=1e-4)
    unweighted = sum(stats[0][0] for stats in per_batch) / 3
    assert not torch.allclose(ours[0].running_mean, unweighted, atol=1e-3)


def test_calibration_batches_have_no_short_tail() -> None:
    from torch.utils.data import TensorDataset

    from supernets._ofa.evaluate import calibration_batches

    data = TensorDataset(torch.arange(899.0).reshape(-1, 1))
    sizes = [len(b) for b in calibration_batches(data, 1024, batch_size=128)]
    assert sum(sizes) == 899 and max(sizes) <= 128 and max(sizes) - min(sizes) <= 1
    assert [len(b) for b in calibration_batches(data, 256, batch_size=128)] == [128, 128]


def test_non_elastic_decisions_are_refused() -> None:
    choice = Seq(stem=Op("conv_bn_act", out=8),
                 mix=Choice({"a": Op("conv_bn_act", kernel=3), "b": Op("pool")}),
                 head=Op("classifier", out=NUM_CLASSES))
    with pytest.raises(SupernetError, match="'mix'"):
        OFASupernet.from_space(SearchSpace(Grammar({"net": choice}), input_shape=(1, 8, 8)))
    strided = Seq(stem=Op("conv_bn_act", out=8, stride=Value([1, 2])), head=Op("classifier", out=NUM_CLASSES))
    with pytest.raises(SupernetError, match=r"'stem\.stride'.*not elastic"):
        OFASupernet.from_space(SearchSpace(Grammar({"net": strided}), input_shape=(1, 8, 8)))
    with pytest.raises(SupernetError, match=r"'cell\.edge_1_0'.*edge decision of cell 'cell'"):
        OFASupernet.from_space(get_space("nb201"))


@register_op("test_ofa_conv", params={"out": Param(int, 0, "channels")},
             out_shape=lambda s, out: (out or s[0], *s[1:]))
def _test_conv(in_shape, out):
    return torch.nn.Conv2d(in_shape[0], out or in_shape[0], 3, padding=1)


def test_user_op_needs_and_gets_a_dynamic_implementation() -> None:
    net = Seq(stem=Op("test_ofa_conv", out=Value([4, 8])), head=Op("classifier", out=NUM_CLASSES))
    space = SearchSpace(Grammar({"net": net}), input_shape=(1, 8, 8))
    supernet = OFASupernet.from_space(space)
    small = {"stem.out": 4}
    with pytest.raises(SupernetError, match="stem: op 'test_ofa_conv'.*register_dynamic_op"):
        supernet.set_active(small)

    @register_dynamic_op("test_ofa_conv", replace=True)
    class DynamicTestConv(DynamicOp):
        def subnet_state(self, spec):
            out, cin = spec.param_dict["out"], spec.in_shape[0]
            return {"weight": self.full.weight[:out, :cin], "bias": self.full.bias[:out]}

    supernet = OFASupernet.from_space(space).eval()
    supernet.set_active(small)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(supernet.extract(small)(x), supernet(x), atol=1e-6)


def test_eps_shrinking_keeps_decisions_at_max() -> None:
    net = OFASupernet.from_space(resnet_like(), 10, (1, 8, 8))
    rng = np.random.default_rng(0)
    assert net.sample(rng, eps=0.0) == net.largest_arch
    assert any(net.sample(rng, eps=0.5) != net.largest_arch for _ in range(5))
