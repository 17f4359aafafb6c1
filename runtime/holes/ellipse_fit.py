"""Robust ellipse and circle fits to edge points, many holes in one call.

Points come as (N, K, 2) arrays (N holes, K edge points each) with an (N, K) validity mask. One numba
kernel fits all N holes in a plain loop, hole after hole: a hole's fit is a few microseconds of
arithmetic on K points, far less than the overhead of the numpy calls it would take per round.

The ellipse fit is the direct least-squares fit of Fitzgibbon, Pilu and Fisher (1999) in the
numerically stable form of Halir and Flusser (1998): it always returns an ellipse. Outliers are
rejected iteratively by their Sampson (first-order geometric) distance. The circle fit is Kasa's
algebraic fit with the same outlier rejection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
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


# The first rounds keep only the best-fitting TRIM_KEEP of each hole's points (robust to a bad start,
# where gross outliers inflate the spread); later rounds keep all points within k robust sigmas.
TRIM_ROUNDS = 2
TRIM_KEEP = 0.75

# Monomials x^i y^j (i + j <= 4) of normalised points: every entry of the direct fit's 6x6 scatter
# matrix D^T W D, with D = [x^2, xy, y^2, x, y, 1], is the sum over the inliers of one of them. A round
# accumulates the 15 sums in one pass over the points and reads the scatter matrix from them.
_DESIGN_EXPONENTS = [(2, 0), (1, 1), (0, 2), (1, 0), (0, 1), (0, 0)]         # x^2, xy, y^2, x, y, 1
# The design row first, then degrees 3 and 4 (the order in which `_direct_fit` accumulates them).
_EXPONENTS = _DESIGN_EXPONENTS + [(i - j, j) for i in (3, 4) for j in range(i + 1)]
_SCATTER_INDEX = np.array([[_EXPONENTS.index((a[0] + b[0], a[1] + b[1])) for b in _DESIGN_EXPONENTS]
                           for a in _DESIGN_EXPONENTS])

# error_model="numpy": a division by zero gives inf / NaN as in numpy (degenerate holes end with
# ok False) instead of raising.
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


# --- per-hole building blocks ------------------------------------------------------------------------

@_jit
def _normalise(points, valid, x, y):
    """One hole's valid points shifted to their mean and scaled to unit RMS radius, into x, y (K,).

    The direct fit, the Kasa fit and their distances are invariant to a similarity transform (the
    conic and its constraint 4ac - b^2 only scale), so one frame per hole, from all its valid points,
    serves every round of the robust fit; the normalisation is only there for numerical conditioning.
    Returns the frame (mean u, mean v, scale); entries of invalid points are left at 0.
    """
    k = len(valid)
    count = 0
    su = 0.0
    sv = 0.0
    for j in range(k):
        if valid[j]:
            count += 1
            su += points[j, 0]
            sv += points[j, 1]
    wsum = max(float(count), 1e-12)
    mu, mv = su / wsum, sv / wsum
    spread = 0.0
    for j in range(k):
        if valid[j]:
            du, dv = points[j, 0] - mu, points[j, 1] - mv
            spread += du * du + dv * dv
    scale = math.sqrt(spread / wsum)
    if not scale > 1e-9:
        scale = 1.0
    for j in range(k):
        x[j] = (points[j, 0] - mu) / scale if valid[j] else 0.0
        y[j] = (points[j, 1] - mv) / scale if valid[j] else 0.0
    return mu, mv, scale


@_jit
def _solve3(a, b):
    """Solve a x = b in place (b becomes x; a (3, 3) is overwritten, b is (3, m)): Gaussian
    elimination with partial pivoting, as LAPACK's gesv does."""
    m = b.shape[1]
    for col in range(3):
        pivot = col
        for row in range(col + 1, 3):
            if abs(a[row, col]) > abs(a[pivot, col]):
                pivot = row
        if pivot != col:
            for c in range(3):
                a[col, c], a[pivot, c] = a[pivot, c], a[col, c]
            for c in range(m):
                b[col, c], b[pivot, c] = b[pivot, c], b[col, c]
        for row in range(col + 1, 3):
            factor = a[row, col] / a[col, col]
            for c in range(col + 1, 3):
                a[row, c] -= factor * a[col, c]
            for c in range(m):
                b[row, c] -= factor * b[col, c]
    for col in range(2, -1, -1):
        for c in range(m):
            value = b[col, c]
            for k in range(col + 1, 3):
                value -= a[col, k] * b[k, c]
            b[col, c] = value / a[col, col]


@_jit
def _ellipse_eigenvector(r, out):
    """Halir-Flusser's eigenvector in closed form, for a positive definite reduced scatter ``r`` (3, 3):
    writes the unit vector (a, b, c) into ``out`` and returns whether it is an ellipse.

    reduced a = mu C1 a is a symmetric-definite pencil: with reduced = L L^T and z = L^T a,
    B z = (1 / mu) z for the symmetric B = L^-1 C1 L^-T. B has C1's inertia (one positive, two
    negative eigenvalues) and a^T reduced a = mu a^T C1 a > 0, so the ellipse (4ac - b^2 = a^T C1 a
    > 0) is B's largest eigenvalue, from the trigonometric solution of its characteristic cubic.
    B = [[0, 0, p], [0, q, r], [p, r, s]] (q < 0), so its eigenvector for that eigenvalue lam > 0
    is (p / lam, -r / (q - lam), 1). Fails (False) where ``r`` is not positive definite (too few or
    collinear points, or points exactly on a conic): see `_ellipse_eigenvector_general`.
    """
    # Cholesky factor L of the lower triangle (NaN where not positive definite).
    l00 = np.sqrt(r[0, 0])
    l10, l20 = r[1, 0] / l00, r[2, 0] / l00
    l11 = np.sqrt(r[1, 1] - l10 * l10)
    l21 = (r[2, 1] - l20 * l10) / l11
    l22 = np.sqrt(r[2, 2] - l20 * l20 - l21 * l21)
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
    depressed_q = c2 * c1 / 3 - c0 - 2 * shift ** 3.0
    half_range = np.sqrt(-depressed_p / 3)
    cosine = -depressed_q / (2 * half_range ** 3.0)
    cosine = -1.0 if cosine < -1.0 else (1.0 if cosine > 1.0 else cosine)
    top = shift + 2 * half_range * np.cos(np.arccos(cosine) / 3)
    # The formula loses digits when lam is small next to the negative roots (a poor fit): two
    # Newton steps on the cubic restore them.
    for _ in range(2):
        top = top - (((top - c2) * top + c1) * top - c0) / ((3 * top - 2 * c2) * top + c1)
    z0, z1 = p / top, -rr / (q - top)
    # a = inv(L)^T z with z = (z0, z1, 1)
    a0, a1, a2 = i00 * z0 + i10 * z1 + i20, i11 * z1 + i21, i22
    norm = np.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
    a0, a1, a2 = a0 / norm, a1 / norm, a2 / norm
    ok = (np.isfinite(a0) and np.isfinite(a1) and np.isfinite(a2) and 4 * a0 * a2 - a1 * a1 > 0
          and top > 0)
    out[0], out[1], out[2] = (a0, a1, a2) if ok else (0.0, 0.0, 0.0)
    return ok


@_jit
def _ellipse_eigenvector_general(r, out):
    """Halir-Flusser's eigenproblem as published, for any reduced scatter ``r`` (3, 3): the
    eigenvector of inv(C1) @ r with the largest 4ac - b^2 into ``out``, and whether that is > 0.

    The fallback of `_ellipse_eigenvector` (LAPACK's nonsymmetric eig, as numpy's eig). Where rounding
    gives a complex pair (degenerate point sets only), the real parts of the complex eigenvectors are
    compared; a matrix with NaN or inf gives False (numpy's eig would raise).
    """
    # Premultiply by inv(C1) where C1 = [[0, 0, 2], [0, -1, 0], [2, 0, 0]].
    m = np.empty((3, 3))
    for c in range(3):
        m[0, c], m[1, c], m[2, c] = 0.5 * r[2, c], -1.0 * r[1, c], 0.5 * r[0, c]
    if not np.isfinite(m).all():
        out[:] = 0.0
        return False
    vecs = np.empty((3, 3))                                         # columns are eigenvectors
    try:
        vecs[:] = np.linalg.eig(m)[1]
    except Exception:                                               # complex eigenvalues
        vecs[:] = np.real(np.linalg.eig(m.astype(np.complex128))[1])
    best, best_cond = 0, -np.inf
    for j in range(3):
        cond = 4.0 * vecs[0, j] * vecs[2, j] - vecs[1, j] ** 2
        if j == 0 or cond > best_cond:
            best, best_cond = j, cond
    out[:] = vecs[:, best]
    return best_cond > 0


@_jit
def _direct_fit(x, y, use, conic, work):
    """Halir-Flusser direct ellipse fit of the normalised points ``use`` selects: writes the conic
    [a, b, c, d, e, f] (in the normalised frame) into ``conic`` (6,), returns whether it is an ellipse.
    ``work`` is scratch space (4, 6, 6)."""
    sx = sy = sxx = sxy = syy = s1 = 0.0
    sxxx = sxxy = sxyy = syyy = sxxxx = sxxxy = sxxyy = sxyyy = syyyy = 0.0
    for j in range(len(x)):
        if use[j]:
            xj, yj = x[j], y[j]
            xx, xy, yy = xj * xj, xj * yj, yj * yj
            sxx += xx
            sxy += xy
            syy += yy
            sx += xj
            sy += yj
            s1 += 1.0
            sxxx += xx * xj
            sxxy += xx * yj
            sxyy += xj * yy
            syyy += yy * yj
            sxxxx += xx * xx
            sxxxy += xx * xy
            sxxyy += xx * yy
            sxyyy += xy * yy
            syyyy += yy * yy
    sums = (sxx, sxy, syy, sx, sy, s1, sxxx, sxxy, sxyy, syyy, sxxxx, sxxxy, sxxyy, sxyyy, syyyy)  # _EXPONENTS
    scatter, s3, t, reduced = work[0], work[1, :3, :3], work[2, :3, :3], work[3, :3, :3]
    for i in range(6):
        for j in range(6):
            scatter[i, j] = sums[_SCATTER_INDEX[i, j]]               # D^T W D
    # Blocks S1 (quadratic terms), S2, S3 (linear terms): the linear part a2 = T a1 of the conic with
    # T = -S3^-1 S2^T, and the reduced scatter S1 + S2 T = S1 - S2 S3^-1 S2^T of the quadratic part.
    for i in range(3):
        for j in range(3):
            s3[i, j] = scatter[3 + i, 3 + j] + (1e-12 if i == j else 0.0)
            t[i, j] = -scatter[j, 3 + i]
    _solve3(s3, t)
    for i in range(3):
        for j in range(3):
            product = 0.0
            for k in range(3):
                product += scatter[i, 3 + k] * t[k, j]
            reduced[i, j] = scatter[i, j] + product
    a1 = conic[:3]
    ok = _ellipse_eigenvector(reduced, a1)
    if not ok:
        ok = _ellipse_eigenvector_general(reduced, a1)
    for i in range(3):
        conic[3 + i] = t[i, 0] * a1[0] + t[i, 1] * a1[1] + t[i, 2] * a1[2]
    return ok


@_jit
def _sampson_distances(conic, x, y, valid, scale, dist):
    """Sampson distance (px) of each valid normalised point to the conic fitted in the same frame:
    |value| / |gradient|, times the frame's scale. Invalid points get inf."""
    a, b, c, d, e, f = conic[0], conic[1], conic[2], conic[3], conic[4], conic[5]
    for j in range(len(x)):               # branch-free: the compiler vectorises it
        xj, yj = x[j], y[j]
        value = a * (xj * xj) + b * (xj * yj) + c * (yj * yj) + d * xj + e * yj + f
        gx = 2 * a * xj + b * yj + d
        gy = b * xj + 2 * c * yj + e
        distance = abs(value) * scale / max(np.sqrt(gx * gx + gy * gy), 1e-12)
        dist[j] = distance if valid[j] else np.inf


@_jit
def _kasa_fit(x, y, use, circle, work):
    """Kasa circle fit of the normalised points ``use`` selects: x^2 + y^2 + D x + E y + F = 0 from
    the normal equations of [x, y, 1] against x^2 + y^2. Writes (cx, cy, r) into ``circle``."""
    sxx = sxy = syy = sx = sy = s1 = sxr = syr = sr = 0.0
    for j in range(len(x)):
        if use[j]:
            xj, yj = x[j], y[j]
            rj = xj * xj + yj * yj
            sxx += xj * xj
            sxy += xj * yj
            syy += yj * yj
            sx += xj
            sy += yj
            s1 += 1.0
            sxr += xj * rj
            syr += yj * rj
            sr += rj
    lhs, rhs = work[0, :3, :3], work[1, :3, :1]
    lhs[0, 0], lhs[0, 1], lhs[0, 2] = sxx + 1e-12, sxy, sx
    lhs[1, 0], lhs[1, 1], lhs[1, 2] = sxy, syy + 1e-12, sy
    lhs[2, 0], lhs[2, 1], lhs[2, 2] = sx, sy, s1 + 1e-12
    rhs[0, 0], rhs[1, 0], rhs[2, 0] = -sxr, -syr, -sr
    _solve3(lhs, rhs)
    cx, cy = -rhs[0, 0] / 2, -rhs[1, 0] / 2
    square = cx * cx + cy * cy - rhs[2, 0]
    circle[0], circle[1] = cx, cy
    circle[2] = np.sqrt(square if (square > 0 or square != square) else 0.0)   # np.maximum(square, 0)
    return True


@_jit
def _circle_distances(circle, x, y, valid, scale, dist):
    """Distance (px) of each valid normalised point to the circle; inf for invalid points."""
    cx, cy, r = circle[0], circle[1], circle[2]
    for j in range(len(x)):               # branch-free: the compiler vectorises it
        dx, dy = x[j] - cx, y[j] - cy
        distance = abs(np.sqrt(dx * dx + dy * dy) - r) * scale
        dist[j] = distance if valid[j] else np.inf


# --- inlier selection --------------------------------------------------------------------------------
#
# Ranks are taken on integer keys: for non-negative floats (distances) the IEEE-754 bit patterns order
# as the values do, +inf after every number and the canonical NaN after +inf, which is numpy's order
# (NaN last). The k-th smallest of a hole's keys (one per ray) is found by counting ranks (see
# `_kth_smallest`): a quickselect's unpredictable branches cost several times more.

_INT_MIN = np.iinfo(np.int64).min
_INT_MAX = np.iinfo(np.int64).max


@_jit
def _sort_keys(values, use, keys):
    """Integer sort keys (K,) of the non-negative ``values`` (K,) where ``use``, of +inf elsewhere
    (-0.0 becomes +0.0 and every NaN the same NaN, so that they tie as in numpy's sort)."""
    for j in range(len(values)):
        v = values[j]
        keys[j] = np.float64((abs(v) if v == v else np.nan) if use[j] else np.inf).view(np.int64)


@_jit
def _count_below(keys, pivot):
    """How many keys are <= pivot, the largest such key and the smallest key above it (one pass
    without data-dependent branches, which the compiler vectorises; indexed loops: numba's array
    iterator defeats the vectoriser)."""
    count = 0
    below, above = _INT_MIN, _INT_MAX
    for j in range(len(keys)):
        key = keys[j]
        le = key <= pivot
        count += le
        below = max(below, key if le else _INT_MIN)
        above = min(above, _INT_MAX if le else key)
    return count, below, above


@_jit
def _kth_smallest(keys, k):
    """The k-th smallest (0-based) of the int64 ``keys``, by counting ranks.

    The answer stays in a bracket [low, high] of actual keys with ``under`` keys below low and
    ``upto`` keys up to high. Each pass counts the keys up to a pivot interpolated by rank inside the
    bracket; the nearest keys on either side of the pivot become the new bracket end, so the bracket
    shrinks every pass (a handful of passes on distances) until low == high.
    """
    low, high = _INT_MAX, _INT_MIN
    for j in range(len(keys)):
        low, high = min(low, keys[j]), max(high, keys[j])
    under, upto = 0, len(keys)
    while low < high:
        fraction = (k + 0.5 - under) / (upto - under)
        pivot = min(max(low + np.int64((high - low) * fraction), low), high - 1)
        count, below, above = _count_below(keys, pivot)
        if count > k:
            high, upto = below, count
        else:
            low, under = above, count
    return low


@_jit
def _keep_smallest(values, use, keep, out, keys):
    """``out`` (K,) marks the ``keep`` smallest of the non-negative ``values`` (K,) (+inf where not
    ``use``), ties taken in index order, as ranking by a stable argsort would (NaN last). ``keys`` (K,)
    is scratch (`_sort_keys`)."""
    if keep <= 0:
        out[:] = False
        return
    _sort_keys(values, use, keys)
    cut = _kth_smallest(keys, keep - 1)
    room, ties = keep, 0                                # room for keys tied with the cut
    for j in range(len(keys)):
        room -= keys[j] < cut
        ties += keys[j] == cut
    # Only used entries: when NaN distances sort after the unused ones, the cut can reach those.
    if ties <= room:                                    # all of them (the rule unless keys tie)
        for j in range(len(keys)):
            out[j] = use[j] & (keys[j] <= cut)
        return
    tied = 0
    for j in range(len(keys)):
        out[j] = use[j] & ((keys[j] < cut) | ((keys[j] == cut) & (tied < room)))
        tied += keys[j] == cut


@_jit
def _median(values, use, keys):
    """Median of the non-negative ``values`` over the used entries (NaN last; inf where none is
    used). ``keys`` (K,) is scratch."""
    count = use.sum()
    if count == 0:
        return np.inf
    _sort_keys(values, use, keys)
    middle = _kth_smallest(keys, count // 2)
    high = low = np.int64(middle).view(np.float64)
    if count % 2 == 0:                                  # and the (count/2 - 1)-th:
        under, below, _ = _count_below(keys, middle - 1)
        if under == count // 2:                         # the largest key below, else a tie
            low = np.int64(below).view(np.float64)
    return 0.5 * (low + high)


@_jit
def _next_inliers(dist, valid, current, new, round_index, min_points, floor_px, k_sigma, keys):
    """The points to fit next round into ``new`` (never fewer than ``min_points``: then the old set
    stays). Trim rounds keep the best ceil(TRIM_KEEP x valid points); later rounds the valid points
    within ``k_sigma`` robust sigmas (1.4826 x the inliers' median distance), never tighter than
    ``floor_px``. ``keys`` (K,) is scratch."""
    if round_index < TRIM_ROUNDS:
        _keep_smallest(dist, valid, int(math.ceil(TRIM_KEEP * valid.sum())), new, keys)
    else:
        sigma = 1.4826 * _median(dist, current, keys)
        limit = k_sigma * sigma
        if limit != limit or floor_px != floor_px:       # np.maximum: NaN propagates
            limit = np.nan
        elif floor_px > limit:
            limit = floor_px
        for j in range(len(dist)):
            new[j] = valid[j] & (dist[j] <= limit)
    if new.sum() < min_points:
        new[:] = current


# --- the kernels -------------------------------------------------------------------------------------

@_jit
def _conic_geometry(conic, mean_u, mean_v, scale, out):
    """Denormalise one conic fitted in x' = (x - mean) / scale and convert it to geometry:
    out = (center u, center v, full major, full minor, angle deg in [0, 180)); returns whether it is a
    real ellipse."""
    a, b, c, d, e, f = conic[0], conic[1], conic[2], conic[3], conic[4], conic[5]
    s, mx, my = scale, mean_u, mean_v
    # Substitute x' = (x - mx) / s, y' = (y - my) / s and expand.
    A, B, C = a / s ** 2, b / s ** 2, c / s ** 2
    D, E = d / s, e / s
    a, b, c = A, B, C
    d = -2 * A * mx - B * my + D
    e = -2 * C * my - B * mx + E
    f = A * mx ** 2 + B * mx * my + C * my ** 2 - D * mx - E * my + f
    norm = np.sqrt(a * a + b * b + c * c + d * d + e * e + f * f)
    if norm > 0:
        a, b, c, d, e, f = a / norm, b / norm, c / norm, d / norm, e / norm, f / norm
    den = b * b - 4 * a * c
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
    major = semi2 if semi1 != semi1 or semi2 > semi1 else semi1           # np.fmax / np.fmin
    minor = semi2 if semi1 != semi1 or semi2 < semi1 else semi1
    # theta: direction of the eigenvector of the larger eigenvalue of the quadratic form; the major
    # axis is the principal direction along which the quadratic form is smaller in size.
    theta = 0.5 * np.arctan2(b, a - c)
    t = (theta * (180.0 / np.pi) + 90.0) * (np.pi / 180.0)             # np.radians(np.degrees(theta) + 90)
    t_deg = t * (180.0 / np.pi)
    cos_t, sin_t = np.cos(t), np.sin(t)
    q = a * cos_t ** 2 + b * cos_t * sin_t + c * sin_t ** 2
    q_perp = a * sin_t ** 2 - b * cos_t * sin_t + c * cos_t ** 2
    angle = (t_deg if abs(q) <= abs(q_perp) else t_deg + 90.0) % 180.0
    out[0], out[1], out[2], out[3], out[4] = u0, v0, 2 * major, 2 * minor, angle
    return (np.isfinite(u0) and np.isfinite(v0) and np.isfinite(major) and np.isfinite(minor) and minor > 0
            and den < 0)


@_jit
def _robust_fit(points, valid, circle, iterations, min_points_ellipse, min_points_circle, floor_px, k_sigma):
    """Fit every hole (a plain loop over the N holes): an ellipse, or a circle where ``circle`` (N,)
    (each kind with its own least number of points).

    Per hole: normalise once; then each round refits on the inliers, measures every valid point's
    distance to the fit and picks the next inliers (`_next_inliers`). After the trim rounds, a hole
    whose inlier set no longer changes is final (refitting would give the same fit again); otherwise
    it stops after iterations + TRIM_ROUNDS rounds. The returned inliers are the next round's set (the
    fitted set where the hole converged), the residual is the RMS of the last fit's distances over
    them. Returns centers (N, 2), axes (N, 2), angles (N,), residual (N,), inliers (N, K), ok (N,).
    """
    n, k = valid.shape
    centers = np.full((n, 2), np.nan)
    axes = np.full((n, 2), np.nan)
    angles = np.zeros(n)
    residual = np.zeros(n)
    inliers = np.zeros((n, k), dtype=np.bool_)
    ok = np.zeros(n, dtype=np.bool_)
    x, y, dist = np.empty(k), np.empty(k), np.empty(k)
    keys = np.empty(k, dtype=np.int64)
    new = np.empty(k, dtype=np.bool_)
    model = np.full(6, np.nan)              # the normalised conic, or (cx, cy, r)
    work = np.empty((4, 6, 6))
    geometry = np.empty(5)
    for i in range(n):
        min_points = min_points_circle if circle[i] else min_points_ellipse
        mean_u, mean_v, scale = _normalise(points[i], valid[i], x, y)
        current = inliers[i]                 # the points fitted this round
        current[:] = valid[i]
        fit_ok = enough = False
        for round_index in range(iterations + TRIM_ROUNDS):
            if circle[i]:
                fit_ok = _kasa_fit(x, y, current, model, work)
                _circle_distances(model, x, y, valid[i], scale, dist)
            else:
                fit_ok = _direct_fit(x, y, current, model, work)
                _sampson_distances(model, x, y, valid[i], scale, dist)
            enough = current.sum() >= min_points
            _next_inliers(dist, valid[i], current, new, round_index, min_points, floor_px, k_sigma, keys)
            changed = False
            for j in range(k):
                changed |= new[j] != current[j]
                current[j] = new[j]
            if round_index >= TRIM_ROUNDS and not changed:
                break
        count = 0
        squares = 0.0
        for j in range(k):
            if current[j]:
                count += 1
                squares += dist[j] ** 2
        residual[i] = np.sqrt(squares / max(count, 1))
        if circle[i]:
            centers[i, 0] = model[0] * scale + mean_u
            centers[i, 1] = model[1] * scale + mean_v
            axes[i, 0] = axes[i, 1] = 2 * (model[2] * scale)
            ok[i] = (count >= min_points and model[2] * scale > 0 and np.isfinite(centers[i, 0])
                     and np.isfinite(centers[i, 1]))
        else:
            geometric_ok = _conic_geometry(model, mean_u, mean_v, scale, geometry)
            centers[i, 0], centers[i, 1] = geometry[0], geometry[1]
            axes[i, 0], axes[i, 1] = geometry[2], geometry[3]
            angles[i] = geometry[4]
            ok[i] = fit_ok and enough and geometric_ok and count >= min_points
    return centers, axes, angles, residual, inliers, ok


def _fit(points, valid, circle, iterations, min_points, floor_px, k_sigma) -> EllipseFit:
    points = np.ascontiguousarray(points, dtype=np.float64)
    valid = np.asarray(valid, dtype=np.bool_)
    if points.ndim != 3 or points.shape[2] != 2 or valid.shape != points.shape[:2]:
        raise ValueError(f"points must be (N, K, 2) and valid (N, K); got {points.shape} and {valid.shape}")
    if iterations < 0 or min_points < 1:
        raise ValueError(f"iterations must be >= 0 and min_points >= 1, got {iterations} and {min_points}")
    # A point that is not finite cannot be fitted: it counts as not valid.
    valid = np.ascontiguousarray(valid & np.isfinite(points).all(axis=2))
    result = _robust_fit(points, valid, np.full(len(valid), circle), int(iterations), int(min_points),
                         int(min_points), float(floor_px), float(k_sigma))
    return EllipseFit(*result)


def fit_ellipses_robust(points: np.ndarray, valid: np.ndarray, *, iterations: int = 4,
                        min_points: int = 6, floor_px: float = 0.15, k_sigma: float = 3.0) -> EllipseFit:
    """Fit one ellipse per hole to its valid points, rejecting outliers by Sampson distance.

    The first TRIM_ROUNDS rounds keep the best TRIM_KEEP of the points; later rounds refit on the
    inliers, estimate the spread by the median absolute distance and keep points within ``k_sigma``
    robust sigmas (never tighter than ``floor_px``). The rounds work in each hole's normalised frame
    (see `_normalise`); the conic is taken back to pixels once at the end. ``ok`` is False where the
    last fit is no ellipse or had fewer than ``min_points`` points, or fewer are inliers.
    """
    return _fit(points, valid, False, iterations, min_points, floor_px, k_sigma)


def fit_circles_robust(points: np.ndarray, valid: np.ndarray, *, iterations: int = 4, min_points: int = 4,
                       floor_px: float = 0.15, k_sigma: float = 3.0) -> EllipseFit:
    """Algebraic (Kasa) circle fit with the same outlier rejection; stable on partial arcs.

    Like the ellipse fit, the Kasa fit is similarity-invariant, so each hole is normalised once.
    Angles are 0 and both axes the diameter.
    """
    return _fit(points, valid, True, iterations, min_points, floor_px, k_sigma)
