"""The work plane: where holes lie. From a board lying on the work surface, with a thickness offset.

A ``Plane`` is a point and a unit normal in some frame (the name of the variable says which:
``plane_cam``, ``plane_base``). The normal points out of the work surface, toward the camera side;
a tool approaches along ``-normal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CalibrationError
from .jsonio import array_field, read_json, write_json
from .transforms import transform_points, transform_vectors

PLANE_FORMAT = "holevision.plane"
PLANE_VERSION = 1


@dataclass(frozen=True)
class Plane:
    point: np.ndarray     # (3,) mm, a point on the plane
    normal: np.ndarray    # (3,) unit, out of the surface (toward the camera side)

    def __post_init__(self) -> None:
        point = np.asarray(self.point, dtype=np.float64).reshape(3)
        normal = np.asarray(self.normal, dtype=np.float64).reshape(3)
        length = np.linalg.norm(normal)
        if not np.isfinite(length) or length < 1e-9 or not np.all(np.isfinite(point)):
            raise CalibrationError(f"plane needs a finite point and a non-zero normal, got {point}, {normal}")
        object.__setattr__(self, "point", point)
        object.__setattr__(self, "normal", normal / length)

    def transformed(self, T_a_b: np.ndarray) -> "Plane":
        """This plane (given in frame b) expressed in frame a."""
        return Plane(transform_points(T_a_b, self.point), transform_vectors(T_a_b, self.normal))

    def offset(self, distance_mm: float) -> "Plane":
        """The parallel plane ``distance_mm`` along the normal (positive: toward the camera side)."""
        return Plane(self.point + distance_mm * self.normal, self.normal)

    def signed_distance(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, dtype=np.float64) - self.point) @ self.normal

    def intersect_rays(self, origins: np.ndarray, directions: np.ndarray, strict: bool = True) -> np.ndarray:
        """Where rays ``origin + s * direction`` (s > 0) meet the plane; (N, 3). Rays parallel to the plane
        or meeting it behind their origin raise (``strict``) or give NaN rows (``strict=False``)."""
        origins = np.broadcast_to(np.asarray(origins, dtype=np.float64), np.shape(directions))
        directions = np.asarray(directions, dtype=np.float64)
        denom = directions @ self.normal
        parallel = np.abs(denom) < 1e-9
        if strict and np.any(parallel):
            raise CalibrationError("a camera ray is parallel to the work plane")
        with np.errstate(divide="ignore", invalid="ignore"):
            s = ((self.point - origins) @ self.normal) / np.where(parallel, np.nan, denom)
        behind = s <= 0
        if strict and np.any(behind):
            raise CalibrationError("the work plane is behind the camera for some pixels; check plane and hand-eye")
        s = np.where(behind, np.nan, s)
        return origins + s[:, None] * directions

    def basis(self) -> np.ndarray:
        """(2, 3) two orthonormal in-plane directions."""
        helper = np.eye(3)[int(np.argmin(np.abs(self.normal)))]
        e1 = _cross(self.normal, helper)
        e1 /= np.linalg.norm(e1)
        return np.stack([e1, _cross(self.normal, e1)])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b of two 3-vectors (np.cross's arithmetic; np.cross itself costs ~15 us of argument handling
    per call, and the geometry step runs every frame)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def plane_from_board_pose(T_cam_board: np.ndarray, thickness_mm: float = 0.0,
                          board_thickness_mm: float = 0.0) -> Plane:
    """Work plane in the camera frame from the pose of a board lying on the work surface.

    The board frame's z axis points into the board (OpenCV's convention), so the surface normal toward
    the camera is -z. ``thickness_mm``: height of the part's top face above the work surface (the holes'
    plane moves toward the camera); ``board_thickness_mm``: the board's own thickness (the work surface
    lies that far below the printed face).
    """
    normal = -T_cam_board[:3, 2]
    if normal @ (-T_cam_board[:3, 3]) < 0:  # make it face the camera whichever way the board frame was set up
        normal = -normal
    return Plane(T_cam_board[:3, 3], normal).offset(thickness_mm - board_thickness_mm)


def save_plane(path: str | Path, plane_cam: Plane, plane_base: Plane | None = None, report: dict | None = None) -> None:
    body = {"plane_cam": {"point_mm": plane_cam.point, "normal": plane_cam.normal}}
    if plane_base is not None:
        body["plane_base"] = {"point_mm": plane_base.point, "normal": plane_base.normal}
    body["report"] = report or {}
    write_json(path, PLANE_FORMAT, PLANE_VERSION, body)


def load_plane(path: str | Path, frame: str = "cam") -> Plane:
    """Read ``plane_cam`` or ``plane_base`` from plane.json; errors name the file and field."""
    doc = read_json(path, PLANE_FORMAT, PLANE_VERSION)
    key = f"plane_{frame}"
    if not isinstance(doc.get(key), dict):
        raise CalibrationError(f"{path}: missing field {key!r}"
                               + (" (write it with --handeye when calibrating the plane)" if frame == "base" else ""))
    point = array_field(doc[key], "point_mm", (3,), f"{path}: {key}")
    normal = array_field(doc[key], "normal", (3,), f"{path}: {key}")
    try:
        return Plane(point, normal)
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: {key}: {exc}") from None
