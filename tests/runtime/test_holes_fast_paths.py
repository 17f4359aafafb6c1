"""The fast paths of hole extraction give what the plain formulations give.

Extraction was made fast by replacing general numpy/LAPACK calls with cheaper equivalents (a
closed-form eigenvector, OpenCV row reductions, a uint32 max-pool, a normalised frame per hole,
fitting only the holes whose inliers still change). Each is checked here against the plain version
it replaced, including the awkward inputs that send it to its fallback.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from holevision.runtime.holes import edges, ellipse_fit, instances


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


def _reduced_scatter(points, weights):
    frame = ellipse_fit._Normalised.of(points, weights)
    sums = (frame.monomials @ weights[..., None])[..., 0]
    scatter = sums[:, ellipse_fit._SCATTER_INDEX]
    s3 = scatter[:, 3:, 3:] + np.eye(3) * 1e-12
    t = -np.linalg.solve(s3, np.swapaxes(scatter[:, :3, 3:], 1, 2))
    return scatter[:, :3, :3] + scatter[:, :3, 3:] @ t


@pytest.mark.parametrize("noise", [0.0, 1e-6, 0.05, 1.0])
def test_closed_form_eigenvector_equals_lapack(noise):
    rng = np.random.default_rng(3)
    points = _ellipse_points(rng, 300, 64, noise)
    reduced = _reduced_scatter(points, np.ones(points.shape[:2]))
    closed, ok = ellipse_fit._ellipse_eigenvector(reduced)
    general, ok_general = ellipse_fit._ellipse_eigenvector_general(reduced)
    general /= np.linalg.norm(general, axis=1, keepdims=True)
    assert ok.mean() > 0.95 and np.all(ok_general[ok])
    sign = np.sign((closed * general).sum(axis=1))[:, None]
    assert np.abs(closed[ok] - sign[ok] * general[ok]).max() < 1e-9


def test_closed_form_eigenvector_refuses_degenerate_point_sets():
    rng = np.random.default_rng(4)
    points = _ellipse_points(rng, 3, 32, 0.01)
    weights = np.ones(points.shape[:2])
    points[0] = np.stack([np.arange(32.0), 2 * np.arange(32.0)], axis=1)   # collinear
    weights[1] = 0                                                          # no points at all
    _, ok = ellipse_fit._ellipse_eigenvector(_reduced_scatter(points, weights))
    assert not ok[:2].any() and ok[2]
    # ...and the fit falls back to LAPACK for them instead of failing.
    conic, _ = ellipse_fit.conic_ellipse_direct(points, weights)
    assert np.isfinite(conic[2]).all()


def _fit_ellipses_plain(points, valid, iterations=4, min_points=6, floor_px=0.15, k_sigma=3.0):
    """The robust loop as first written: every hole refitted every round, in pixel coordinates."""
    inliers = valid.copy()
    safe = np.where(valid[..., None], points, 0.0)
    for round_index in range(iterations + ellipse_fit.TRIM_ROUNDS):
        enough = inliers.sum(axis=1) >= min_points
        conic, ok = ellipse_fit.conic_ellipse_direct(safe, inliers.astype(np.float64))
        ok &= enough
        dist = ellipse_fit.sampson_distance(conic, safe)
        new = ellipse_fit._next_inliers(dist, valid, inliers, round_index, min_points, floor_px, k_sigma)
        if round_index >= ellipse_fit.TRIM_ROUNDS and np.array_equal(new, inliers):
            break
        inliers = new
    centers, axes, angles, geometric_ok = ellipse_fit.conic_to_geometry(conic)
    return centers, axes, inliers, ok & geometric_ok & (inliers.sum(axis=1) >= min_points)


@pytest.mark.parametrize("holes", [3, 40])          # below and above CLOSED_FORM_MIN_ROWS
def test_robust_ellipse_fit_matches_the_plain_loop(holes):
    rng = np.random.default_rng(holes)
    points = _ellipse_points(rng, holes, 128, 0.1)
    points[:, ::9] += rng.uniform(1, 4, (holes, len(range(0, 128, 9)), 2))     # outliers
    valid = rng.random(points.shape[:2]) > 0.1
    valid[0, 5:] = False                                     # too few points: not ok
    fit = ellipse_fit.fit_ellipses_robust(points, valid)
    centers, axes, inliers, ok = _fit_ellipses_plain(points, valid)
    assert np.array_equal(fit.ok, ok) and not fit.ok[0]
    assert np.array_equal(fit.inliers[ok], inliers[ok])
    assert np.abs(fit.centers[ok] - centers[ok]).max() < 1e-8
    assert np.abs(fit.axes[ok] - axes[ok]).max() < 1e-8


def test_circle_fit_on_arcs_and_empty_input():
    rng = np.random.default_rng(5)
    t = np.linspace(0, np.pi / 2, 40)
    centers = rng.uniform(100, 900, (6, 2))
    radius = rng.uniform(5, 50, 6)
    points = centers[:, None, :] + radius[:, None, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    points += rng.normal(0, 0.02, points.shape)
    valid = np.ones(points.shape[:2], bool)
    fit = ellipse_fit.fit_circles_robust(points, valid)
    assert fit.ok.all()
    assert np.abs(fit.centers - centers).max() < 0.1
    assert np.abs(fit.axes[:, 0] - 2 * radius).max() < 0.2
    empty = ellipse_fit.fit_circles_robust(np.zeros((0, 8, 2)), np.zeros((0, 8), bool))
    assert empty.centers.shape == (0, 2) and empty.ok.shape == (0,)


@pytest.mark.parametrize("shape", [(1200, 1920), (1023, 1281), (517, 514)])
def test_coarse_any_is_a_block_max_pool(shape):
    rng = np.random.default_rng(shape[1])
    mask = (rng.random(shape) > 0.999).view(np.uint8)
    height, width = shape
    padded = cv2.copyMakeBorder(mask, 0, -height % 4, 0, -width % 4, cv2.BORDER_CONSTANT, value=0)
    expected = padded.reshape(padded.shape[0] // 4, 4, padded.shape[1] // 4, 4).max(axis=(1, 3))
    assert np.array_equal(instances._coarse_any(mask), expected)
    assert np.array_equal(instances._coarse_any(mask[:, 1:]), cv2.copyMakeBorder(
        mask[:, 1:], 0, -height % 4, 0, -(width - 1) % 4, cv2.BORDER_CONSTANT, value=0)
        .reshape(-1, 4, (width - 1 + (-(width - 1) % 4)) // 4, 4).max(axis=(1, 3)))


def test_components_match_full_frame_labelling():
    rng = np.random.default_rng(6)
    mask = (cv2.GaussianBlur(rng.random((700, 900)).astype(np.float32), (0, 0), 3) > 0.53).view(np.uint8)
    mask = np.ascontiguousarray(mask)
    found = sorted((x, y, part.shape, int(part.sum())) for x, y, part, _, _ in instances._components(mask, 1))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    expected = sorted((int(x), int(y), (int(h), int(w)), int(a)) for x, y, w, h, a in stats[1:])
    assert found == expected


def test_median_rows_is_nanmedian_ignoring_infinities():
    rng = np.random.default_rng(7)
    values = rng.normal(size=(30, 17)).astype(np.float32)
    values[rng.random(values.shape) > 0.7] = np.nan
    values[rng.random(values.shape) > 0.9] = -np.inf
    values[3] = np.nan
    with pytest.warns(RuntimeWarning):          # numpy warns about the all-NaN row
        expected = np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=1)
    got = edges._median_rows(values)
    assert got.dtype == np.float32
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-6)


def test_nearest_to_centre_is_argmin_of_the_distance():
    rng = np.random.default_rng(8)
    candidate = rng.random((20, 16, 37)) > 0.8
    candidate[0, 0] = False
    code = np.abs(np.arange(37) - 18)
    index, found = edges._nearest_to_centre(candidate, code)
    distance = np.where(candidate, code, np.inf)
    assert np.array_equal(found, np.isfinite(distance.min(axis=2)))
    assert np.array_equal(index[found], np.argmin(distance, axis=2)[found])


def test_gradient_centroid_matches_windowed_sums():
    rng = np.random.default_rng(9)
    grad = rng.normal(size=(4, 8, 29)).astype(np.float32)
    ok = rng.random(grad.shape) > 0.1
    index = rng.integers(0, 29, (4, 8))
    position, variance = edges._gradient_centroid(grad, ok, index)
    half = edges.CENTROID_HALF_SAMPLES
    for (i, j), start in np.ndenumerate(index):
        centre = float(start)
        for _ in range(2):
            c = int(np.clip(np.rint(centre), 0, 28))
            at = np.arange(c - half, c + half + 1)
            inside = (at >= 0) & (at < 29)
            w = np.where(inside, grad[i, j, np.clip(at, 0, 28)], 0.0).astype(np.float64)
            w = np.where(inside & ok[i, j, np.clip(at, 0, 28)] & (w > 0), w, 0.0)
            if w.sum() <= 0 or not np.isfinite(centre):
                centre = np.nan
                break
            mean = (w * (at - c)).sum() / w.sum()
            var = (w * (at - c - mean) ** 2).sum() / w.sum() * edges.STEP_PX ** 2
            centre = c + mean
        if np.isnan(centre):
            assert np.isnan(position[i, j])
        else:
            assert position[i, j] == pytest.approx(centre, abs=1e-9)
            assert variance[i, j] == pytest.approx(var, abs=1e-9)


def test_ray_samples_inside_mask():
    """All rays inside: no per-sample mask; otherwise the mask is the per-sample test."""
    angles = edges.ray_angles(32)
    offsets = (np.arange(21) - 10) * 0.5
    expected = np.full((2, 32), 12.0)
    _, map_x, map_y, inside = edges._ray_samples(np.array([[50.0, 50.0], [80.0, 40.0]]), expected, offsets,
                                                 angles, 100, 100)
    assert inside is None
    assert map_x.dtype == np.float32 and map_x.shape == (64, 21)
    centers = np.array([[50.0, 50.0], [8.0, 95.0]])
    radii, map_x, map_y, inside = edges._ray_samples(centers, expected, offsets, angles, 100, 100)
    xs = centers[:, 0, None, None] + radii * np.cos(angles)[None, :, None]
    ys = centers[:, 1, None, None] + radii * np.sin(angles)[None, :, None]
    assert np.array_equal(inside, (xs >= 0) & (xs <= 99) & (ys >= 0) & (ys <= 99))
    assert inside[0].all() and not inside[1].all()


def test_edge_points_near_the_border():
    """A hole cut by the border: rays that leave the image are dropped, the others find its edge."""
    from holevision.runtime.benchmarks.hole_scenes import render_holes

    angles = edges.ray_angles(64)
    scene = render_holes((200, 200), [(12.3, 100.7)], [30.0], seed=1)
    found = edges.radial_edge_points(scene.image, np.array([[12.3, 100.7]]), np.array([15.0]), np.array([3.0]),
                                     angles)
    kept = found.valid[0]
    assert 20 < kept.sum() < 64
    assert np.all(found.points[0, kept, 0] >= 0)
    radius = np.linalg.norm(found.points[0, kept] - (12.3, 100.7), axis=1)
    assert abs(np.median(radius) - 15.0) < 0.1


def test_smallest_is_a_stable_rank_cut():
    rng = np.random.default_rng(10)
    values = np.round(rng.random((40, 50)) * 20) / 20          # many ties
    values[rng.random(values.shape) > 0.8] = np.inf
    values[5, 3] = np.nan                                      # NaN rows take the argsort path
    keep = rng.integers(0, 51, 40)
    keep[0] = 0
    order = np.argsort(values, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(40)[:, None], order] = np.arange(50)
    assert np.array_equal(ellipse_fit._smallest(values, keep), rank < keep[:, None])
    values[5, 3] = 1.0
    rank[np.arange(40)[:, None], np.argsort(values, axis=1, kind="stable")] = np.arange(50)
    assert np.array_equal(ellipse_fit._smallest(values, keep), rank < keep[:, None])


def test_foreign_points_follow_the_label_map():
    """Instances keep per-box masks; `foreign` must say what the full label map says, also where filled
    shapes overlap (a disc inside a ring: the ring's filled shape covers it, the later label wins) and
    for touching holes."""
    prob = np.zeros((120, 160), np.float32)
    cv2.circle(prob, (50, 60), 30, 1.0, thickness=6)          # a ring...
    cv2.circle(prob, (50, 60), 8, 1.0, thickness=-1)          # ...with a disc in its hole
    cv2.circle(prob, (115, 60), 14, 1.0, thickness=-1)        # two touching discs
    cv2.circle(prob, (138, 60), 10, 1.0, thickness=-1)
    prob = cv2.GaussianBlur(prob, (0, 0), 1.0)
    found = instances.find_instances(prob, threshold=0.5, shape_filter=False)
    assert len(found) >= 4
    labels = found.labels
    rng = np.random.default_rng(11)
    points = rng.uniform((-5, -5), (165, 125), (len(found), 400, 2))
    col = np.clip(np.rint(points[..., 0]), 0, 159).astype(int)
    row = np.clip(np.rint(points[..., 1]), 0, 119).astype(int)
    hit = labels[row, col]
    expected = (hit != 0) & (hit != found.label_ids[:, None])
    assert expected.any()
    assert np.array_equal(found.foreign(points), expected)


def test_keep_freed_memory_is_applied_once_and_can_be_switched_off():
    import subprocess
    import sys

    code = ("from holevision.runtime.holes.memory import keep_freed_memory as k; "
            "print(k(), k())")
    for env_value, expected in (("1", None), ("0", "False False")):
        env = {**__import__("os").environ, "HOLEVISION_KEEP_FREED_MEMORY": env_value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        first, second = out.stdout.split()
        assert first == second                       # decided once per process
        if expected is not None:
            assert out.stdout.strip() == expected
        elif sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
            assert first == "True"
