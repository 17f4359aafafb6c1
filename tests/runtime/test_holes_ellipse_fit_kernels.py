"""The numba kernels of the robust ellipse / circle fit give what the plain formulations give.

The oracle below is the robust fit written plainly with numpy, one hole at a time: Halir-Flusser's
eigenproblem solved by LAPACK's eig, the inlier rules by a stable argsort and np.median, the geometry
from the conic's center equations and the eigen-decomposition of its quadratic form. The kernels'
shortcuts (closed-form eigenvector with its fallback, rank counting on integer keys) are checked
against the same plain versions, including the awkward inputs that send them to their fallbacks.
"""

from __future__ import annotations

import numpy as np
import pytest

from holevision.runtime.holes import ellipse_fit

C1_INV_ROWS = np.array([[0.5], [-1.0], [0.5]])       # inv(C1) @ M == M[[2, 1, 0]] * C1_INV_ROWS


def _ellipse_points(rng, n, k, noise):
    angles = rng.uniform(0, 2 * np.pi, (n, k))
    a = rng.uniform(2, 40, n)
    b = a * rng.uniform(0.3, 1.0, n)
    theta = rng.uniform(0, np.pi, n)
    x, y = a[:, None] * np.cos(angles), b[:, None] * np.sin(angles)
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    points = np.stack([x * c - y * s + rng.uniform(0, 2000, (n, 1)), x * s + y * c + rng.uniform(0, 1200, (n, 1))],
                      axis=2)
    return points + rng.normal(size=points.shape) * noise


def _normalised(points, valid):
    used = points[valid]
    mean = used.mean(axis=0) if len(used) else np.zeros(2)
    scale = np.sqrt(((used - mean) ** 2).sum(axis=1).mean()) if len(used) else 0.0
    scale = scale if scale > 1e-9 else 1.0
    return (points - mean) / scale, mean, scale


def _reduced(x, y):
    """Halir-Flusser: the linear part T of the conic and the reduced scatter S1 - S2 S3^-1 S2^T."""
    d1 = np.stack([x * x, x * y, y * y], axis=1)
    d2 = np.stack([x, y, np.ones_like(x)], axis=1)
    s1, s2, s3 = d1.T @ d1, d1.T @ d2, d2.T @ d2 + np.eye(3) * 1e-12
    t = -np.linalg.solve(s3, s2.T)
    return t, s1 + s2 @ t


def _lapack_eigenvector(reduced):
    vecs = np.real(np.linalg.eig(reduced[[2, 1, 0]] * C1_INV_ROWS)[1])
    cond = 4 * vecs[0] * vecs[2] - vecs[1] ** 2
    return vecs[:, np.argmax(cond)], cond.max() > 0


def _geometry(conic):
    """Center, full axes (major, minor), major-axis angle (deg) of a pixel conic, plainly."""
    a, b, c, d, e, f = conic
    quadratic = np.array([[a, b / 2], [b / 2, c]])
    if not abs(np.linalg.det(quadratic)) > 0:
        return np.full(2, np.nan), np.full(2, np.nan), np.nan, False
    center = np.linalg.solve(2 * quadratic, [-d, -e])
    f0 = f + 0.5 * (d * center[0] + e * center[1])
    lams, vecs = np.linalg.eigh(quadratic)
    semi = np.sqrt(-f0 / lams)
    major = np.argmax(semi)
    angle = np.degrees(np.arctan2(vecs[1, major], vecs[0, major])) % 180.0
    ok = np.all(np.isfinite(semi)) and lams[0] * lams[1] > 0
    return center, 2 * np.sort(semi)[::-1], angle, ok


def _next_inliers(dist, valid, inliers, round_index, min_points, floor_px, k_sigma):
    if round_index < ellipse_fit.TRIM_ROUNDS:
        rank = np.empty(len(dist), int)
        rank[np.argsort(np.where(valid, dist, np.inf), kind="stable")] = np.arange(len(dist))
        new = valid & (rank < np.ceil(ellipse_fit.TRIM_KEEP * valid.sum()))
    else:
        median = np.median(dist[inliers]) if inliers.any() else np.inf
        new = valid & (dist <= max(k_sigma * 1.4826 * median, floor_px))
    return new if new.sum() >= min_points else inliers


def _robust_plain(points, valid, fit, distance, iterations, min_points, floor_px, k_sigma):
    """The robust loop, one hole: the last fit's model, its distances, the inliers, fit ok, enough."""
    p, mean, scale = _normalised(points, valid)
    inliers = valid.copy()
    for round_index in range(iterations + ellipse_fit.TRIM_ROUNDS):
        model, fit_ok = fit(p[inliers, 0], p[inliers, 1])
        dist = distance(model, p[:, 0], p[:, 1]) * scale
        enough = inliers.sum() >= min_points
        new = _next_inliers(dist, valid, inliers, round_index, min_points, floor_px, k_sigma)
        done = round_index >= ellipse_fit.TRIM_ROUNDS and np.array_equal(new, inliers)
        inliers = new
        if done:
            break
    residual = np.sqrt((dist[inliers] ** 2).sum() / max(inliers.sum(), 1))
    return model, mean, scale, inliers, residual, fit_ok, enough


def _fit_ellipses_plain(points, valid, iterations=4, min_points=6, floor_px=0.15, k_sigma=3.0):
    def fit(x, y):
        t, reduced = _reduced(x, y)
        a1, ok = _lapack_eigenvector(reduced)
        return np.concatenate([a1, t @ a1]), ok

    def sampson(conic, x, y):
        a, b, c, d, e, f = conic
        value = a * x * x + b * x * y + c * y * y + d * x + e * y + f
        return np.abs(value) / np.hypot(2 * a * x + b * y + d, b * x + 2 * c * y + e)

    out = []
    for hole in range(len(points)):
        conic, mean, s, inliers, residual, fit_ok, enough = _robust_plain(
            points[hole], valid[hole], fit, sampson, iterations, min_points, floor_px, k_sigma)
        # x' = (x - m) / s: substitute into the normalised conic.
        a, b, c, d, e, f = conic
        h = np.array([[a, b / 2, d / 2], [b / 2, c, e / 2], [d / 2, e / 2, f]])
        similarity = np.array([[1 / s, 0, -mean[0] / s], [0, 1 / s, -mean[1] / s], [0, 0, 1]])
        hp = similarity.T @ h @ similarity
        pixel = np.array([hp[0, 0], 2 * hp[0, 1], hp[1, 1], 2 * hp[0, 2], 2 * hp[1, 2], hp[2, 2]])
        with np.errstate(all="ignore"):
            center, axes, angle, geometric_ok = _geometry(pixel / np.linalg.norm(pixel))
        ok = fit_ok and enough and geometric_ok and inliers.sum() >= min_points
        out.append((center, axes, angle, residual, inliers, ok))
    return [np.array(v) for v in zip(*out)]


def _fit_circles_plain(points, valid, iterations=4, min_points=4, floor_px=0.15, k_sigma=3.0):
    def fit(x, y):
        design = np.stack([x, y, np.ones_like(x)], axis=1)
        sol = np.linalg.solve(design.T @ design + np.eye(3) * 1e-12, -design.T @ (x * x + y * y))
        cx, cy = -sol[0] / 2, -sol[1] / 2
        return np.array([cx, cy, np.sqrt(max(cx * cx + cy * cy - sol[2], 0))]), True

    def distance(circle, x, y):
        return np.abs(np.hypot(x - circle[0], y - circle[1]) - circle[2])

    out = []
    for hole in range(len(points)):
        circle, mean, s, inliers, residual, _, _ = _robust_plain(
            points[hole], valid[hole], fit, distance, iterations, min_points, floor_px, k_sigma)
        center, radius = circle[:2] * s + mean, circle[2] * s
        out.append((center, radius, residual, inliers, inliers.sum() >= min_points and radius > 0))
    return [np.array(v) for v in zip(*out)]


def _angle_difference(a, b):
    d = np.abs(a - b) % 180.0
    return np.minimum(d, 180.0 - d)


@pytest.mark.parametrize("holes", [1, 3, 40])
def test_robust_ellipse_fit_matches_the_plain_loop(holes):
    rng = np.random.default_rng(holes)
    points = _ellipse_points(rng, holes, 128, 0.1)
    points[:, ::9] += rng.uniform(1, 4, (holes, len(range(0, 128, 9)), 2))     # outliers
    valid = rng.random(points.shape[:2]) > 0.1
    points[~valid] = np.nan                                  # invalid points are never read
    if holes > 1:
        valid[0, 5:] = False                                 # too few points: not ok
        valid[1] = False                                     # no points at all
    fit = ellipse_fit.fit_ellipses_robust(points, valid)
    centers, axes, angles, residual, inliers, ok = _fit_ellipses_plain(points, valid)
    assert fit.centers.shape == (holes, 2) and fit.inliers.shape == valid.shape and fit.ok.dtype == bool
    assert np.array_equal(fit.ok, ok)
    assert ok[2:].all() and (holes == 1 or not ok[:2].any())
    assert np.array_equal(fit.inliers, inliers)
    assert np.abs(fit.centers[ok] - centers[ok]).max() < 1e-8
    assert np.abs(fit.axes[ok] - axes[ok]).max() < 1e-8
    assert _angle_difference(fit.angles[ok], angles[ok]).max() < 1e-6
    assert np.abs(fit.residual[ok] - residual[ok]).max() < 1e-10
    assert np.all((fit.angles[ok] >= 0) & (fit.angles[ok] < 180))
    if holes > 1:                                            # no points: NaN geometry, nothing inlier
        assert np.isnan(fit.centers[1]).all() and not fit.inliers[1].any() and fit.residual[1] == 0


def test_robust_fit_options_and_iteration_limit():
    rng = np.random.default_rng(7)
    points = _ellipse_points(rng, 12, 64, 0.3)
    points[:, ::5] += rng.uniform(2, 6, (12, len(range(0, 64, 5)), 2))
    valid = np.ones(points.shape[:2], bool)
    for options in ({"iterations": 0}, {"iterations": 1, "k_sigma": 1.0}, {"floor_px": 2.0, "min_points": 20}):
        fit = ellipse_fit.fit_ellipses_robust(points, valid, **options)
        centers, axes, _, residual, inliers, ok = _fit_ellipses_plain(points, valid, **options)
        assert np.array_equal(fit.ok, ok) and np.array_equal(fit.inliers, inliers)
        assert np.abs(fit.centers[ok] - centers[ok]).max() < 1e-8
        assert np.abs(fit.residual[ok] - residual[ok]).max() < 1e-10


def test_circle_fit_matches_the_plain_loop():
    rng = np.random.default_rng(8)
    t = rng.uniform(0, np.pi * rng.uniform(0.4, 2.0, (20, 1)), (20, 96))     # arcs of 70 to 360 degrees
    centers = rng.uniform(100, 900, (20, 2))
    radius = rng.uniform(3, 60, 20)
    points = centers[:, None, :] + radius[:, None, None] * np.stack([np.cos(t), np.sin(t)], axis=2)
    points += rng.normal(0, 0.05, points.shape)
    points[:, ::7] += rng.uniform(1, 3, (20, len(range(0, 96, 7)), 2))
    valid = rng.random(points.shape[:2]) > 0.05
    valid[0, 3:] = False
    fit = ellipse_fit.fit_circles_robust(points, valid)
    plain_centers, plain_radius, residual, inliers, ok = _fit_circles_plain(points, valid)
    assert np.array_equal(fit.ok, ok) and not ok[0] and ok[1:].all()
    assert np.array_equal(fit.inliers, inliers)
    assert np.abs(fit.centers - plain_centers).max() < 1e-9
    assert np.abs(fit.axes - 2 * plain_radius[:, None]).max() < 1e-9
    assert np.abs(fit.residual - residual).max() < 1e-12
    assert np.all(fit.angles == 0)
    assert np.abs(fit.centers[1:] - centers[1:]).max() < 0.2


def test_trim_rounds_run_even_when_they_agree():
    """With min_points above the trim's 75 %, both trim rounds keep every point (the old set stays):
    the inlier set does not change, yet the k-sigma round after them must still run."""
    rng = np.random.default_rng(9)
    points = _ellipse_points(rng, 4, 128, 0.05)
    points[:, 110:] += rng.uniform(5, 10, (4, 18, 2))
    valid = np.ones(points.shape[:2], bool)
    fit = ellipse_fit.fit_ellipses_robust(points, valid, min_points=100)
    centers, _, _, _, inliers, ok = _fit_ellipses_plain(points, valid, min_points=100)
    assert ok.all() and np.array_equal(fit.ok, ok) and np.array_equal(fit.inliers, inliers)
    assert (inliers.sum(axis=1) < 128).all()
    assert np.abs(fit.centers - centers).max() < 1e-8


def test_conic_geometry_ignores_the_conic_sign():
    """The fallback eigenvector comes with either sign: the geometry must not depend on it."""
    geometry, flipped = np.empty(5), np.empty(5)
    rng = np.random.default_rng(11)
    for _ in range(50):
        a, b = rng.uniform(2, 30, 2)
        theta = rng.uniform(0, np.pi)
        c, s = np.cos(theta), np.sin(theta)
        # Unit-frame conic of an ellipse with semi-axes a, b rotated by theta, centered at the origin.
        q = np.array([[c, -s], [s, c]]) @ np.diag([1 / a**2, 1 / b**2]) @ np.array([[c, s], [-s, c]])
        conic = np.array([q[0, 0], 2 * q[0, 1], q[1, 1], 0.0, 0.0, -1.0])
        mean = rng.uniform(0, 1000, 2)
        assert ellipse_fit._conic_geometry(conic, mean[0], mean[1], 1.0, geometry)
        assert ellipse_fit._conic_geometry(-conic, mean[0], mean[1], 1.0, flipped)
        expected_angle = np.degrees(theta if a >= b else theta + np.pi / 2) % 180
        for g in (geometry, flipped):
            assert np.abs(g[:2] - mean).max() < 1e-9
            assert np.abs(g[2:4] - 2 * np.array([max(a, b), min(a, b)])).max() < 1e-9
            assert _angle_difference(g[4], expected_angle) < 1e-7


def test_empty_input():
    for fit in (ellipse_fit.fit_ellipses_robust(np.zeros((0, 8, 2)), np.zeros((0, 8), bool)),
                ellipse_fit.fit_circles_robust(np.zeros((0, 8, 2)), np.zeros((0, 8), bool))):
        assert fit.centers.shape == (0, 2) and fit.axes.shape == (0, 2) and fit.angles.shape == (0,)
        assert fit.inliers.shape == (0, 8) and fit.ok.shape == (0,) and fit.residual.shape == (0,)


@pytest.mark.parametrize("noise", [0.0, 1e-6, 0.05, 1.0, 20.0])      # 20 px: poor fits, for Newton
def test_closed_form_eigenvector_equals_lapack(noise):
    rng = np.random.default_rng(3)
    points = _ellipse_points(rng, 300, 64, noise)
    closed, general = np.zeros(3), np.zeros(3)
    refused = 0
    for hole in points:
        p, _, _ = _normalised(hole, np.ones(len(hole), bool))
        _, reduced = _reduced(p[:, 0], p[:, 1])
        lapack, lapack_ok = _lapack_eigenvector(reduced)
        assert ellipse_fit._ellipse_eigenvector_general(reduced, general) == lapack_ok
        assert np.abs(general - lapack).max() < 1e-12
        if not ellipse_fit._ellipse_eigenvector(reduced, closed):
            refused += 1                      # exact points: reduced is singular, the fallback takes it
            assert not closed.any()
            continue
        assert lapack_ok
        assert np.abs(closed - np.sign(closed @ lapack) * lapack).max() < 1e-9
    assert refused < 0.05 * len(points)


def test_closed_form_eigenvector_refuses_degenerate_point_sets():
    closed = np.zeros(3)
    line = np.arange(32.0)
    _, collinear = _reduced(line / 10 - 1.5, 2 * line / 10 - 3)
    assert not ellipse_fit._ellipse_eigenvector(collinear, closed)
    assert not ellipse_fit._ellipse_eigenvector(np.zeros((3, 3)), closed)
    # The fallback neither raises on complex eigenvalues (inv(C1) @ r a rotation here) nor on NaN.
    rotation = np.array([[0.0, 0.0, 2.0], [-1.0, 0.0, 0.0], [0.0, -2.0, 0.0]])
    ellipse_fit._ellipse_eigenvector_general(rotation, closed)
    assert np.isfinite(closed).all()
    assert not ellipse_fit._ellipse_eigenvector_general(np.full((3, 3), np.nan), closed)
    # ...and the fit falls back to LAPACK's eig for them: points exactly on an ellipse (reduced is
    # singular) still give that ellipse; too few points give no valid fit.
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    exact = np.repeat(np.stack([300 + 20 * np.cos(t), 200 + 10 * np.sin(t)], axis=1)[None], 2, axis=0)
    valid = np.ones((2, 40), bool)
    valid[1, ::8] = False
    valid[1, 1::8] = False
    valid[1, 5:] = False
    fit = ellipse_fit.fit_ellipses_robust(exact, valid)
    assert fit.ok.tolist() == [True, False]
    assert np.abs(fit.centers[0] - (300, 200)).max() < 1e-9 and np.abs(fit.axes[0] - (40, 20)).max() < 1e-9


def test_kth_smallest_and_stable_rank_cut():
    rng = np.random.default_rng(10)
    keys = np.empty(50, np.int64)
    for row in range(300):
        values = np.round(rng.random(50) * rng.choice([20, 1e6])) / 20         # many ties, or none
        values[rng.random(50) > 0.8] = np.inf
        if row % 3 == 0:
            values[rng.integers(0, 50, 3)] = np.nan                            # NaN sorts last
        if row % 5 == 0:
            values[rng.random(50) > 0.5] = 0.0
        use = rng.random(50) > 0.3
        with_inf = np.where(use, values, np.inf)
        order = np.argsort(with_inf, kind="stable")
        rank = np.empty(50, int)
        rank[order] = np.arange(50)
        ellipse_fit._sort_keys(values, use, keys)
        for k in (0, 7, 25, 49):
            got, expected = np.int64(ellipse_fit._kth_smallest(keys, k)).view(np.float64), np.sort(with_inf)[k]
            assert got == expected or (np.isnan(got) and np.isnan(expected))
        keep = int(rng.integers(0, 51))
        out = np.empty(50, bool)
        ellipse_fit._keep_smallest(values, use, keep, out, keys)
        assert np.array_equal(out, use & (rank < keep))       # never an unused entry, even after NaN
        # The median as numpy's row median of the used entries would have it (NaN last).
        count = use.sum()
        ordered = np.sort(with_inf)
        expected = 0.5 * (ordered[max((count - 1) // 2, 0)] + ordered[count // 2]) if count else np.inf
        got = ellipse_fit._median(values, use, keys)
        assert got == expected or (np.isnan(got) and np.isnan(expected))


def test_points_that_are_not_finite_are_never_inliers_and_bad_shapes_are_refused():
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    points = np.stack([50 + 10 * np.cos(angles), 40 + 6 * np.sin(angles)], axis=1)[None].repeat(2, axis=0)
    valid = np.zeros((2, 16), bool)
    valid[:, :12] = True
    points[:, 0, 0] = np.nan                   # a "valid" point that cannot be fitted
    for fit in (ellipse_fit.fit_ellipses_robust(points, valid), ellipse_fit.fit_circles_robust(points, valid)):
        assert not fit.inliers[:, 0].any() and not fit.inliers[:, 12:].any()
    ellipse = ellipse_fit.fit_ellipses_robust(points, valid)
    assert ellipse.ok.all() and np.allclose(ellipse.centers, (50, 40)) and np.allclose(ellipse.axes, (20, 12))
    with pytest.raises(ValueError, match="valid"):
        ellipse_fit.fit_ellipses_robust(points, np.ones((2, 17), bool))
    with pytest.raises(ValueError, match="iterations"):
        ellipse_fit.fit_circles_robust(points, valid, iterations=-2)
