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
    mean = (weights[:, None, :] @ points)[:, 0] / wsum[:, None]
    centred = points - mean[:, None, :]
    scale = np.sqrt((weights[:, None, :] @ (centred * centred).sum(axis=2)[..., None])[:, 0, 0] / wsum)
    scale = np.where(scale > 1e-9, scale, 1.0)
    return centred / scale[:, None, None], mean, scale


# Monomials x^i y^j (i + j <= 4) of normalised points: every entry of the direct fit's 6x6 scatter
# matrix D^T W D, with D = [x^2, xy, y^2, x, y, 1], is the weighted sum of one of them. Computing the
# 15 monomials once per hole and their weighted sums as one (15, K) @ (K, 1) product per hole and
# round replaces the per-round design matrices and 3x3 blocks (most of the fit's cost was their
# many small numpy calls, not arithmetic).
_DESIGN_EXPONENTS = [(2, 0), (1, 1), (0, 2), (1, 0), (0, 1), (0, 0)]         # x^2, xy, y^2, x, y, 1
# The design row first (so that it, and [x, y, 1] after it, are slices), then degrees 3 and 4.
_EXPONENTS = _DESIGN_EXPONENTS + [(i - j, j) for i in (3, 4) for j in range(i + 1)]
_SCATTER_INDEX = np.array([[_EXPONENTS.index((a[0] + b[0], a[1] + b[1])) for b in _DESIGN_EXPONENTS]
                           for a in _DESIGN_EXPONENTS])


@dataclass
class _Normalised:
    """Each hole's points in its own similarity frame (x' = (x - mean) / scale) and their monomials.

    The direct fit and the Sampson distance are invariant to a similarity transform (the conic and
    its constraint 4ac - b^2 only scale), so one frame per hole, from all its valid points, serves
    every round of the robust fit; the normalisation is only there for numerical conditioning.
    """

    mean: np.ndarray        # (N, 2)
    scale: np.ndarray       # (N,)
    monomials: np.ndarray   # (N, 15, K) in _EXPONENTS order (points along the last axis)
    design: np.ndarray      # (N, 6, K) x^2, xy, y^2, x, y, 1: a view of the first 6 monomials
    linear: np.ndarray      # (N, 3, K) x, y, 1: a view

    @classmethod
    def of(cls, points: np.ndarray, weights: np.ndarray) -> "_Normalised":
        p, mean, scale = _normalise(points, weights)
        x, y = p[..., 0], p[..., 1]
        xx, xy, yy = x * x, x * y, y * y
        monomials = np.stack([xx, xy, yy, x, y, np.ones_like(x), xx * x, xx * y, x * yy, yy * y,
                              xx * xx, xx * xy, xx * yy, xy * yy, yy * yy], axis=1)
        return cls(mean, scale, monomials, monomials[:, :6], monomials[:, 3:6])

    def rows(self, rows: np.ndarray) -> "_Normalised":
        monomials = self.monomials[rows]
        return _Normalised(self.mean[rows], self.scale[rows], monomials, monomials[:, :6], monomials[:, 3:6])


# The closed-form eigenvector costs a fixed ~50 small numpy calls, LAPACK's eig ~3 us per hole: below
# this many holes in a round, eig is the cheaper of the two (both give the same vector).
CLOSED_FORM_MIN_ROWS = 16


def _direct_fit_normalised(monomials: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Halir-Flusser direct ellipse fit of normalised points: conics (N, 6) and an ok flag (N,)."""
    sums = (monomials @ weights[..., None])[..., 0]                # (N, 15) weighted monomial sums
    scatter = sums[:, _SCATTER_INDEX]                              # (N, 6, 6) D^T W D
    s1, s2 = scatter[:, :3, :3], scatter[:, :3, 3:]
    s3 = scatter[:, 3:, 3:] + np.eye(3) * 1e-12
    t = -np.linalg.solve(s3, np.swapaxes(s2, 1, 2))               # (N, 3, 3)
    reduced = s1 + s2 @ t                                          # S1 - S2 S3^-1 S2^T, symmetric
    if len(reduced) < CLOSED_FORM_MIN_ROWS:
        a1, ok = _ellipse_eigenvector_general(reduced)
        return np.concatenate([a1, (t @ a1[..., None])[..., 0]], axis=1), ok
    a1, ok = _ellipse_eigenvector(reduced)
    failed = ~ok
    if failed.any():
        a1[failed], ok[failed] = _ellipse_eigenvector_general(reduced[failed])
    a2 = (t @ a1[..., None])[..., 0]
    return np.concatenate([a1, a2], axis=1), ok


_INV_C1_ROWS = np.array([[0.5], [-1.0], [0.5]])


def _ellipse_eigenvector_general(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Halir-Flusser's eigenproblem as published: the eigenvector of inv(C1) @ reduced with
    4ac - b^2 > 0 (N, 3), and whether there is one. General (any reduced matrix) but slow: LAPACK's
    nonsymmetric eig per 3x3 costs more than the rest of a fit round."""
    # Premultiply by inv(C1) where C1 = [[0, 0, 2], [0, -1, 0], [2, 0, 0]].
    m = reduced[:, [2, 1, 0]] * _INV_C1_ROWS
    _, vecs = np.linalg.eig(m)
    vecs = np.real(vecs)                                          # (N, 3, 3), columns are eigenvectors
    cond = 4.0 * vecs[:, 0, :] * vecs[:, 2, :] - vecs[:, 1, :] ** 2
    choice = np.argmax(cond, axis=1)
    rows = np.arange(len(cond))
    return vecs[rows, :, choice], cond[rows, choice] > 0


def _ellipse_eigenvector(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same eigenvector in closed form, for a positive definite ``reduced`` (N, 3, 3).

    reduced a = mu C1 a is a symmetric-definite pencil: with reduced = L L^T and z = L^T a,
    B z = (1 / mu) z for the symmetric B = L^-1 C1 L^-T. B has C1's inertia (one positive, two
    negative eigenvalues) and a^T reduced a = mu a^T C1 a > 0, so the ellipse (4ac - b^2 = a^T C1 a
    > 0) is B's largest eigenvalue, from the trigonometric solution of its characteristic cubic.
    B = [[0, 0, p], [0, q, r], [p, r, s]] (q < 0), so its eigenvector for that eigenvalue lam > 0
    is (p / lam, -r / (q - lam), 1). About 50 operations on (N,) arrays. Rows where this fails (not
    positive definite: too few or collinear points) come back with ok False.
    """
    r = reduced
    with np.errstate(all="ignore"):
        l00 = np.sqrt(r[:, 0, 0])
        l10, l20 = r[:, 1, 0] / l00, r[:, 2, 0] / l00
        l11 = np.sqrt(r[:, 1, 1] - l10 * l10)
        l21 = (r[:, 2, 1] - l20 * l10) / l11
        l22 = np.sqrt(r[:, 2, 2] - l20 * l20 - l21 * l21)
        # inv(L), lower triangular.
        i00, i11, i22 = 1.0 / l00, 1.0 / l11, 1.0 / l22
        i10 = -l10 * i00 * i11
        i21 = -l21 * i11 * i22
        i20 = -(l20 * i00 + l21 * i10) * i22
        # B = inv(L) C1 inv(L)^T: with x^T C1 y = 2 (x0 y2 + x2 y0) - x1 y1 and the rows (i00, 0, 0),
        # (i10, i11, 0), (i20, i21, i22) of inv(L): p = 2 i00 i22, q = -i11^2, r = 2 i10 i22 - i11 i21,
        # s = 4 i20 i22 - i21^2.
        p = 2 * i00 * i22
        q = -i11 * i11
        rr = 2 * i10 * i22 - i11 * i21
        s = 4 * i20 * i22 - i21 * i21
        # Characteristic polynomial lam^3 - c2 lam^2 + c1 lam - c0, det B = -p^2 q; its largest root.
        c2 = q + s
        c1 = q * s - rr * rr - p * p
        c0 = -p * p * q
        shift = c2 / 3
        depressed_p = c1 - c2 * shift                                   # t^3 + P t + Q, lam = t + c2 / 3
        depressed_q = c2 * c1 / 3 - c0 - 2 * shift ** 3
        half_range = np.sqrt(-depressed_p / 3)
        cosine = np.clip(-depressed_q / (2 * half_range ** 3), -1.0, 1.0)
        top = shift + 2 * half_range * np.cos(np.arccos(cosine) / 3)
        # The formula loses digits when lam is small next to the negative roots (a poor fit): two
        # Newton steps on the cubic restore them.
        for _ in range(2):
            top = top - (((top - c2) * top + c1) * top - c0) / ((3 * top - 2 * c2) * top + c1)
        z0, z1 = p / top, -rr / (q - top)
        # a = inv(L)^T z with z = (z0, z1, 1)
        a = np.stack([i00 * z0 + i10 * z1 + i20, i11 * z1 + i21, i22], axis=1)
        a /= np.sqrt((a * a).sum(axis=1))[:, None]
        ok = np.isfinite(a).all(axis=1) & (4 * a[:, 0] * a[:, 2] - a[:, 1] ** 2 > 0) & (top > 0)
    return np.where(ok[:, None], a, 0.0), ok


# The conic's gradient at [x, y, 1] is [x, y, 1] @ [[2a, b], [b, 2c], [d, e]].
_GRADIENT_INDEX = np.array([[0, 1], [1, 2], [3, 4]])
_GRADIENT_FACTOR = np.array([[2.0, 1.0], [1.0, 2.0], [1.0, 1.0]])


def _sampson_normalised(conic: np.ndarray, frame: "_Normalised") -> np.ndarray:
    """Sampson distance (px) of each hole's normalised points (N, K) to its conic (N, 6), fitted in
    the same frame: the conic's value and gradient at all points are two matrix products."""
    value = (conic[:, None, :] @ frame.design)[:, 0]                               # (N, K)
    gradient = np.swapaxes(conic[:, _GRADIENT_INDEX] * _GRADIENT_FACTOR, 1, 2) @ frame.linear   # (N, 2, K)
    norm = np.hypot(gradient[:, 0], gradient[:, 1])
    return np.abs(value) * frame.scale[:, None] / np.maximum(norm, 1e-12)


def conic_ellipse_direct(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Direct least-squares ellipse fit; returns conics (N, 6) [a, b, c, d, e, f] and an ok flag.

    The conic is a x^2 + b xy + c y^2 + d x + e y + f = 0 in the *original* pixel coordinates.
    """
    frame = _Normalised.of(points, weights)
    conic_n, ok = _direct_fit_normalised(frame.monomials, weights)
    return _denormalise_conic(conic_n, frame.mean, frame.scale), ok


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


def _smallest(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(N, K) mask of the ``keep[i]`` smallest values of each row, ties taken in index order (as
    ranking by a stable argsort would). A sorted copy gives each row's cut-off value; only entries
    equal to it need their order counted."""
    keep = keep.astype(np.int64)
    rows = np.arange(len(values))
    cut = np.sort(values, axis=1)[rows, np.maximum(keep - 1, 0)][:, None]
    if not np.isfinite(cut).all():      # NaN distances sort last: rank them the long way
        order = np.argsort(values, axis=1, kind="stable")
        rank = np.empty_like(order)
        rank[rows[:, None], order] = np.arange(order.shape[1])
        return rank < keep[:, None]
    below = values < cut
    tied = values == cut
    room = keep - below.sum(axis=1)
    return (below | (tied & (np.cumsum(tied, axis=1) <= room[:, None]))) & (keep > 0)[:, None]


def _next_inliers(dist, valid, inliers, round_index, min_points, floor_px, k_sigma) -> np.ndarray:
    """The points to fit next round (never fewer than ``min_points``: then the old set stays)."""
    if round_index < TRIM_ROUNDS:
        new_inliers = valid & _smallest(np.where(valid, dist, np.inf), np.ceil(TRIM_KEEP * valid.sum(axis=1)))
    else:
        sigma = 1.4826 * _row_median(dist, inliers)
        limit = np.maximum(k_sigma * sigma, floor_px)
        new_inliers = valid & (dist <= limit[:, None])
    return np.where((new_inliers.sum(axis=1) >= min_points)[:, None], new_inliers, inliers)


def _robust_rounds(fit_round, valid: np.ndarray, iterations: int, min_points: int, floor_px: float,
                   k_sigma: float):
    """The robust loop shared by the ellipse and the circle fit.

    ``fit_round(rows, weights) -> (model, dist)`` fits the holes ``rows`` to their weighted points and
    returns their model rows and point distances (px). Each round refits on the inliers, then keeps
    the best TRIM_KEEP (first TRIM_ROUNDS rounds) or the points within ``k_sigma`` robust sigmas. A
    hole whose inlier set no longer changes is final: refitting it would give the same fit again, so
    later rounds only fit the holes still changing (fewer rows, cheaper eig calls).
    Returns the models (N, ...), the distances of the final fits (N, K), the inliers (N, K) and
    whether each hole had ``min_points`` inliers for its final fit.
    """
    n = len(valid)
    inliers = valid
    rows = np.arange(n)
    model = dist = enough = None
    for round_index in range(iterations + TRIM_ROUNDS):
        every = len(rows) == n
        current = inliers if every else inliers[rows]
        row_model, row_dist = fit_round(rows, current.astype(np.float64))
        row_enough = current.sum(axis=1) >= min_points
        new_inliers = _next_inliers(row_dist, valid if every else valid[rows], current, round_index, min_points,
                                    floor_px, k_sigma)
        if every:
            model, dist, enough, inliers = row_model, row_dist, row_enough, new_inliers
        else:
            model[rows], dist[rows], enough[rows], inliers[rows] = row_model, row_dist, row_enough, new_inliers
        if round_index >= TRIM_ROUNDS:
            rows = rows[(new_inliers != current).any(axis=1)]
            if rows.size == 0:
                break
    return model, dist, inliers, enough


def fit_ellipses_robust(points: np.ndarray, valid: np.ndarray, *, iterations: int = 4,
                        min_points: int = 6, floor_px: float = 0.15, k_sigma: float = 3.0) -> EllipseFit:
    """Fit one ellipse per hole to its valid points, rejecting outliers by Sampson distance.

    Each round refits on the inliers, estimates the spread by the median absolute distance and keeps
    points within ``k_sigma`` robust sigmas (never tighter than ``floor_px``). The rounds work in each
    hole's normalised frame (see `_Normalised`); the conic is taken back to pixels once at the end.
    """
    n, k = valid.shape
    safe_points = np.where(valid[..., None], points, 0.0)
    frame = _Normalised.of(safe_points, valid.astype(np.float64))
    ok_fit = np.zeros(n, dtype=bool)

    def fit_round(rows, weights):
        part = frame if len(rows) == n else frame.rows(rows)   # the first rounds fit every hole: no copies
        conic, ok = _direct_fit_normalised(part.monomials, weights)
        ok_fit[rows] = ok
        return conic, _sampson_normalised(conic, part)

    conic_n, dist, inliers, enough = _robust_rounds(fit_round, valid, iterations, min_points, floor_px, k_sigma)
    conic = _denormalise_conic(conic_n, frame.mean, frame.scale)
    centers, axes, angles, geometric_ok = conic_to_geometry(conic)
    count = np.maximum(inliers.sum(axis=1), 1)
    residual = np.sqrt(np.where(inliers, dist ** 2, 0.0).sum(axis=1) / count)
    return EllipseFit(centers=centers, axes=axes, angles=angles, residual=residual, inliers=inliers,
                      ok=ok_fit & enough & geometric_ok & (inliers.sum(axis=1) >= min_points))


def fit_circles_robust(points: np.ndarray, valid: np.ndarray, *, iterations: int = 4, min_points: int = 4,
                       floor_px: float = 0.15, k_sigma: float = 3.0) -> EllipseFit:
    """Algebraic (Kasa) circle fit with the same outlier rejection; stable on partial arcs.

    Like the ellipse fit, the Kasa fit is similarity-invariant, so each hole is normalised once.
    """
    n = len(points)
    safe_points = np.where(valid[..., None], points, 0.0)
    p, mean, scale = _normalise(safe_points, valid.astype(np.float64))
    x, y = p[..., 0], p[..., 1]
    # x^2 + y^2 + D x + E y + F = 0: normal equations from the scatter of [x, y, 1, x^2 + y^2].
    design = np.stack([x, y, np.ones_like(x), x * x + y * y], axis=2)          # (N, K, 4)

    def fit_round(rows, weights):
        d = design[rows]
        scatter = np.swapaxes(d * weights[..., None], 1, 2) @ d            # (R, 4, 4)
        lhs = scatter[:, :3, :3] + np.eye(3) * 1e-12
        sol = np.linalg.solve(lhs, -scatter[:, :3, 3:])[..., 0]
        cx, cy = -sol[:, 0] / 2, -sol[:, 1] / 2
        r = np.sqrt(np.maximum(cx * cx + cy * cy - sol[:, 2], 0))
        dist = np.abs(np.hypot(x[rows] - cx[:, None], y[rows] - cy[:, None]) - r[:, None]) * scale[rows, None]
        return np.stack([cx, cy, r], axis=1), dist

    circle, dist, inliers, _ = _robust_rounds(fit_round, valid, iterations, min_points, floor_px, k_sigma)
    if circle is None:
        circle = np.zeros((0, 3))
    centers = circle[:, :2] * scale[:, None] + mean
    radius = circle[:, 2] * scale
    count = np.maximum(inliers.sum(axis=1), 1)
    residual = np.sqrt(np.where(inliers, dist ** 2, 0.0).sum(axis=1) / count) if n else np.zeros(0)
    ok = (inliers.sum(axis=1) >= min_points) & (radius > 0) & np.all(np.isfinite(centers), axis=1)
    return EllipseFit(centers=centers, axes=np.stack([2 * radius, 2 * radius], axis=1), angles=np.zeros(n),
                      residual=residual, inliers=inliers, ok=ok)
