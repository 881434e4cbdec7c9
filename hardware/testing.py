"""Conformance checks of the :class:`~hardware.Device` contract, for built-in and users' devices.

Check a device of your own in a few lines (register it under its ``kind`` first, as
tables re-create their device with ``get_device(kind, **options)``)::

    from hardware import register_device
    from hardware.testing import check_device

    register_device("mydevice")(MyDevice)
    check_device(MyDevice(threads=2))  # raises DeviceContractError listing every broken rule

or every registered device at once (:func:`check_registered_devices`). In a pytest
suite, one test per registered device and check::

    import pytest
    from hardware import list_devices
    from hardware.testing import DEVICE_CHECKS, device_or_skip

    @pytest.mark.parametrize("name", list_devices())
    @pytest.mark.parametrize("check", DEVICE_CHECKS, ids=lambda check: check.__name__)
    def test_device_contract(name, check):
        check(device_or_skip(name))  # skips a device absent here (no GPU, no onnxruntime)

Each check takes a device and raises :class:`DeviceContractError` naming the rule and
what it saw. The checks run small networks on the device (well under a second each
on a CPU). pytest is not needed, except by :func:`device_or_skip`.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from hardware._device import DEVICES, IDENTITY_KEYS, VERSION_KEYS, Device, get_device
from hardware._profiler import Profiler
from hardware.errors import DeviceUnavailableError, HardwareError

__all__ = [
    "DEVICE_CHECKS",
    "DeviceCheck",
    "DeviceContractError",
    "check_activate",
    "check_device",
    "check_fingerprint",
    "check_options_round_trip",
    "check_prepare_leaves_the_module",
    "check_profiler_times_it",
    "check_registered_devices",
    "check_runner",
    "check_runner_runs_the_module",
    "device_or_skip",
]

DeviceCheck = Callable[[Device], None]
"""One rule of the contract: returns when the device keeps it, raises :class:`DeviceContractError` if not."""

_SHAPE = (3, 8, 8)  # input of the small test network


class DeviceContractError(AssertionError):
    """A device breaks a rule of the :class:`~hardware.Device` contract (the message says which)."""


def _require(ok: bool, device: Device, message: str) -> None:
    if not ok:
        raise DeviceContractError(f"device {device!r}: {message}")


def _net() -> nn.Module:
    """A small network in training mode, with BatchNorm statistics that a training-mode run would move."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).train()


def _convs(depth: int) -> nn.Module:
    """``depth`` 3x3 convolutions on 8 channels: work, and kernel launches, grow with depth."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)])


def _torch_state() -> dict[str, Any]:
    return {"threads": torch.get_num_threads(), "grad_enabled": torch.is_grad_enabled(),
            "inference_mode": torch.is_inference_mode_enabled()}


def check_fingerprint(device: Device) -> None:
    """``fingerprint()`` is plain JSON data with the identity and version keys, and is stable."""
    fp = device.fingerprint()
    _require(isinstance(fp, dict), device, f"fingerprint() must return a dict, got {type(fp).__name__}")
    try:
        again = json.loads(json.dumps(fp))
    except (TypeError, ValueError) as exc:
        raise DeviceContractError(f"device {device!r}: fingerprint() is not JSON data ({exc})") from None
    _require(again == fp, device, "fingerprint() changes through JSON (tuples or non-string keys?): "
             f"{fp} -> {again}")
    missing = [k for k in (*IDENTITY_KEYS, *VERSION_KEYS) if k not in fp]
    _require(not missing, device, f"fingerprint() lacks the key(s) {missing}; it has {sorted(fp)}")
    for key in ("kind", "dtype", "batch_size"):
        _require(fp[key] == getattr(device, key), device,
                 f"fingerprint()[{key!r}] is {fp[key]!r}, but the device's {key} is {getattr(device, key)!r}")
    _require(device.fingerprint() == fp, device, "fingerprint() differs between two calls")


def check_options_round_trip(device: Device) -> None:
    """``get_device(device.kind, **device.options())`` re-creates a device with the same fingerprint."""
    options = device.options()
    _require(isinstance(options, dict), device, f"options() must return a dict, got {type(options).__name__}")
    try:
        json_ok = json.loads(json.dumps(options)) == options
    except (TypeError, ValueError):
        json_ok = False
    _require(json_ok, device, f"options() must be plain JSON data (tables store them), got {options}")
    try:
        again = get_device(device.kind, **options)
    except HardwareError as exc:
        raise DeviceContractError(
            f"device {device!r}: get_device({device.kind!r}, **options()) failed: {exc}; a latency "
            "table re-creates its device so: register the device under its kind "
            f"(register_device({device.kind!r}))"
        ) from None
    _require(again.fingerprint() == device.fingerprint(), device,
             f"get_device({device.kind!r}, **{options}) has another fingerprint: {again.fingerprint()}")
    _require(again.options() == options, device,
             f"get_device({device.kind!r}, **{options}).options() is {again.options()}")


class _Probe(Exception):
    pass


def check_activate(device: Device) -> None:
    """``activate()`` is a context manager, usable again, that restores torch's global settings
    on exit and lets exceptions through."""
    before = _torch_state()
    context = device.activate()
    _require(hasattr(context, "__enter__") and hasattr(context, "__exit__"), device,
             f"activate() must return a context manager, got {type(context).__name__}")
    with context:
        pass
    with device.activate():
        pass
    _require(_torch_state() == before, device,
             f"activate() left torch settings changed: {before} before, {_torch_state()} after")
    try:
        with device.activate():
            raise _Probe
    except _Probe:
        pass
    else:
        raise DeviceContractError(f"device {device!r}: activate() swallowed an exception raised inside it")
    _require(_torch_state() == before, device, "activate() left torch settings changed after an exception")


def check_runner(device: Device) -> None:
    """``prepare`` returns a runner whose calls (inside ``activate``, interleaved with another
    runner) return positive, finite seconds."""
    runners = [device.prepare(_net(), _SHAPE), device.prepare(_convs(1), (8, 8, 8))]
    for runner in runners:
        _require(callable(runner), device, f"prepare() must return a callable, got {type(runner).__name__}")
    with device.activate():
        times = [run() for _ in range(3) for run in runners]
    for seconds in times:
        real = isinstance(seconds, numbers.Real) and not isinstance(seconds, bool)
        _require(real, device, f"a runner must return seconds as a real number, got {seconds!r}")
        _require(math.isfinite(seconds) and 0 < seconds < 10, device,
                 f"a runner returned {seconds!r} s for a tiny network (must be > 0, finite, in seconds)")


def check_runner_runs_the_module(device: Device) -> None:
    """A runner times the module it was given: 16 convolutions take longer than one."""
    light, heavy = device.prepare(_convs(1), (8, 16, 16)), device.prepare(_convs(16), (8, 16, 16))
    with device.activate():
        for _ in range(2):  # warm-up
            light(), heavy()
        light_s = min(light() for _ in range(7))
        heavy_s = min(heavy() for _ in range(7))
    _require(heavy_s > 2 * light_s, device,
             f"a runner of 16 convolutions took {heavy_s:.3g} s, one convolution {light_s:.3g} s "
             "(best of 7): the runner does not seem to run (or time) its module")


def check_prepare_leaves_the_module(device: Device) -> None:
    """``prepare`` and running change the caller's module only by ``eval()``, the dtype and,
    for an accelerator, the device of its tensors: values (BatchNorm statistics included),
    structure and ``requires_grad`` stay."""
    module = _net()
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    grads = {k: p.requires_grad for k, p in module.named_parameters()}
    structure = [(name, type(m).__name__) for name, m in module.named_modules()]
    run = device.prepare(module, _SHAPE)
    with device.activate():
        for _ in range(3):
            run()
    after = module.state_dict()
    _require(list(after) == list(before), device, f"prepare() changed the module's state keys: "
             f"{list(before)} -> {list(after)}")
    changed = [k for k, v in after.items() if not torch.equal(before[k].to(v.dtype), v.detach().cpu())]
    _require(not changed, device, f"prepare() or its runner changed the module's values: {changed} "
             "(a run in training mode moves BatchNorm statistics; call module.eval())")
    _require({k: p.requires_grad for k, p in module.named_parameters()} == grads, device,
             "prepare() changed requires_grad of the module's parameters")
    _require([(n, type(m).__name__) for n, m in module.named_modules()] == structure, device,
             "prepare() changed the module's structure")


def check_profiler_times_it(device: Device) -> None:
    """The :class:`~hardware.Profiler` times modules of different input shapes round-robin on the
    device, with the reference network, as a latency table's build does."""
    profiler = Profiler(warmup=1, min_runs=3, max_runs=3, check_every=3, time_budget_s=10.0)
    out, ref = profiler.measure_group([_net(), nn.Linear(5, 2)], [_SHAPE, (5,)], device)
    _require(len(out) == 2 and ref is not None, device, f"measure_group returned {len(out)} measurements")
    for m in [*out, ref]:
        _require(m.n_runs == 3 and math.isfinite(m.value_ms) and m.value_ms > 0, device,
                 f"the profiler measured {m} (want 3 runs, a positive finite latency)")
        _require(math.isfinite(m.noise_floor_ms) and m.noise_floor_ms >= 0, device,
                 f"the profiler's noise floor is {m.noise_floor_ms} ms")


DEVICE_CHECKS: tuple[DeviceCheck, ...] = (
    check_fingerprint,
    check_options_round_trip,
    check_activate,
    check_runner,
    check_runner_runs_the_module,
    check_prepare_leaves_the_module,
    check_profiler_times_it,
)
"""Every rule of the :class:`~hardware.Device` contract, cheapest first."""


def check_device(device: Device, checks: Sequence[DeviceCheck] = DEVICE_CHECKS) -> None:
    """Run ``checks`` (default: all) on ``device``.

    Raises:
        DeviceContractError: listing every check that failed, with its message (an
            unexpected exception inside a check counts as a failure of that check).
    """
    failures = []
    for check in checks:
        try:
            check(device)
        except DeviceContractError as exc:
            failures.append(f"{check.__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001  a crash inside the device is a failed check
            failures.append(f"{check.__name__}: raised {type(exc).__name__}: {exc}")
    if failures:
        raise DeviceContractError(f"device {device!r} fails {len(failures)} of {len(checks)} checks:\n  "
                                  + "\n  ".join(failures))


def check_registered_devices(names: Sequence[str] | None = None) -> dict[str, str]:
    """Check every registered device (or ``names``), created with its default options.

    Returns:
        ``{name: "ok"}``, or ``{name: "absent here: <reason>"}`` for a device that raised
        :class:`~hardware.DeviceUnavailableError` (no GPU, a missing package).

    Raises:
        DeviceContractError: listing every device that fails a check.
    """
    results: dict[str, str] = {}
    failures = []
    for name in names if names is not None else DEVICES.names():
        try:
            device = get_device(name)
        except DeviceUnavailableError as exc:
            results[name] = f"absent here: {exc}"
            continue
        try:
            check_device(device)
        except DeviceContractError as exc:
            failures.append(f"{name!r}: {exc}")
            results[name] = "failed"
        else:
            results[name] = "ok"
    if failures:
        raise DeviceContractError("\n".join(failures))
    return results


def device_or_skip(name: str, **options: Any) -> Device:
    """``get_device(name, **options)``, or a pytest skip naming why the device is absent here.

    For parametrised pytest suites; imports pytest when called.
    """
    try:
        return get_device(name, **options)
    except DeviceUnavailableError as exc:
        import pytest

        pytest.skip(f"device {name!r} is absent here: {exc}")
