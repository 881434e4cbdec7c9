"""The Device conformance suite: every registered device passes it, and broken devices fail it."""

from __future__ import annotations

import ast
import contextlib
import inspect

import pytest
import torch

import hardware.testing as conformance
from hardware import DEVICES, CPUDevice, get_device, list_devices
from hardware.testing import DEVICE_CHECKS, DeviceContractError, check_device, device_or_skip


@pytest.mark.parametrize("name", list_devices())
@pytest.mark.parametrize("check", DEVICE_CHECKS, ids=lambda check: check.__name__)
def test_registered_device_keeps_the_contract(name, check):
    check(device_or_skip(name))


def test_check_registered_devices_reports_absent_devices():
    results = conformance.check_registered_devices(["cpu", "cuda"])
    assert results["cpu"] == "ok"
    if not torch.cuda.is_available():
        assert results["cuda"].startswith("absent here: device 'cuda' needs a CUDA GPU")


def test_device_or_skip_skips_an_absent_device_with_its_reason():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(pytest.skip.Exception, match="device 'cuda' is absent here: .*needs a CUDA GPU"):
        device_or_skip("cuda")


def test_the_module_does_not_import_pytest_at_import_time():
    tree = ast.parse(inspect.getsource(conformance))
    top = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = {alias.name for node in top for alias in node.names} | {
        node.module for node in top if isinstance(node, ast.ImportFrom)}
    assert "pytest" not in names and "torch" in names


# broken devices: each breaks one rule, and the check of that rule says so ---------------------
class Registered(CPUDevice):
    """A CPU device registered under its own kind (so the round trip can succeed)."""

    kind = "conformance_test"


@pytest.fixture
def registered():
    DEVICES.add(Registered.kind, Registered, replace=True)
    yield Registered
    DEVICES.remove(Registered.kind)


class NoEval(Registered):
    def prepare(self, module, input_shape):
        x = self.example_input(input_shape)

        def run():
            module(x)  # training mode: BatchNorm statistics move
            return 1e-3

        return run


class Idle(Registered):
    def prepare(self, module, input_shape):
        super().prepare(module, input_shape)
        return lambda: 1e-4  # never runs the module


class Milliseconds(Registered):
    def prepare(self, module, input_shape):
        run = super().prepare(module, input_shape)
        return lambda: -run()


class TupleFingerprint(Registered):
    def fingerprint(self):
        return {**super().fingerprint(), "shape": (1, 2)}


class LeakyThreads(Registered):
    @contextlib.contextmanager
    def activate(self):
        torch.set_num_threads(self.threads)  # never restored
        with torch.inference_mode():
            yield


class Unregistered(CPUDevice):
    kind = "conformance_unregistered"


class TwoFaults(Unregistered):
    def fingerprint(self):
        return {**super().fingerprint(), "shape": (1, 2)}


@pytest.mark.parametrize("device_class,check,message", [
    (NoEval, conformance.check_prepare_leaves_the_module, r"changed the module's values: \['1.running_mean'"),
    (Idle, conformance.check_runner_runs_the_module, "does not seem to run"),
    (Milliseconds, conformance.check_runner, "must be > 0"),
    (TupleFingerprint, conformance.check_fingerprint, "changes through JSON"),
    (Unregistered, conformance.check_options_round_trip, "register the device under its kind"),
])
def test_each_check_catches_the_rule_it_states(registered, device_class, check, message):
    device = device_class()
    with pytest.raises(DeviceContractError, match=message):
        check(device)
    check(Registered())  # the same check passes on a device that keeps the rule


def test_leaked_thread_setting_is_caught(registered):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(DeviceContractError, match="left torch settings changed"):
            conformance.check_activate(LeakyThreads(threads=1))
    finally:
        torch.set_num_threads(before)


def test_check_device_lists_every_failed_check(registered):
    check_device(Registered())
    with pytest.raises(DeviceContractError) as info:
        check_device(TwoFaults())
    text = str(info.value)
    assert "fails 2 of 7 checks" in text
    assert "check_fingerprint: " in text and "check_options_round_trip: " in text


def test_get_device_round_trip_of_a_non_default_cpu():
    conformance.check_options_round_trip(get_device("cpu", threads=2, batch_size=3, clock="wall"))
