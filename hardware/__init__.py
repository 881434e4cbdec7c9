"""Hardware: devices, a robust profiler and latency lookup tables.

Public API::

    from hardware import get_device, Profiler, LatencyTable, validate

    device = get_device("cpu", threads=1)
    table = LatencyTable.build(space, device, input_shape=(3, 128, 128), rng=0)
    table.predict(archs)            # ms, vectorised over architectures
    validate(table, n=100, repeats=2).plot("lut.png")  # also reports the noise ceiling

For a device hwnas cannot run on, a portable bundle (ONNX models and a standalone
runner needing only numpy and onnxruntime) imports back into a table::

    make_bundle(space, "bundle/", precision="int8")   # then on the device: python bundle/measure.py bundle/
    table = import_measurements("bundle/", "measurements.csv")

A device of your own is checked against the :class:`Device` contract with
``hardware.testing.check_device(MyDevice())`` (see :mod:`hardware.testing`).

Tables are built with a reference network timed in every round-robin group
(``reference_module``), so their latencies are in ms at build-time machine speed
and ``validate`` measures on that scale (see ``hardware/_reference.py``).
"""

from hardware._build import BuildSettings
from hardware._bundle import RUNNER, make_bundle, read_manifest
from hardware._calibration import contrast_design, fit_calibration, transform_layers
from hardware._device import (
    DEVICES,
    CPUDevice,
    CUDADevice,
    Device,
    OnnxRuntimeDevice,
    Runner,
    get_device,
    list_devices,
    register_device,
)
from hardware._guard import BusyMachineError, BusyMachineWarning, gap_beyond_noise
from hardware._import import import_measurements
from hardware._profiler import Measurement, Profiler, statistic_of
from hardware._reference import normalise, reference_module, reference_spec, speed_factor
from hardware._table import LatencyTable
from hardware._validate import DriftReference, ValidationReport, compare, validate
from hardware.errors import (
    DeviceUnavailableError,
    HardwareError,
    MissingEntriesError,
    TableMismatchError,
)

__all__ = [
    "DEVICES",
    "BuildSettings",
    "BusyMachineError",
    "BusyMachineWarning",
    "CPUDevice",
    "CUDADevice",
    "Device",
    "DeviceUnavailableError",
    "DriftReference",
    "HardwareError",
    "LatencyTable",
    "Measurement",
    "MissingEntriesError",
    "OnnxRuntimeDevice",
    "Profiler",
    "Runner",
    "TableMismatchError",
    "RUNNER",
    "ValidationReport",
    "compare",
    "contrast_design",
    "fit_calibration",
    "gap_beyond_noise",
    "get_device",
    "import_measurements",
    "list_devices",
    "make_bundle",
    "normalise",
    "reference_module",
    "read_manifest",
    "reference_spec",
    "register_device",
    "speed_factor",
    "statistic_of",
    "transform_layers",
    "validate",
]
