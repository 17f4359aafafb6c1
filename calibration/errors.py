"""The one error type of the calibration package."""

from __future__ import annotations


class CalibrationError(ValueError):
    """Bad calibration input or an unusable result; the message names the file and field where known."""
