"""Synthetic devices: known, device-specific latency functions for tests and benches."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from predictors._latency.features import LayerFeaturizer
from search_spaces import as_generator, list_ops

__all__ = ["SyntheticDevice"]


class SyntheticDevice:
    """A made-up device whose layer latency follows a roofline with per-op efficiency.

    Layer latency (ms) = ``max(flops / compute[op], elements / bandwidth) + launch``,
    and an architecture's latency is the sum plus a fixed overhead, times
    log-normal noise in :meth:`measure`. Devices drawn with different seeds
    share a family resemblance (the same base efficiencies, perturbed), as real
    CPUs, GPUs and runtimes do, so one device informs another without equalling it.

    Args:
        seed: identity of the device.
        space: search space whose ``layers`` lists each architecture's layers.
        input_shape, num_classes: shapes the "device" runs.
        noise: log-normal sigma of measurements.
        spread: how much this device departs from the family's base efficiencies.
    """

    def __init__(self, seed: int, space: Any, input_shape: Sequence[int] | None = None,
                 num_classes: int | None = None, noise: float = 0.03, spread: float = 0.6) -> None:
        rng = np.random.default_rng(seed)
        # per op: a family-wide base efficiency and this device's departure from it,
        # both keyed by the op's name so registering more ops changes nothing here
        self.compute = {}
        for op in list_ops():
            tag = zlib.crc32(op.encode())
            family = np.random.default_rng([12345, tag]).lognormal(0.0, 0.5)
            own = np.random.default_rng([seed, tag]).lognormal(0.0, spread)
            self.compute[op] = 2e3 * family * own
        self.bandwidth = 50.0 * rng.lognormal(0.0, spread)  # M elements per ms
        self.launch_ms = 0.005 * rng.lognormal(0.0, spread)
        self.overhead_ms = 0.05 * rng.lognormal(0.0, spread)
        self.space, self.noise, self.seed = space, float(noise), int(seed)
        self.input_shape = tuple(input_shape) if input_shape is not None else tuple(space.input_shape)
        self.num_classes = int(num_classes or space.num_classes)

    def layer_ms(self, spec) -> float:
        flops, _, n_in, n_out = LayerFeaturizer.raw(spec)
        compute = flops / 1e6 / self.compute.get(spec.op, 1e3) * 1e3  # MFLOP / (MFLOP per s) in ms
        memory = (n_in + n_out) / 1e6 / self.bandwidth
        return max(compute, memory) + self.launch_ms

    def predict(self, archs: Sequence[Any]) -> np.ndarray:
        """Noise-free latency (ms) of each architecture."""
        return np.array([sum(self.layer_ms(s) for s in
                             self.space.layers(a, self.input_shape, self.num_classes)) + self.overhead_ms
                         for a in archs])

    def measure(self, archs: Sequence[Any], rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Noisy "measurements" (ms) of each architecture."""
        gen = as_generator(rng)
        truth = self.predict(archs)
        return truth * gen.lognormal(0.0, self.noise, truth.size)
