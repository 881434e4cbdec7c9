"""Exceptions of the predictors package."""

from __future__ import annotations

__all__ = ["PredictorError"]


class PredictorError(ValueError):
    """Bad use of a predictor: unknown name, unfitted model, mismatched data or file."""
