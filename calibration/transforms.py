"""Rigid transforms as 4x4 numpy arrays, translation in millimetres.

Names carry frames: ``T_a_b`` maps coordinates expressed in frame ``b`` into frame ``a``, so
``p_a = transform_points(T_a_b, p_b)`` and ``T_a_c = T_a_b @ T_b_c``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from .errors import CalibrationError


def check_transform(T: np.ndarray, name: str = "T") -> np.ndarray:
    """Return ``T`` as a float 4x4 rigid transform or raise naming the problem."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise CalibrationError(f"{name} must be a 4x4 matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise CalibrationError(f"{name} contains NaN or infinite values")
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9):
        raise CalibrationError(f"{name} last row must be [0, 0, 0, 1], got {T[3].tolist()}")
    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise CalibrationError(f"{name} rotation part is not a proper rotation (R R^T != I or det < 0)")
    return T


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 from a 3x3 rotation and a translation (mm)."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert_transform(T_a_b: np.ndarray) -> np.ndarray:
    """``T_b_a`` from ``T_a_b`` (exact rigid inverse, no general matrix inversion)."""
    R, t = T_a_b[:3, :3], T_a_b[:3, 3]
    return make_transform(R.T, -R.T @ t)


def transform_points(T_a_b: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """Map points (N, 3) or (3,) from frame b to frame a."""
    p_b = np.asarray(p_b, dtype=np.float64)
    if p_b.shape[-1] != 3:
        raise CalibrationError(f"points must have shape (N, 3) or (3,), got {p_b.shape}")
    return p_b @ T_a_b[:3, :3].T + T_a_b[:3, 3]


def transform_vectors(T_a_b: np.ndarray, v_b: np.ndarray) -> np.ndarray:
    """Map direction vectors (N, 3) or (3,) from frame b to frame a (rotation only)."""
    v_b = np.asarray(v_b, dtype=np.float64)
    if v_b.shape[-1] != 3:
        raise CalibrationError(f"vectors must have shape (N, 3) or (3,), got {v_b.shape}")
    return v_b @ T_a_b[:3, :3].T


def transform_from_rotvec(rotvec_rad: np.ndarray, t_mm: np.ndarray) -> np.ndarray:
    return make_transform(Rotation.from_rotvec(np.asarray(rotvec_rad, float)).as_matrix(), t_mm)


def rotvec_from_transform(T: np.ndarray) -> np.ndarray:
    return Rotation.from_matrix(T[:3, :3]).as_rotvec()


def rotation_angle_deg(R: np.ndarray) -> float:
    """Angle of a rotation matrix, degrees in [0, 180] (numerically safe near 0)."""
    return float(np.degrees(np.linalg.norm(Rotation.from_matrix(R).as_rotvec())))


def transform_difference(T_est: np.ndarray, T_ref: np.ndarray) -> tuple[float, float]:
    """(translation error mm, rotation error deg) between two transforms of the same frames."""
    dt = float(np.linalg.norm(T_est[:3, 3] - T_ref[:3, 3]))
    dr = rotation_angle_deg(T_est[:3, :3].T @ T_ref[:3, :3])
    return dt, dr


def mean_transform(Ts: np.ndarray) -> np.ndarray:
    """Chordal mean of rotations (SVD projection) and arithmetic mean of translations."""
    Ts = np.asarray(Ts, dtype=np.float64)
    U, _, Vt = np.linalg.svd(Ts[:, :3, :3].sum(axis=0))
    R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
    return make_transform(R, Ts[:, :3, 3].mean(axis=0))
