"""Hardware: devices, a robust profiler and latency lookup tables.

Public API::

    from hardware import get_device, Profiler, LatencyTable, validate

    device = get_device("cpu", threads=1)
    table = LatencyTable.build(space, device, input_shape=(3, 128, 128), rng=0)
    table.predict(archs)            # ms, vectorised over architectures
    validate(table, n=100, repeats=2).plot("lut.png")  # also reports the noise ceiling

Tables are built with a reference network timed in every round-robin group
(``reference_module``), so their latencies are in ms at build-time machine speed
and ``validate`` measures on that scale (see ``hardware/_reference.py``).
"""

from hardware._calibration import fit_calibration
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
from hardware._profiler import Measurement, Profiler, statistic_of
from hardware._reference import normalise, reference_module, reference_spec, speed_factor
from hardware._table import LatencyTable
from hardware._validate import ValidationReport, compare, validate
from hardware.errors import HardwareError, MissingEntriesError, TableMismatchError

__all__ = [
    "DEVICES",
    "CPUDevice",
    "CUDADevice",
    "Device",
    "HardwareError",
    "LatencyTable",
    "Measurement",
    "MissingEntriesError",
    "OnnxRuntimeDevice",
    "Profiler",
    "Runner",
    "TableMismatchError",
    "ValidationReport",
    "compare",
    "fit_calibration",
    "get_device",
    "list_devices",
    "normalise",
    "reference_module",
    "reference_spec",
    "register_device",
    "speed_factor",
    "statistic_of",
    "validate",
]
