"""N-point ("9-point") calibration: the robot touches N >= 4 marks the camera sees; fit pixel -> robot XY.

The fixed-camera shortcut: no intrinsics, no hand-eye, valid on the one plane where the marks were
(an affine map ignores perspective and lens distortion; a homography models perspective, not
distortion). Residuals per point and leave-one-out error tell how good the shortcut is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import CalibrationError
from .jsonio import array_field, read_json, write_json

NPOINT_FORMAT = "holevision.npoint"
NPOINT_VERSION = 1
NPOINT_MODELS = {"affine": 3, "homography": 4}  # model -> minimum points
MIN_POINTS = 4


def _fit_matrix(uv: np.ndarray, xy: np.ndarray, model: str) -> np.ndarray:
    if model == "affine":
        M = np.concatenate([uv, np.ones((len(uv), 1))], axis=1)
        coef, *_ = np.linalg.lstsq(M, xy, rcond=None)
        return np.vstack([coef.T, [0.0, 0.0, 1.0]])
    H, _ = cv2.findHomography(uv.astype(np.float64), xy.astype(np.float64), 0)
    if H is None:
        raise CalibrationError("homography fit failed (points collinear?)")
    return H / H[2, 2]


def apply_matrix(H: np.ndarray, uv: np.ndarray) -> np.ndarray:
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    p = np.concatenate([uv, np.ones((len(uv), 1))], axis=1) @ H.T
    return p[:, :2] / p[:, 2:3]


@dataclass
class NPointCalibration:
    model: str
    H_robot_pixel: np.ndarray           # (3, 3) pixel (u, v, 1) -> robot (x, y, 1) mm
    residuals_mm: np.ndarray            # (N,) per touch point
    loo_rms_mm: float | None            # leave-one-out RMS, mm (None when too few points)
    z_mm: float | None = None           # robot Z of the plane (mean of the touch points' z), if given
    warnings: list[str] = field(default_factory=list)

    @property
    def rms_mm(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_mm ** 2)))

    def pixel_to_robot_xy(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> robot XY (N, 2), mm."""
        return apply_matrix(self.H_robot_pixel, uv)

    def save(self, path: str | Path) -> None:
        write_json(path, NPOINT_FORMAT, NPOINT_VERSION, {
            "model": self.model, "H_robot_pixel": self.H_robot_pixel, "z_mm": self.z_mm,
            "residual_rms_mm": self.rms_mm, "residual_max_mm": float(self.residuals_mm.max()),
            "residuals_mm": self.residuals_mm, "leave_one_out_rms_mm": self.loo_rms_mm, "warnings": self.warnings})

    @classmethod
    def load(cls, path: str | Path) -> "NPointCalibration":
        doc = read_json(path, NPOINT_FORMAT, NPOINT_VERSION)
        if doc.get("model") not in NPOINT_MODELS:
            raise CalibrationError(f"{path}: field 'model' must be one of {list(NPOINT_MODELS)}, got {doc.get('model')!r}")
        H = array_field(doc, "H_robot_pixel", (3, 3), str(path))
        res = array_field(doc, "residuals_mm", (None,), str(path))
        return cls(model=doc["model"], H_robot_pixel=H, residuals_mm=res, loo_rms_mm=doc.get("leave_one_out_rms_mm"),
                   z_mm=doc.get("z_mm"), warnings=list(doc.get("warnings", [])))


def fit_npoint(uv: np.ndarray, xy: np.ndarray, model: str = "affine", z_mm: float | None = None) -> NPointCalibration:
    """Fit pixel -> robot XY from N >= 4 correspondences; per-point residuals and leave-one-out error."""
    if model not in NPOINT_MODELS:
        raise CalibrationError(f"n-point model must be one of {', '.join(NPOINT_MODELS)}, got {model!r}")
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(uv) != len(xy):
        raise CalibrationError(f"{len(uv)} pixel points but {len(xy)} robot points")
    if len(uv) < MIN_POINTS:
        raise CalibrationError(f"n-point calibration needs at least {MIN_POINTS} points (9 recommended), got {len(uv)}")
    H = _fit_matrix(uv, xy, model)
    residuals = np.linalg.norm(apply_matrix(H, uv) - xy, axis=1)
    warnings = []
    minimum = NPOINT_MODELS[model]
    loo = None
    if len(uv) > minimum:
        errs = [np.linalg.norm(apply_matrix(_fit_matrix(np.delete(uv, i, 0), np.delete(xy, i, 0), model), uv[i]) - xy[i])
                for i in range(len(uv))]
        loo = float(np.sqrt(np.mean(np.square(errs))))
    if len(uv) <= minimum + 1:
        warnings.append(f"{len(uv)} points for a {model} ({minimum} determine it): the residuals say little; use 9 or more")
    return NPointCalibration(model=model, H_robot_pixel=H, residuals_mm=residuals, loo_rms_mm=loo, z_mm=z_mm,
                             warnings=warnings)


def read_npoint_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    """CSV with header ``u,v,x,y`` (pixels; robot mm) and optional ``z``; returns uv, xy, mean z."""
    path = Path(path)
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines(), skipinitialspace=True)
                if r and not r[0].lstrip().startswith("#")]
    except FileNotFoundError:
        raise CalibrationError(f"{path}: file not found") from None
    if not rows:
        raise CalibrationError(f"{path}: empty file; need a header u,v,x,y[,z] and one touch point per line")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("u", "v", "x", "y") if c not in header]
    if missing:
        raise CalibrationError(f"{path}: header lacks column(s) {missing}; expected u,v,x,y[,z], got {header}")
    cols = [header.index(c) for c in ("u", "v", "x", "y")] + ([header.index("z")] if "z" in header else [])
    try:
        data = np.array([[float(r[c]) for c in cols] for r in rows[1:]])
    except (ValueError, IndexError):
        raise CalibrationError(f"{path}: every line needs numbers in columns u, v, x, y") from None
    if data.size == 0:
        raise CalibrationError(f"{path}: no points after the header")
    z = float(data[:, 4].mean()) if data.shape[1] == 5 else None
    return data[:, :2], data[:, 2:4], z
