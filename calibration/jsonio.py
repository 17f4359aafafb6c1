"""Versioned JSON files of the calibration package: write, read, and field validation that names file + field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CalibrationError


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_json(path: str | Path, kind: str, version: int, body: dict) -> None:
    """Write ``{"format": kind, "version": version, **body}`` with numpy values made plain (NaN -> null)."""
    doc = {"format": kind, "version": version, **_plain(body)}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def read_json(path: str | Path, kind: str, version: int) -> dict:
    """Read a file written by ``write_json``; check its format name and version."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise CalibrationError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CalibrationError(f"{path}: expected a JSON object at the top level")
    if doc.get("format") != kind:
        raise CalibrationError(f"{path}: field 'format' is {doc.get('format')!r}, expected {kind!r}")
    if doc.get("version") != version:
        raise CalibrationError(f"{path}: field 'version' is {doc.get('version')!r}; this holevision reads "
                               f"version {version}")
    return doc


def array_field(doc: dict, field: str, shape: tuple[int | None, ...], source: str) -> np.ndarray:
    """``doc[field]`` as a float array of the given shape (None = any length); errors name file and field."""
    if field not in doc:
        raise CalibrationError(f"{source}: missing field {field!r}")
    try:
        value = np.asarray(doc[field], dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{source}: field {field!r} must be numbers") from None
    if value.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, value.shape)):
        raise CalibrationError(f"{source}: field {field!r} must have shape {shape}, got {value.shape}")
    if not np.all(np.isfinite(value)):
        raise CalibrationError(f"{source}: field {field!r} contains null/NaN values")
    return value
