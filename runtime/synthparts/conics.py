"""Conics: circles under homographies, ellipse parameters, and anti-aliased coverage of a conic.

A conic is a symmetric 3x3 matrix ``Q`` with ``p~^T Q p~ = 0`` on the curve (``p~ = (u, v, 1)``).
We keep ellipses normalized so that the inside is negative. Pure numpy; pixel centers at integers.

The image of a circle under a homography is an ellipse whose center is NOT the image of the circle's
center: ``ellipse_from_conic(conic_of_circle_under(H, ...))`` gives the exact ellipse.
"""

from __future__ import annotations

import math

import numpy as np


class ConicError(ValueError):
    """A conic is not a real, non-degenerate ellipse."""


def circle_conic(center_xy: tuple[float, float], radius: float) -> np.ndarray:
    """Conic of the circle |p - c| = r in its own plane coordinates (inside negative)."""
    x0, y0 = float(center_xy[0]), float(center_xy[1])
    return np.array([[1.0, 0.0, -x0],
                     [0.0, 1.0, -y0],
                     [-x0, -y0, x0 * x0 + y0 * y0 - float(radius) ** 2]])


def transform_conic(H_dst_src: np.ndarray, conic_src: np.ndarray) -> np.ndarray:
    """Map a conic through the homography ``H_dst_src`` (points p_dst ~ H p_src); inside stays negative."""
    H_inv = np.linalg.inv(np.asarray(H_dst_src, dtype=np.float64))
    conic = H_inv.T @ conic_src @ H_inv
    return normalize_ellipse_conic(conic)


def normalize_ellipse_conic(conic: np.ndarray) -> np.ndarray:
    """Scale a conic so that its quadratic part is positive definite and its value at the center is -1."""
    conic = 0.5 * (conic + conic.T)
    quad = conic[:2, :2]
    if np.linalg.det(quad) <= 0:
        raise ConicError(f"conic is not an ellipse (det of quadratic part {np.linalg.det(quad):.3g})")
    if np.trace(quad) < 0:
        conic = -conic
        quad = -quad
    center = -np.linalg.solve(conic[:2, :2], conic[:2, 2])
    value = conic[2, 2] + conic[:2, 2] @ center
    if value >= 0:
        raise ConicError("conic is an empty (imaginary) ellipse")
    return conic / -value


def ellipse_from_conic(conic: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Exact ``((u, v), (major, minor) full axes, angle_deg)`` of an ellipse conic.

    ``angle_deg`` is the major-axis direction from +u toward +v, in [0, 180).
    """
    conic = normalize_ellipse_conic(np.asarray(conic, dtype=np.float64))
    quad = conic[:2, :2]
    center = -np.linalg.solve(quad, conic[:2, 2])
    eigvals, eigvecs = np.linalg.eigh(quad)  # ascending: smallest eigenvalue = major axis
    semi = 1.0 / np.sqrt(eigvals)          # value at center is -1 after normalization
    major_dir = eigvecs[:, 0]
    angle = math.degrees(math.atan2(major_dir[1], major_dir[0])) % 180.0
    return (float(center[0]), float(center[1])), (float(2 * semi[0]), float(2 * semi[1])), angle


def conic_from_ellipse(center: tuple[float, float], axes: tuple[float, float], angle_deg: float) -> np.ndarray:
    """Conic of the ellipse with full ``axes`` (major, minor) and major-axis ``angle_deg`` (inside negative)."""
    a, b = float(axes[0]) / 2.0, float(axes[1]) / 2.0
    if not (a > 0 and b > 0):
        raise ConicError(f"ellipse axes must be positive, got {axes}")
    t = math.radians(angle_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    quad = rot @ np.diag([1.0 / (a * a), 1.0 / (b * b)]) @ rot.T
    c = np.asarray(center, dtype=np.float64)
    conic = np.empty((3, 3))
    conic[:2, :2] = quad
    conic[:2, 2] = conic[2, :2] = -quad @ c
    conic[2, 2] = c @ quad @ c - 1.0
    return conic


def ellipse_bbox(center, axes, angle_deg) -> tuple[float, float, float, float]:
    """Axis-aligned bounds (u0, v0, u1, v1) of an ellipse."""
    a, b = axes[0] / 2.0, axes[1] / 2.0
    t = math.radians(angle_deg)
    du = math.sqrt((a * math.cos(t)) ** 2 + (b * math.sin(t)) ** 2)
    dv = math.sqrt((a * math.sin(t)) ** 2 + (b * math.cos(t)) ** 2)
    return center[0] - du, center[1] - dv, center[0] + du, center[1] + dv


def conic_signed_distance(conic: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """First-order signed distance in px from pixel centers (u, v) to the conic (negative inside)."""
    q = conic.astype(np.float64)
    gu = q[0, 0] * u + q[0, 1] * v + q[0, 2]
    gv = q[1, 0] * u + q[1, 1] * v + q[1, 2]
    value = u * gu + v * gv + (q[2, 0] * u + q[2, 1] * v + q[2, 2])
    grad = 2.0 * np.sqrt(gu * gu + gv * gv)
    return value / np.maximum(grad, 1e-12)


def conic_coverage(conic: np.ndarray, u: np.ndarray, v: np.ndarray, supersample: int = 4) -> np.ndarray:
    """Fraction of each pixel (unit box around its center) that lies inside the ellipse, float32.

    Pixels near the edge are supersampled ``supersample`` x ``supersample`` times, each sub-sample
    using a linear coverage ramp; this makes the intensity centroid of a plain disc agree with the
    exact ellipse center to ~1e-3 px.
    """
    dist = conic_signed_distance(conic, u, v)
    coverage = np.clip(0.5 - dist, 0.0, 1.0)
    edge = np.abs(dist) < 1.0
    if supersample > 1 and edge.any():
        ue, ve = u[edge], v[edge]
        offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
        acc = np.zeros(ue.shape, dtype=np.float64)
        for dv in offsets:
            for du in offsets:
                d = conic_signed_distance(conic, ue + du, ve + dv) * supersample
                acc += np.clip(0.5 - d, 0.0, 1.0)
        coverage[edge] = acc / (supersample * supersample)
    return coverage.astype(np.float32)
