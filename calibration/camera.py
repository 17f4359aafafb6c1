"""CameraModel: pinhole + OpenCV distortion; project, undistort, camera rays; camera.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import CalibrationError
from .jsonio import array_field, read_json, write_json

CAMERA_FORMAT = "holevision.camera"
CAMERA_VERSION = 1
VALID_DISTORTION_LENGTHS = (0, 4, 5, 8, 12, 14)  # OpenCV's standard model variants
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)


@dataclass
class CameraModel:
    """Intrinsics of one camera. Pixel coordinates: u right, v down, pixel centers at integers."""

    K: np.ndarray                   # (3, 3) camera matrix, px
    dist: np.ndarray                # (D,) OpenCV distortion k1 k2 p1 p2 [k3 [k4 k5 k6 [s1..s4 [tx ty]]]]
    image_size: tuple[int, int]     # (width, height) px
    report: dict = field(default_factory=dict)  # how it was calibrated (RMS, views...), kept in camera.json

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64)
        self.dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if self.K.shape != (3, 3) or self.K[0, 0] <= 0 or self.K[1, 1] <= 0 or not np.allclose(self.K[2], [0, 0, 1]):
            raise CalibrationError(f"camera matrix K must be 3x3 [[fx,s,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0; got {self.K.tolist()}")
        if self.dist.size not in VALID_DISTORTION_LENGTHS:
            raise CalibrationError(f"distortion must have one of {VALID_DISTORTION_LENGTHS} coefficients, got {self.dist.size}")
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def project(self, p_cam: np.ndarray) -> np.ndarray:
        """Points in the camera frame (N, 3), any unit -> pixels (N, 2), with distortion."""
        p_cam = np.asarray(p_cam, dtype=np.float64).reshape(-1, 3)
        if np.any(p_cam[:, 2] <= 0):
            raise CalibrationError("cannot project points at or behind the camera (z <= 0)")
        uv, _ = cv2.projectPoints(p_cam, np.zeros(3), np.zeros(3), self.K, self.dist)
        return uv.reshape(-1, 2)

    def normalize(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> undistorted normalized coordinates (N, 2) (x/z, y/z), iterated to 1e-12."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 1, 2)
        if len(uv) == 0:
            return np.zeros((0, 2))
        if not np.any(self.dist):
            x = (uv[:, 0, 0] - self.cx - self.K[0, 1] * (uv[:, 0, 1] - self.cy) / self.fy) / self.fx
            return np.stack([x, (uv[:, 0, 1] - self.cy) / self.fy], axis=1)
        xy = cv2.undistortPointsIter(uv, self.K, self.dist, None, None, _UNDISTORT_CRITERIA)
        return xy.reshape(-1, 2)

    def undistort_points(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> pixels of the ideal (distortion-free) camera with the same K."""
        xy = self.normalize(uv)
        return xy @ self.K[:2, :2].T + self.K[:2, 2]

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) -> unit ray directions (N, 3) in the camera frame (z forward)."""
        xy = self.normalize(uv)
        d = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def undistort_image(self, image: np.ndarray) -> np.ndarray:
        """The image as the ideal camera (same K, no distortion) would see it."""
        return cv2.undistort(image, self.K, self.dist)

    # --- camera.json -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        write_json(path, CAMERA_FORMAT, CAMERA_VERSION, {
            "image_size": list(self.image_size), "K": self.K, "dist": self.dist, "report": self.report})

    @classmethod
    def load(cls, path: str | Path) -> "CameraModel":
        doc = read_json(path, CAMERA_FORMAT, CAMERA_VERSION)
        size = array_field(doc, "image_size", (2,), str(path))
        K = array_field(doc, "K", (3, 3), str(path))
        dist = array_field(doc, "dist", (None,), str(path))
        try:
            return cls(K=K, dist=dist, image_size=(int(size[0]), int(size[1])), report=doc.get("report", {}))
        except CalibrationError as exc:
            raise CalibrationError(f"{path}: {exc}") from None
