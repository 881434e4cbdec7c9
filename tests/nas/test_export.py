"""The one export: verified files, and no silently wrong model from an uncalibrated subnet."""

from __future__ import annotations

import pytest
import torch

from nas.errors import NasError
from nas.export import export_subnet, load_exported
from search_spaces import NUM_CLASSES, Grammar, Op, Repeat, SearchSpace, Seq, Value
from supernets import OFASupernet, calibration_batches, evaluate_subnet, recalibrate_bn
from supernets.data import load_dataset


def tiny_space() -> SearchSpace:
    net = Seq(
        stem=Op("conv_bn_act", out=Value([8, 12]), kernel=3),
        stage=Repeat(Op("mbconv", out=16, kernel=Value([3, 5]), expand=Value([2, 3])), depth=[1, 2]),
        head=Op("classifier", out=NUM_CLASSES),
    )
    return SearchSpace(Grammar({"net": net}), name="tiny", input_shape=(1, 8, 8), num_classes=10)


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("digits")
    net = OFASupernet.from_space(tiny_space(), 10, (1, 8, 8), seed=0)
    net.train()
    with torch.no_grad():  # give the batch norms training statistics, as a trained supernet has
        for x in calibration_batches(data.train, 256, 64):
            net(x)
    return net, data


def test_extract_marks_whether_bn_was_recalibrated_for_the_subnet(setup):
    net, data = setup
    a, b = net.smallest(), net.largest_arch
    assert net.extract(a).bn_calibrated is False  # never recalibrated
    evaluate_subnet(net, a, data, "val", calib_images=64)
    assert net.extract(a).bn_calibrated is True
    assert net.extract(b).bn_calibrated is False  # recalibrated for another subnet
    evaluate_subnet(net, a, data, "val", calib_images=64)
    net.train()
    with torch.no_grad():
        net(data.train.tensors[0][:8])  # a training-mode forward changes the statistics
    assert net.extract(a).bn_calibrated is False
    evaluate_subnet(net, a, data, "val", calib_images=64)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state = {k: (v + 1 if "running_mean" in k else v) for k, v in state.items()}
    net.load_state_dict(state)  # so does loading weights
    assert net.extract(a).bn_calibrated is False


def test_export_refuses_an_uncalibrated_subnet_or_recalibrates_it(setup, tmp_path):
    net, data = setup
    space, arch = net.space, net.smallest()
    evaluate_subnet(net, net.largest_arch, data, "val", calib_images=64)
    module = net.extract(arch)
    with pytest.raises(NasError, match="batch-norm statistics were not recalibrated"):
        export_subnet(module, space, arch, tmp_path / "a", (1, 8, 8), 10)
    assert not (tmp_path / "a").exists()
    batches = calibration_batches(data.train, 64)
    files = export_subnet(module, space, arch, tmp_path / "b", (1, 8, 8), 10,
                          formats=("state_dict",), calibration=batches)
    assert files["state_dict"]["max_abs_diff"] <= 1e-4
    # the export's recalibration equals the supernet's for that subnet
    reference = evaluate_subnet(net, arch, data, "test", calib_images=64)
    restored = load_exported(tmp_path / "b" / "model.pt", space)
    with torch.no_grad():
        x, y = data.test.tensors
        accuracy = float((restored(x).argmax(1) == y).float().mean())
    assert accuracy == pytest.approx(reference, abs=1e-6)


def test_every_format_is_written_and_checked(setup, tmp_path):
    net, data = setup
    arch = net.largest_arch
    evaluate_subnet(net, arch, data, "val", calib_images=64)
    files = export_subnet(net.extract(arch), net.space, arch, tmp_path, (1, 8, 8), 10)
    assert set(files) == {"state_dict", "torchscript", "onnx"}
    assert all(f["max_abs_diff"] <= 1e-4 for f in files.values())
    assert (tmp_path / "arch.json").read_text() == arch.to_json()
    with pytest.raises(NasError, match="unknown export format"):
        export_subnet(net.extract(arch), net.space, arch, tmp_path, (1, 8, 8), 10, formats=("tflite",))


def test_generic_recalibration_of_a_plain_module(setup):
    net, data = setup
    module = net.space.build(net.smallest(), 10, (1, 8, 8))
    assert recalibrate_bn(module, calibration_batches(data.train, 32, 16)) == 32
    assert module.bn_calibrated is True and not module.training
    assert recalibrate_bn(module, []) == 0
