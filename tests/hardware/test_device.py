import os

import pytest
import torch
from torch import nn

from hardware import DeviceUnavailableError, HardwareError, get_device


def test_fingerprint_contents():
    fp = get_device("cpu", threads=1, batch_size=2).fingerprint()
    assert fp["processor"] and fp["processor"] != "unknown"
    assert fp["cores"] == os.cpu_count()
    assert fp["threads"] == 1 and fp["batch_size"] == 2 and fp["dtype"] == "float32"
    assert fp["torch"] == torch.__version__
    assert "onnxruntime" in fp
    assert get_device("cpu", threads="all").fingerprint()["threads"] == os.cpu_count()


def test_onnxruntime_fingerprint_has_its_version():
    pytest.importorskip("onnxruntime")
    import onnxruntime

    fp = get_device("onnxruntime", threads=1).fingerprint()
    assert fp["onnxruntime"] == onnxruntime.__version__ and fp["kind"] == "onnxruntime"


def test_unknown_device_and_option_list_the_valid_ones():
    with pytest.raises(HardwareError, match="valid devices: cpu, cuda, onnxruntime"):
        get_device("tpu")
    with pytest.raises(HardwareError, match=r"no option 'thread'.*valid options: threads"):
        get_device("cpu", thread=2)
    with pytest.raises(HardwareError, match="threads must be"):
        get_device("cpu", threads=-1)
    with pytest.raises(HardwareError, match="dtype must be one of"):
        get_device("cpu", dtype="int8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(DeviceUnavailableError, match="needs a CUDA GPU"):
        get_device("cuda")


def test_cpu_device_sets_and_restores_threads():
    before = torch.get_num_threads()
    device = get_device("cpu", threads=1)
    with device.activate():
        assert torch.get_num_threads() == 1
        assert torch.is_inference_mode_enabled()
    assert torch.get_num_threads() == before


def test_thread_clock_needs_one_thread():
    assert get_device("cpu", threads=1, clock="thread").fingerprint()["clock"] == "thread"
    with pytest.raises(HardwareError, match="needs threads=1"):
        get_device("cpu", threads=2, clock="thread")


def test_prepare_puts_module_in_eval_mode():
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    get_device("cpu").prepare(module, (3, 8, 8))
    assert not module.training
