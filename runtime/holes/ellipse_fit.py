"""Robust ellipse and circle fits to edge points, batched over many holes at once.

Points come as (N, K, 2) arrays (N holes, K edge points each) with an (N, K) weight mask, so that 50
holes are fitted with a handful of numpy calls instead of 50 Python loops.

The ellipse fit is the direct least-squares fit of Fitzgibbon, Pilu and Fisher (1999) in the
numerically stable form of Halir and Flusser (1998): it always returns an ellipse. Outliers are
rejected iteratively by their Sampson (first-order geometric) distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EllipseFit:
    """One fitted ellipse per hole (rows with ``ok == False`` are invalid)."""

    centers: np.ndarray    # (N, 2) u, v px
    axes: np.ndarray       # (N, 2) full major, minor axis px
    angles: np.ndarray     # (N,) major-axis angle, degrees in [0, 180), from +u toward +v
    residual: np.ndarray   # (N,) RMS geometric distance of the inlier points, px
    inliers: np.ndarray    # (N, K) bool
    ok: np.ndarray         # (N,) bool


def _normalise(points: np.ndarray, weights: np.ndarray):
    """Shift each hole's points to their weighted mean and scale to unit RMS radius."""
    wsum = np.maximum(weights.sum(axis=1), 1e-12)
    mean = (points * weights[..., None]).sum(axis=1) / wsum[:, None]
    centred = points - mean[:, None, :]
    scale = np.sqrt((weights * (centred ** 2).sum(axis=2)).sum(axis=1) / wsum)
    scale = np.where(scale > 1e-9, scale, 1.0)
    return centred / scale[:, None, None], mean, scale


def conic_ellipse_direct(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Direct least-squares ellipse fit; returns conics (N, 6) [a, b, c, d, e, f] and an ok flag.

    The conic is a x^2 + b xy + c y^2 + d x + e y + f = 0 in the *original* pixel coordinates.
    """
    p, mean, scale = _normalise(points, weights)
    x, y = p[..., 0], p[..., 1]
    d1 = np.stack([x * x, x * y, y * y], axis=2)                 # (N, K, 3)
    d2 = np.stack([x, y, np.ones_like(x)], axis=2)               # (N, K, 3)
    d1w = np.swapaxes(d1 * weights[..., None], 1, 2)            # (N, 3, K)
    s1 = d1w @ d1
    s2 = d1w @ d2
    s3 = np.swapaxes(d2 * weights[..., None], 1, 2) @ d2
    s3 = s3 + np.eye(3) * 1e-12
    t = -np.linalg.solve(s3, np.swapaxes(s2, 1, 2))              # (N, 3, 3)
    m = s1 + s2 @ t
    # Premultiply by inv(C1) where C1 = [[0, 0, 2], [0, -1, 0], [2, 0, 0]].
    m = np.stack([m[:, 2] / 2.0, -m[:, 1], m[:, 0] / 2.0], axis=1)
    _, vecs = np.linalg.eig(m)
    vecs = np.real(vecs)                                          # (N, 3, 3), columns are eigenvectors
    cond = 4.0 * vecs[:, 0, :] * vecs[:, 2, :] - vecs[:, 1, :] ** 2
    choice = np.argmax(cond, axis=1)
    ok = cond[np.arange(len(cond)), choice] > 0
    a1 = vecs[np.arange(len(vecs)), :, choice]                   # (N, 3)
    a2 = (t @ a1[..., None])[..., 0]
    conic_n = np.concatenate([a1, a2], axis=1)                   # in normalised coordinates
    return _denormalise_conic(conic_n, mean, scale), ok


def _denormalise_conic(conic: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Express a conic fitted in x' = (x - m) / s back in pixel coordinates."""
    a, b, c, d, e, f = conic.T
    s = scale
    mx, my = mean[:, 0], mean[:, 1]
    A, B, C = a / s**2, b / s**2, c / s**2
    D, E = d / s, e / s
    # Substitute x' = (x - mx)/s etc. and expand.
    a_ = A
    b_ = B
    c_ = C
    d_ = -2 * A * mx - B * my + D
    e_ = -2 * C * my - B * mx + E
    f_ = A * mx**2 + B * mx * my + C * my**2 - D * mx - E * my + f
    out = np.stack([a_, b_, c_, d_, e_, f_], axis=1)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)


def conic_to_geometry(conic: np.ndarray):
    """Conics (N, 6) -> centers (N, 2), full axes (N, 2) major >= minor, angles (N,) deg, ok (N,)."""
    a, b, c, d, e, f = conic.T
    den = b * b - 4 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        u0 = (2 * c * d - b * e) / den
        v0 = (2 * a * e - b * d) / den
        # Value of the conic at the center: F0 = f + (d u0 + e v0) / 2
        f0 = f + 0.5 * (d * u0 + e * v0)
        # Eigenvalues of the quadratic form [[a, b/2], [b/2, c]]
        root = np.sqrt((a - c) ** 2 + b * b)
        lam1 = 0.5 * (a + c - root)
        lam2 = 0.5 * (a + c + root)
        semi1 = np.sqrt(-f0 / lam1)
        semi2 = np.sqrt(-f0 / lam2)
        # theta: direction of the eigenvector of the larger eigenvalue of the quadratic form.
        theta = 0.5 * np.arctan2(b, a - c)
    major = np.fmax(semi1, semi2)
    minor = np.fmin(semi1, semi2)
    # The major axis is the principal direction along which the quadratic form is smaller in size.
    t = np.radians(np.degrees(theta) + 90.0)
    q = a * np.cos(t) ** 2 + b * np.cos(t) * np.sin(t) + c * np.sin(t) ** 2
    q_perp = a * np.sin(t) ** 2 - b * np.cos(t) * np.sin(t) + c * np.cos(t) ** 2
    angle = np.where(np.abs(q) <= np.abs(q_perp), np.degrees(t), np.degrees(t) + 90.0) % 180.0
    ok = np.isfinite(u0) & np.isfinite(v0) & np.isfinite(major) & np.isfinite(minor) & (minor > 0) & (den < 0)
    centers = np.stack([u0, v0], axis=1)
    axes = np.stack([2 * major, 2 * minor], axis=1)
    return centers, axes, angle, ok


def sampson_distance(conic: np.ndarray, points: np.ndarray) -> np.ndarray:
    """First-order geometric distance of each point (N, K, 2) to its hole's conic (N, 6): (N, K)."""
    a, b, c, d, e, f = (conic[:, i:i + 1] for i in range(6))
    x, y = points[..., 0], points[..., 1]
    value = a * x * x + b * x * y + c * y * y + d * x + e * y + f
    gx = 2 * a * x + b * y + d
    gy = b * x + 2 * c * y + e
    return np.abs(value) / np.maximum(np.sqrt(gx * gx + gy * gy), 1e-12)


# The first rounds keep only the best-fitting TRIM_KEEP of each hole's points (robust to a bad start,
# where gross outliers inflate the spread); later rounds keep all points within k robust sigmas.
TRIM_ROUNDS = 2
TRIM_KEEP = 0.75


def _row_median(values: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Median of each row over the used entries (inf where a row uses none)."""
    count = use.sum(axis=1)
    ordered = np.sort(np.where(use, values, np.inf), axis=1)
    low = ordered[np.arange(len(values)), np.maximum((count - 1) // 2, 0)]
    high = ordered[np.arange(len(values)), np.maximum(count // 2, 0)]
    return np.where(count > 0, 0.5 * (low + high), np.inf)


def _next_inliers(dist, valid, inliers, round_index, min_points, floor_px, k_sigma) -> np.ndarray:
    """The points to fit next round (never fewer than ``min_points``: then the old set stays)."""
    if round_index < TRIM_ROUNDS:
        ranked = np.where(valid, dist, np.inf)
        keep = np.ceil(TRIM_KEEP * valid.sum(axis=1)).astype(int)
        rank = np.argsort(np.argsort(ranked, axis=1, kind="stable"), axis=1, kind="stable")
        new_inliers = valid & (rank < keep[:, None])
    else:
        sigma = 1.4826 * _row_median(dist, inliers)
        limit = np.maximum(k_sigma * sigma, floor_px)
        new_inliers = valid & (dist <= limit[:, None])
    return np.where((new_inliers.sum(axis=1) >= min_points)[:, None], new_inliers, inliers)


def fit_ellipses_robust(points: np.ndarray, valid: np.ndarray, *, iterations: int = 4,
                        min_points: int = 6, floor_px: float = 0.15, k_sigma: float = 3.0) -> EllipseFit:
    """Fit one ellipse per hole to its valid points, rejecting outliers by Sampson distance.

    Each round refits on the inliers, estimates the spread by the median absolute distance and keeps
    points within ``k_sigma`` robust sigmas (never tighter than ``floor_px``).
    """
    inliers = valid.copy()
    n = len(points)
    conic = np.zeros((n, 6))
    ok = np.zeros(n, dtype=bool)
    safe_points = np.where(valid[..., None], points, 0.0)
    for round_index in range(iterations + TRIM_ROUNDS):
        enough = inliers.sum(axis=1) >= min_points
        conic, ok = conic_ellipse_direct(safe_points, inliers.astype(np.float64))
        ok &= enough
        dist = sampson_distance(conic, safe_points)
        new_inliers = _next_inliers(dist, valid, inliers, round_index, min_points, floor_px, k_sigma)
        if round_index >= TRIM_ROUNDS and np.array_equal(new_inliers, inliers):
            break
        inliers = new_inliers
    centers, axes, angles, geometric_ok = conic_to_geometry(conic)
    dist = sampson_distance(conic, safe_points)
    count = np.maximum(inliers.sum(axis=1), 1)
    residual = np.sqrt(np.where(inliers, dist ** 2, 0.0).sum(axis=1) / count)
    return EllipseFit(centers=centers, axes=axes, angles=angles, residual=residual, inliers=inliers,
                      ok=ok & geometric_ok & (inliers.sum(axis=1) >= min_points))


def fit_circles_robust(points: np.ndarray, valid: np.ndarray, *, iterations: int = 4, min_points: int = 4,
                       floor_px: float = 0.15, k_sigma: float = 3.0) -> EllipseFit:
    """Algebraic (Kasa) circle fit with the same outlier rejection; stable on partial arcs."""
    inliers = valid.copy()
    safe_points = np.where(valid[..., None], points, 0.0)
    n = len(points)
    centers = np.zeros((n, 2))
    radius = np.zeros(n)
    for round_index in range(iterations + TRIM_ROUNDS):
        p, mean, scale = _normalise(safe_points, inliers.astype(np.float64))
        w = inliers.astype(np.float64)
        x, y = p[..., 0], p[..., 1]
        design = np.stack([x, y, np.ones_like(x)], axis=2)
        rhs = -(x * x + y * y)
        weighted = np.swapaxes(design * w[..., None], 1, 2)     # (N, 3, K)
        lhs = weighted @ design + np.eye(3) * 1e-12
        vec = (weighted @ rhs[..., None])[..., 0]
        sol = np.linalg.solve(lhs, vec[..., None])[..., 0]
        cx, cy = -sol[:, 0] / 2, -sol[:, 1] / 2
        r2 = cx * cx + cy * cy - sol[:, 2]
        radius = np.sqrt(np.maximum(r2, 0)) * scale
        centers = np.stack([cx, cy], axis=1) * scale[:, None] + mean
        dist = np.abs(np.linalg.norm(safe_points - centers[:, None, :], axis=2) - radius[:, None])
        new_inliers = _next_inliers(dist, valid, inliers, round_index, min_points, floor_px, k_sigma)
        if round_index >= TRIM_ROUNDS and np.array_equal(new_inliers, inliers):
            break
        inliers = new_inliers
    dist = np.abs(np.linalg.norm(safe_points - centers[:, None, :], axis=2) - radius[:, None])
    count = np.maximum(inliers.sum(axis=1), 1)
    residual = np.sqrt(np.where(inliers, dist ** 2, 0.0).sum(axis=1) / count)
    ok = (inliers.sum(axis=1) >= min_points) & (radius > 0) & np.all(np.isfinite(centers), axis=1)
    return EllipseFit(centers=centers, axes=np.stack([2 * radius, 2 * radius], axis=1), angles=np.zeros(n),
                      residual=residual, inliers=inliers, ok=ok)
