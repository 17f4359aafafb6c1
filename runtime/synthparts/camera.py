"""A pinhole camera looking at a part lying in its own plane (z = 0, z up out of the top surface).

Part-frame points are in mm. ``T_cam_part`` maps part-frame points into the camera frame (x right,
y down, z forward). Holes go down into the part (z < 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def rotation_about(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues rotation matrix about a (not necessarily unit) axis."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle_rad) * k + (1 - math.cos(angle_rad)) * (k @ k)


@dataclass(frozen=True)
class PlaneCamera:
    """Intrinsics ``K`` and the pose ``T_cam_part`` (R, t) of the camera relative to the part plane."""

    K: np.ndarray
    R_cam_part: np.ndarray
    t_cam_part: np.ndarray

    @classmethod
    def looking_at(cls, *, K: np.ndarray, center_px: tuple[float, float], scale_px_per_mm: float,
                   rotation_deg: float, tilt_deg: float, tilt_axis_deg: float) -> "PlaneCamera":
        """Camera whose view puts the part origin at ``center_px`` with about ``scale_px_per_mm``.

        ``rotation_deg`` turns the part in its plane; the plane is tilted by ``tilt_deg`` about an axis
        in the image plane at ``tilt_axis_deg`` from +u.
        """
        focal = float(K[0, 0])
        distance = focal / scale_px_per_mm
        R_down = np.diag([1.0, -1.0, -1.0])  # camera above the part, looking down its -z
        R_inplane = rotation_about(np.array([0.0, 0.0, 1.0]), math.radians(rotation_deg))
        axis = np.array([math.cos(math.radians(tilt_axis_deg)), math.sin(math.radians(tilt_axis_deg)), 0.0])
        R_tilt = rotation_about(axis, math.radians(tilt_deg))
        R = R_tilt @ R_down @ R_inplane
        ray = np.linalg.solve(K, np.array([center_px[0], center_px[1], 1.0]))
        t = distance * ray / ray[2]
        return cls(K=np.asarray(K, dtype=np.float64), R_cam_part=R, t_cam_part=t)

    def H_img_plane(self, z_mm: float = 0.0) -> np.ndarray:
        """Homography from part-plane points (x, y) at height ``z_mm`` to pixels."""
        R, t = self.R_cam_part, self.t_cam_part
        return self.K @ np.column_stack([R[:, 0], R[:, 1], t + z_mm * R[:, 2]])

    @property
    def center_part(self) -> np.ndarray:
        """Camera center in the part frame, mm."""
        return -self.R_cam_part.T @ self.t_cam_part

    @property
    def M_raydir_part_px(self) -> np.ndarray:
        """Matrix that turns (u, v, 1) into a (unnormalized) ray direction in the part frame."""
        return self.R_cam_part.T @ np.linalg.inv(self.K)

    def project(self, points_part: np.ndarray) -> np.ndarray:
        """(N, 3) part-frame points -> (N, 2) pixels."""
        p_cam = np.asarray(points_part, dtype=np.float64) @ self.R_cam_part.T + self.t_cam_part
        uvw = p_cam @ self.K.T
        return uvw[:, :2] / uvw[:, 2:3]

    def plane_drift(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each pixel: where its ray crosses z = 0 (x0, y0) and its drift (dx, dy) per mm of depth.

        The ray reaches (x0 + z * dx, y0 + z * dy, z) for z < 0 (inside the part).
        """
        M = self.M_raydir_part_px
        dxr = M[0, 0] * u + M[0, 1] * v + M[0, 2]
        dyr = M[1, 0] * u + M[1, 1] * v + M[1, 2]
        dzr = M[2, 0] * u + M[2, 1] * v + M[2, 2]
        C = self.center_part
        s = -C[2] / dzr
        x0 = C[0] + s * dxr
        y0 = C[1] + s * dyr
        return x0, y0, dxr / dzr, dyr / dzr
