"""Latency predictors (private implementation; import from ``predictors``)."""

from predictors._latency.features import LayerFeaturizer
from predictors._latency.fewshot import FewShotLatencyPredictor
from predictors._latency.layerwise import LayerwiseLatencyPredictor
from predictors._latency.measurements import MeasuredLatency, parse_arch, read_latency_measurements
from predictors._latency.synthetic import SyntheticDevice

__all__ = ["FewShotLatencyPredictor", "LayerFeaturizer", "LayerwiseLatencyPredictor", "MeasuredLatency",
           "SyntheticDevice", "parse_arch", "read_latency_measurements"]
