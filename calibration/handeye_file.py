"""handeye.json: the hand-eye result under frame-named keys, with its residual figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CalibrationError
from .handeye import FRAME_NAMES, MODES, HandEyeResult
from .jsonio import array_field, read_json, write_json
from .transforms import check_transform

HANDEYE_FORMAT = "holevision.handeye"
HANDEYE_VERSION = 1


def save_handeye(path: str | Path, result: HandEyeResult, extra: dict | None = None) -> None:
    write_json(path, HANDEYE_FORMAT, HANDEYE_VERSION, {**result.summary(), **(extra or {})})


def load_handeye(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(mode, {frame-named key: 4x4}) from handeye.json, e.g. ("eye-to-hand", {"T_base_cam": ..., "T_flange_target": ...})."""
    doc = read_json(path, HANDEYE_FORMAT, HANDEYE_VERSION)
    mode = doc.get("mode")
    if mode not in MODES:
        raise CalibrationError(f"{path}: field 'mode' must be one of {list(MODES)}, got {mode!r}")
    out = {}
    for key in FRAME_NAMES[mode]:
        T = array_field(doc, key, (4, 4), str(path))
        try:
            out[key] = check_transform(T, key)
        except CalibrationError as exc:
            raise CalibrationError(f"{path}: field {key!r}: {exc}") from None
    return mode, out
