"""Pixel -> robot base frame: undistort -> camera ray -> work plane -> base frame via hand-eye.

Eye-to-hand (fixed camera): ``T_base_cam`` from hand-eye. Eye-in-hand: ``T_base_cam = T_base_flange @
T_flange_cam`` with the robot pose at capture; the work plane is then fixed in the base frame.

Perspective and hole centers: a circle on a tilted plane images as an ellipse whose center is NOT the
image of the circle's center. ``pixel_to_base`` maps a pixel exactly; for a detected hole ellipse use
``ellipse_to_base``, which back-projects the ellipse's outline onto the plane and fits the circle there,
so the center and diameter come out free of that bias. ``projected_circle_center`` gives the size of the
effect: seen from 300 mm with fx 3000 px (~0.1 mm/px) on a plane tilted 30 degrees, the ellipse center
of a 5 mm hole is 0.09 px (0.01 mm) off, of a 10 mm hole 0.35 px (0.04 mm), of a 20 mm hole 1.4 px
(0.16 mm): it grows with radius^2 and with the tilt, and is zero for a plane facing the camera
(test_chain.py checks these figures).
"""

from __future__ import annotations

import numba
import numpy as np

from .camera import CameraModel
from .errors import CalibrationError
from .plane import Plane
from .transforms import invert_transform, transform_points, transform_vectors

ELLIPSE_SAMPLES = 72


def _uv_array(u, v) -> np.ndarray:
    u = np.atleast_1d(np.asarray(u, dtype=np.float64))
    v = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if u.shape != v.shape or u.ndim != 1:
        raise CalibrationError(f"u and v must be scalars or 1-D arrays of equal length, got {u.shape} and {v.shape}")
    return np.stack([u, v], axis=1)


def pixel_to_cam(uv: np.ndarray, camera: CameraModel, plane_cam: Plane) -> np.ndarray:
    """Pixels (N, 2) -> points on the work plane in the camera frame (N, 3), mm."""
    return plane_cam.intersect_rays(np.zeros(3), camera.rays(uv))


def pixel_to_base(u, v, camera: CameraModel, plane_cam: Plane, T_base_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel(s) -> (points_base (N, 3) mm, approach_base (N, 3) unit: into the surface, = -plane normal)."""
    p_cam = pixel_to_cam(_uv_array(u, v), camera, plane_cam)
    points_base = transform_points(T_base_cam, p_cam)
    approach_base = np.broadcast_to(transform_vectors(T_base_cam, -plane_cam.normal), points_base.shape).copy()
    return points_base, approach_base


def pixel_to_base_eye_in_hand(u, v, camera: CameraModel, plane_base: Plane, T_base_flange: np.ndarray,
                              T_flange_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eye-in-hand form: the robot pose at capture and the camera's hand-eye; plane fixed in the base frame."""
    T_base_cam = T_base_flange @ T_flange_cam
    return pixel_to_base(u, v, camera, plane_base.transformed(invert_transform(T_base_cam)), T_base_cam)


def ellipse_outline(centers: np.ndarray, axes: np.ndarray, angles_deg: np.ndarray, samples: int = ELLIPSE_SAMPLES) -> np.ndarray:
    """(N, samples, 2) points on image ellipses given by center, FULL axes (major, minor), angle (deg)."""
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    axes = np.asarray(axes, dtype=np.float64).reshape(-1, 2)
    a = np.radians(np.asarray(angles_deg, dtype=np.float64).reshape(-1))
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    x = 0.5 * axes[:, :1] * np.cos(t)
    y = 0.5 * axes[:, 1:] * np.sin(t)
    c, s = np.cos(a)[:, None], np.sin(a)[:, None]
    return np.stack([centers[:, :1] + c * x - s * y, centers[:, 1:] + s * x + c * y], axis=-1)


def fit_circles_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Algebraic (Kasa) circle fits of (N, M, 2) point sets at once -> (centers (N, 2), radii (N,)).

    Exact for points on a circle. Each set is centred on its mean (conditioning), then the 3x3 normal
    equations of ``2 q . c + k = |q|^2`` are solved (compiled, one loop over the sets).
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    centers, radii = np.empty((len(points), 2)), np.empty(len(points))
    _fit_circles(points, centers, radii)
    return centers, radii


@numba.njit(cache=True, nogil=True)
def _fit_circles(points, centers, radii):
    for i in range(len(points)):
        centers[i, 0], centers[i, 1], radii[i] = _kasa_circle(points[i])


@numba.njit(cache=True, nogil=True)
def _kasa_circle(points):
    """(cx, cy, r) of the Kasa fit to (M, 2) points (see fit_circles_2d)."""
    m = len(points)
    mean_x, mean_y = points[:, 0].mean(), points[:, 1].mean()
    normal = np.zeros((3, 3))
    rhs = np.zeros(3)
    for j in range(m):
        qx, qy = points[j, 0] - mean_x, points[j, 1] - mean_y
        row = (2 * qx, 2 * qy, 1.0)
        target = qx * qx + qy * qy
        for a in range(3):
            rhs[a] += row[a] * target
            for b in range(3):
                normal[a, b] += row[a] * row[b]
    solution = np.linalg.solve(normal, rhs)
    cx, cy = solution[0], solution[1]
    return cx + mean_x, cy + mean_y, np.sqrt(solution[2] + cx * cx + cy * cy)


@numba.njit(cache=True, nogil=True)
def _circles_on_plane(xy, point, normal, basis, centers_cam, diameters, ok):
    """Back-project each hole's outline (F, M, 2 normalized image coordinates x/z, y/z) onto the plane
    (``point``, unit ``normal``, in-plane ``basis`` (2, 3), camera frame) and fit a circle there:
    centers_cam (F, 3) mm, diameters (F,) mm; ``ok`` False where a ray misses the plane (parallel, or
    meeting it behind the camera)."""
    f, m = xy.shape[0], xy.shape[1]
    plane_offset = point[0] * normal[0] + point[1] * normal[1] + point[2] * normal[2]
    in_plane = np.empty((m, 2))
    for i in range(f):
        ok[i] = True
        for j in range(m):
            # The unit ray through the pixel, and where it meets the plane.
            length = np.sqrt(xy[i, j, 0] ** 2 + xy[i, j, 1] ** 2 + 1.0)
            dx, dy, dz = xy[i, j, 0] / length, xy[i, j, 1] / length, 1.0 / length
            denom = dx * normal[0] + dy * normal[1] + dz * normal[2]
            s = plane_offset / denom if abs(denom) >= 1e-9 else np.nan
            if not (s > 0 and np.isfinite(s)):
                ok[i] = False
                break
            px, py, pz = s * dx - point[0], s * dy - point[1], s * dz - point[2]
            in_plane[j, 0] = px * basis[0, 0] + py * basis[0, 1] + pz * basis[0, 2]
            in_plane[j, 1] = px * basis[1, 0] + py * basis[1, 1] + pz * basis[1, 2]
        if not ok[i]:
            continue
        cx, cy, r = _kasa_circle(in_plane)
        for a in range(3):
            centers_cam[i, a] = point[a] + cx * basis[0, a] + cy * basis[1, a]
        diameters[i] = 2 * r


def ellipse_to_cam(centers, axes, angles_deg, camera: CameraModel, plane_cam: Plane) -> tuple[np.ndarray, np.ndarray]:
    """Hole ellipses in the image -> (circle centers on the plane (N, 3) mm, diameters (N,) mm), camera frame.

    Back-projects each ellipse's outline onto the plane and fits a circle there: the center is the true
    hole center (no perspective bias) and the diameter is metric. A hole without usable axes (NaN or
    <= 0) gets its center ray's plane point and a NaN diameter; a hole whose outline misses the plane
    (or NaN center) gets NaN; one bad hole never fails the others.
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    axes = np.asarray(axes, dtype=np.float64).reshape(-1, 2)
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    n = len(centers)
    centers_cam, diameters = np.full((n, 3), np.nan), np.full(n, np.nan)
    if n == 0:
        return centers_cam, diameters
    has_center = np.all(np.isfinite(centers), axis=1)
    fit = has_center & np.all(np.isfinite(axes) & (axes > 0), axis=1) & np.isfinite(angles)
    if fit.any():
        outline = ellipse_outline(centers[fit], axes[fit], angles[fit])
        xy = camera.normalize(outline.reshape(-1, 2)).reshape(outline.shape)
        rows = np.flatnonzero(fit)
        fit_centers, fit_diameters, finite = np.full((len(rows), 3), np.nan), np.full(len(rows), np.nan), \
            np.empty(len(rows), dtype=bool)
        _circles_on_plane(np.ascontiguousarray(xy), plane_cam.point, plane_cam.normal, plane_cam.basis(),
                          fit_centers, fit_diameters, finite)
        centers_cam[rows], diameters[rows] = fit_centers, fit_diameters
        fit[rows[~finite]] = False                 # its outline misses the plane: NaN
        has_center[rows[~finite]] = False
    # The rest: the center ray's plane point (holes with no usable axes).
    ray_only = has_center & ~fit
    if ray_only.any():
        centers_cam[ray_only] = plane_cam.intersect_rays(np.zeros(3), camera.rays(centers[ray_only]), strict=False)
    return centers_cam, diameters


def warm_up_geometry() -> None:
    """Compile (first run after install, a few seconds) or load the compiled back-projection kernels,
    so that the first frame does not wait for them."""
    camera = CameraModel(K=np.array([[1000.0, 0, 320], [0, 1000, 240], [0, 0, 1]]), dist=np.zeros(5),
                         image_size=(640, 480))
    ellipse_to_cam(np.array([[320.0, 240.0]]), np.array([[20.0, 18.0]]), np.array([30.0]), camera,
                   Plane(np.array([0.0, 0, 500]), np.array([0.0, 0.2, -1])))


def ellipse_to_base(centers, axes, angles_deg, camera: CameraModel, plane_cam: Plane,
                    T_base_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hole ellipses -> (points_base (N, 3) mm, approach_base (N, 3), diameters_mm (N,)), perspective-exact."""
    p_cam, diameters = ellipse_to_cam(centers, axes, angles_deg, camera, plane_cam)
    points_base = transform_points(T_base_cam, p_cam)
    approach = np.broadcast_to(transform_vectors(T_base_cam, -plane_cam.normal), points_base.shape).copy()
    return points_base, approach, diameters


def diameters_to_mm(centers, diameters_px, camera: CameraModel, plane_cam: Plane) -> np.ndarray:
    """Equivalent-circle diameters (px) -> mm at each hole's plane point (local scale; use ellipse_to_cam when
    the axes and angle are known, which is exact under tilt)."""
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(diameters_px, dtype=np.float64).reshape(-1)
    half = np.stack([d / 2, np.zeros_like(d)], axis=1)
    pu = pixel_to_cam(np.concatenate([centers - half, centers + half]), camera, plane_cam)
    half = half[:, ::-1]
    pv = pixel_to_cam(np.concatenate([centers - half, centers + half]), camera, plane_cam)
    n = len(d)
    du = np.linalg.norm(pu[n:] - pu[:n], axis=1)
    dv = np.linalg.norm(pv[n:] - pv[:n], axis=1)
    return np.sqrt(du * dv)


def _fit_conic_center(uv: np.ndarray) -> np.ndarray:
    mean, scale = uv.mean(axis=0), uv.std()
    x, y = ((uv - mean) / scale).T
    M = np.stack([x * x, x * y, y * y, x, y, np.ones_like(x)], axis=1)
    a, b, c, d, e, _ = np.linalg.svd(M)[2][-1]
    center = np.linalg.solve([[2 * a, b], [b, 2 * c]], [-d, -e])
    return center * scale + mean


def projected_circle_center(center_cam: np.ndarray, normal_cam: np.ndarray, radius_mm: float,
                            camera: CameraModel, samples: int = 360) -> np.ndarray:
    """Image center (u, v) of the ellipse that a circle (center, normal, radius; camera frame, mm) projects to."""
    plane = Plane(center_cam, normal_cam)
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    e1, e2 = plane.basis()
    circle = plane.point + radius_mm * (np.cos(t)[:, None] * e1 + np.sin(t)[:, None] * e2)
    return _fit_conic_center(camera.project(circle))


def circle_center_offset_px(center_cam, normal_cam, radius_mm, camera: CameraModel) -> np.ndarray:
    """Projected ellipse center minus the projected circle center (px): the perspective bias of a hole center."""
    return projected_circle_center(center_cam, normal_cam, radius_mm, camera) - camera.project(center_cam)[0]


def ellipse_to_base_eye_in_hand(centers, axes, angles_deg, camera: CameraModel, plane_base: Plane,
                                T_base_flange: np.ndarray, T_flange_cam: np.ndarray
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eye-in-hand form of ``ellipse_to_base``: robot pose at capture, hand-eye, plane fixed in the base frame."""
    T_base_cam = T_base_flange @ T_flange_cam
    return ellipse_to_base(centers, axes, angles_deg, camera, plane_base.transformed(invert_transform(T_base_cam)),
                           T_base_cam)
