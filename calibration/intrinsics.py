"""Camera intrinsics from board views: cv2.calibrateCamera plus per-view errors and outlier-view rejection."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .boards import BoardDetection
from .camera import CameraModel
from .errors import CalibrationError

# Distortion models: name -> (OpenCV flags, description)
DISTORTION_MODELS = {
    "k2": (cv2.CALIB_FIX_K3, "k1 k2 p1 p2 (k3 fixed at 0): narrow and normal lenses"),
    "k3": (0, "k1 k2 p1 p2 k3: OpenCV's default, wide lenses"),
    "rational": (cv2.CALIB_RATIONAL_MODEL, "k1..k6 p1 p2: strong distortion"),
}
MIN_VIEWS = 3


@dataclass
class IntrinsicsResult:
    camera: CameraModel
    rms_px: float                                   # over all corners of the kept views (cv2's figure)
    per_view_rms_px: dict[str, float]               # kept views
    rejected: dict[str, str] = field(default_factory=dict)  # view name -> why
    flags: int = 0

    def summary(self) -> dict:
        return {"rms_px": self.rms_px, "views_used": len(self.per_view_rms_px),
                "per_view_rms_px": self.per_view_rms_px, "rejected_views": self.rejected, "opencv_flags": self.flags}


def calibration_flags(model: str = "k3", fix_aspect_ratio: bool = False, zero_tangent: bool = False,
                      fix_principal_point: bool = False) -> int:
    if model not in DISTORTION_MODELS:
        raise CalibrationError(f"unknown distortion model {model!r}; choose one of {', '.join(DISTORTION_MODELS)}")
    flags = DISTORTION_MODELS[model][0]
    if fix_aspect_ratio:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO
    if zero_tangent:
        flags |= cv2.CALIB_ZERO_TANGENT_DIST
    if fix_principal_point:
        flags |= cv2.CALIB_FIX_PRINCIPAL_POINT
    return flags


def _calibrate(views: dict[str, BoardDetection], image_size, flags):
    obj = [v.object_points.astype(np.float32) for v in views.values()]
    img = [v.image_points.astype(np.float32).reshape(-1, 1, 2) for v in views.values()]
    K0 = None
    if flags & cv2.CALIB_FIX_ASPECT_RATIO:
        K0 = np.eye(3)  # aspect ratio fx/fy = K0[0,0]/K0[1,1] = 1, as OpenCV's sample does
    rms, K, dist, _, _, _, _, per_view = cv2.calibrateCameraExtended(
        obj, img, image_size, K0, None, flags=flags)
    return float(rms), K, dist.reshape(-1), dict(zip(views, per_view.reshape(-1).astype(float)))


def calibrate_intrinsics(views: dict[str, BoardDetection | None], image_size: tuple[int, int], *,
                         flags: int = 0, reject_outliers: bool = True, outlier_factor: float = 3.0,
                         max_view_rms_px: float | None = None) -> IntrinsicsResult:
    """Calibrate from named board detections (None = board not found in that image).

    Outlier views: while the worst view's RMS exceeds ``outlier_factor`` x the median view RMS (or
    ``max_view_rms_px``), drop it and recalibrate (one at a time, keeping at least MIN_VIEWS).
    """
    rejected = {name: "board not found" for name, det in views.items() if det is None}
    kept = {name: det for name, det in views.items() if det is not None}
    if len(kept) < MIN_VIEWS:
        raise CalibrationError(f"need at least {MIN_VIEWS} images with the board found, got {len(kept)} "
                               f"of {len(views)}")
    while True:
        rms, K, dist, per_view = _calibrate(kept, image_size, flags)
        if not reject_outliers or len(kept) <= MIN_VIEWS:
            break
        median = float(np.median(list(per_view.values())))
        limit = outlier_factor * median
        if max_view_rms_px is not None:
            limit = min(limit, max_view_rms_px)
        worst = max(per_view, key=per_view.get)
        if per_view[worst] <= limit:
            break
        rejected[worst] = f"view RMS {per_view[worst]:.3f} px > limit {limit:.3f} px"
        del kept[worst]
    camera = CameraModel(K=K, dist=dist, image_size=image_size)
    return IntrinsicsResult(camera=camera, rms_px=rms, per_view_rms_px=per_view, rejected=rejected, flags=flags)


def board_pose(camera: CameraModel, detection: BoardDetection) -> tuple[np.ndarray, float]:
    """``T_cam_board`` (4x4, mm) by PnP + Levenberg-Marquardt refinement, and its reprojection RMS (px)."""
    obj = detection.object_points.astype(np.float64)
    img = detection.image_points.astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, camera.K, camera.dist, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise CalibrationError("solvePnP failed for a board view")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera.K, camera.dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, camera.K, camera.dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.reshape(3)
    return T, rms
