"""The numba kernels of holes.edges give what a plain per-ray loop of the same method gives.

The oracles below sample every ray over its whole length with the same bilinear formula (the kernels
sample only what a hole needs, and skip a centroid pass that would repeat the previous one), and
follow the method step by step in Python. Results must agree to rounding; the discrete choices
(peak, validity, polarity) exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from holevision.runtime.benchmarks.hole_scenes import probability_from_image, render_holes
from holevision.runtime.holes import edges

# --------------------------------------------------------------------------------------------------
# Oracles


def _grey_image(image):
    """Grey value of every pixel, summed in the kernels' order (exact: the float32 weights times 8-bit
    values are exact in float64)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.float64)
    w = edges.BGR_TO_GREY.astype(np.float64)
    return w[0] * image[..., 0] + w[1] * image[..., 1] + w[2] * image[..., 2]


def _bilinear(grey, x, y):
    """(value, inside): bilinear interpolation, the far neighbour clamped to the last row / column."""
    height, width = grey.shape
    if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
        return 0.0, False
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    top = grey[y0, x0] + fx * (grey[y0, x1] - grey[y0, x0])
    bottom = grey[y1, x0] + fx * (grey[y1, x1] - grey[y1, x0])
    return top + fy * (bottom - top), True


def _ray(grey, center, expected, angle_cos, angle_sin, half, step):
    profile, inside = np.zeros(2 * half + 1), np.zeros(2 * half + 1, bool)
    for s in range(2 * half + 1):
        r = max(expected + (s - half) * step, 0.0)
        profile[s], inside[s] = _bilinear(grey, center[0] + r * angle_cos, center[1] + r * angle_sin)
    return profile, inside


def _median_finite(values):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else np.nan


def oracle_edge_points(image, centers, expected_radii, half_widths, angles, *, polarity=None,
                       curvature_correction=True):
    grey = _grey_image(image)
    n, k = len(centers), len(angles)
    expected = np.broadcast_to(np.asarray(expected_radii, float).reshape(n, -1), (n, k))
    cos, sin = np.cos(angles), np.sin(angles)
    points, valid = np.zeros((n, k, 2)), np.zeros((n, k), bool)
    polarity_out = np.ones(n) if polarity is None else np.asarray(polarity, float).copy()
    step, pad = edges.STEP_PX, edges.CENTROID_HALF_SAMPLES
    for i in range(n):
        hw = max(float(half_widths[i]), 0.0)
        half = min(edges.HALF_SAMPLES, int(np.ceil(hw / step)) + pad + 2)
        samples = 2 * half + 1
        w = min(half, int(np.floor((hw + 1e-9) / step)))
        in_window = np.abs(np.arange(samples) - half) <= w
        rays = [_ray(grey, centers[i], expected[i, j], cos[j], sin[j], half, step) for j in range(k)]
        if polarity is None:
            diffs = []
            for profile, inside in rays:
                usable = inside & in_window
                inner = usable & (np.arange(samples) <= half - 2)
                outer = usable & (np.arange(samples) >= half + 2)
                diffs.append(profile[outer].mean() - profile[inner].mean() if inner.any() and outer.any() else np.nan)
            difference = _median_finite(diffs)
            polarity_out[i] = 1.0 if np.isnan(difference) or difference >= 0 else -1.0
        sign = polarity_out[i] / (2 * step)
        grads, oks = [], []
        for profile, inside in rays:
            grad = np.zeros(samples)
            ok = np.zeros(samples, bool)
            for s in range(1, samples - 1):
                ok[s] = inside[s - 1] and inside[s] and inside[s + 1]
                grad[s] = (profile[s + 1] - profile[s - 1]) * sign
            grads.append(grad)
            oks.append(ok)
        g = [np.where(ok & in_window, grad, -np.inf) for grad, ok in zip(grads, oks)]
        ray_max = [gj.max() for gj in g]
        level = _median_finite(ray_max)
        level = 0.0 if np.isnan(level) else level
        for j in range(k):
            gj, floor = g[j], max(0.35 * ray_max[j], 0.3 * level)
            candidates = [s for s in range(2, samples - 2)
                          if gj[s] > gj[s - 1] and gj[s] >= gj[s + 1] and gj[s] > floor]
            index = min(candidates, key=lambda s: (abs(s - half), s)) if candidates else -1
            position, variance = float(index), np.nan
            weights = np.where(oks[j] & (grads[j] > 0), grads[j], 0.0)
            for _ in range(2 if index >= 0 else 0):
                c = min(max(int(np.rint(position)), 0), samples - 1)
                at = np.arange(max(c - pad, 0), min(c + pad, samples - 1) + 1)
                total = weights[at].sum()
                if not total > 0:
                    position = np.nan
                    break
                mean = (weights[at] * (at - c)).sum() / total
                variance = ((weights[at] * (at - c) ** 2).sum() / total - mean ** 2) * step ** 2
                position = c + mean
            found = index >= 0 and np.isfinite(position)
            at = position if found else float(index if index >= 0 else half)
            rounded = np.rint(at)
            r = max(expected[i, j] + (rounded - half) * step, 0.0) + (at - rounded) * step
            if curvature_correction and found:
                blur2 = variance - edges.PROFILE_VARIANCE_PX2
                r += (0.0 if np.isnan(blur2) else min(max(blur2, 0.0), 9.0)) / (2 * max(r, 1.0))
            points[i, j] = centers[i, 0] + r * cos[j], centers[i, 1] + r * sin[j]
            valid[i, j] = found and r > 0.5
    return points, valid, polarity_out


def oracle_outline_points(prob, threshold, centers, expected_radii, half_widths, angles):
    grey = np.asarray(prob, dtype=np.float64)
    n, k = len(centers), len(angles)
    expected = np.broadcast_to(np.asarray(expected_radii, float).reshape(n, -1), (n, k))
    cos, sin = np.cos(angles), np.sin(angles)
    points, valid = np.zeros((n, k, 2)), np.zeros((n, k), bool)
    for i in range(n):
        hw = max(float(half_widths[i]), 0.0)
        half = min(edges.HALF_SAMPLES, int(np.ceil(hw)) + 1)
        w = min(half, int(np.floor(hw + 1e-9)))
        for j in range(k):
            p, inside = _ray(grey, centers[i], expected[i, j], cos[j], sin[j], half, 1.0)
            usable = inside & (np.abs(np.arange(2 * half + 1) - half) <= w)
            crossings = [s for s in range(2 * half) if usable[s] and usable[s + 1] and p[s] >= threshold
                         and not p[s + 1] >= threshold]
            index = min(crossings, key=lambda s: (abs(2 * s + 1 - 2 * half), s)) if crossings else -1
            at, fraction = (index, min(max((p[index] - threshold) / (p[index] - p[index + 1]), 0.0), 1.0)) \
                if index >= 0 else (half, 0.0)
            r = max(expected[i, j] + (at - half), 0.0) + fraction
            points[i, j] = centers[i, 0] + r * cos[j], centers[i, 1] + r * sin[j]
            valid[i, j] = index >= 0 and r > 0.5
    return points, valid


# --------------------------------------------------------------------------------------------------
# Scenes


def _scene(color=True, seed=0, noise=3.0):
    """Dark holes, some cut by the border, one tiny; BGR channels that differ. Strong noise gives
    many weak gradient peaks and threshold crossings (floors and ties matter)."""
    centers = np.array([[40.3, 50.6], [130.8, 60.2], [5.5, 120.4], [200.2, 140.9], [90.0, 150.0], [228.0, 20.0]])
    diameters = np.array([30.0, 44.5, 36.0, 20.0, 6.0, 40.0])
    scene = render_holes((240, 180), centers, diameters, seed=seed, color=color, noise_sigma=noise)
    image = scene.image
    if color:
        rng = np.random.default_rng(seed)
        image = np.clip(image.astype(np.int32) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(seed + 1)
    angles = edges.ray_angles(48)
    radius = diameters / 2
    expected = radius[:, None] + rng.uniform(-1.5, 1.5, (len(radius), len(angles)))   # a rough outline
    expected[4] = rng.uniform(-0.5, 3.0, len(angles))                               # around the center
    half_widths = np.clip(0.12 * radius, 2.0, 5.0)
    half_widths[1] = 17.0                                                           # the 32-sample cap
    return image, centers + rng.normal(0, 0.5, centers.shape), expected, half_widths, angles


def _assert_same(got, expected_points, expected_valid, atol=1e-9):
    points, valid = got
    assert points.shape == expected_points.shape and points.dtype == np.float64
    assert valid.dtype == bool
    assert np.isfinite(points).all()
    assert np.array_equal(valid, expected_valid)
    np.testing.assert_allclose(points[valid], expected_points[valid], rtol=0, atol=atol)


@pytest.mark.parametrize("kind", ["bgr8", "grey8", "bgr16", "greyf32", "noisy"])
def test_radial_edge_points_match_a_plain_loop(kind):
    image, centers, expected, half_widths, angles = _scene(color=kind != "grey8" and kind != "greyf32",
                                                           noise=40.0 if kind == "noisy" else 3.0)
    if kind == "bgr16":
        image = image.astype(np.uint16) * 257
    elif kind == "greyf32":
        image = image.astype(np.float32) / 7.0
    got = edges.radial_edge_points(image, centers, expected, half_widths, angles)
    points, valid, polarity = oracle_edge_points(image, centers, expected, half_widths, angles)
    _assert_same((got.points, got.valid), points, valid)
    assert np.array_equal(got.polarity, polarity)
    assert valid.sum() > 100 and (~valid).sum() > 10          # the scene exercises both


def test_radial_edge_points_options_match_a_plain_loop():
    image, centers, expected, half_widths, angles = _scene(seed=3)
    for kwargs in ({"polarity": np.array([1.0, -1, 1, -1, 1, 1])}, {"curvature_correction": False}):
        got = edges.radial_edge_points(image, centers, expected[:, 0], half_widths, angles, **kwargs)
        points, valid, polarity = oracle_edge_points(image, centers, expected[:, 0], half_widths, angles, **kwargs)
        _assert_same((got.points, got.valid), points, valid)
        assert np.array_equal(got.polarity, polarity)


def test_bad_ray_arguments_are_refused_and_non_finite_half_widths_search_nothing():
    image, centers, expected, half_widths, angles = _scene(seed=3)
    with pytest.raises(ValueError, match="BGR"):
        edges.radial_edge_points(np.zeros((50, 50, 4), np.uint8), centers, expected, half_widths, angles)
    with pytest.raises(ValueError, match="centers"):
        edges.radial_edge_points(image, centers[:, :1], expected, half_widths, angles)
    half_widths = half_widths.copy()
    half_widths[0] = np.nan
    got = edges.radial_edge_points(image, centers, expected, half_widths, angles)
    fixed = half_widths.copy()
    fixed[0] = 0.0
    same = edges.radial_edge_points(image, centers, expected, fixed, angles)
    assert np.array_equal(got.valid, same.valid) and np.array_equal(got.points, same.points)


def test_bright_hole_polarity_is_measured():
    scene = render_holes((120, 100), [(60.3, 50.6)], [30.0], seed=2, background=40, hole=210)
    found = edges.radial_edge_points(scene.image, np.array([[60.3, 50.6]]), np.array([15.0]), np.array([3.0]),
                                     edges.ray_angles(64))
    assert found.polarity[0] == -1.0 and found.valid.all()
    radius = np.linalg.norm(found.points[0] - (60.3, 50.6), axis=1)
    assert abs(np.median(radius) - 15.0) < 0.1


def test_probability_outline_points_match_a_plain_loop():
    image, centers, expected, _, angles = _scene(color=False)
    noisy = probability_from_image(image) + np.random.default_rng(5).normal(0, 0.3, image.shape).astype(np.float32)
    half_widths = np.array([7.0, 16.0, 3.0, 4.5, 3.0, 10.0])
    for threshold, prob in ((0.5, probability_from_image(image)), (0.9, probability_from_image(image)), (0.5, noisy)):
        got = edges.probability_outline_points(prob, threshold, centers, expected, half_widths, angles)
        points, valid = oracle_outline_points(prob, threshold, centers, expected, half_widths, angles)
        _assert_same(got, points, valid)
        assert valid.sum() > 100 and (~valid).sum() > 5


def test_empty_inputs():
    angles = edges.ray_angles(16)
    found = edges.radial_edge_points(np.zeros((10, 10), np.uint8), np.zeros((0, 2)), np.zeros((0, 16)), np.zeros(0),
                                     angles)
    assert found.points.shape == (0, 16, 2) and found.valid.shape == (0, 16) and found.polarity.shape == (0,)
    points, valid = edges.probability_outline_points(np.zeros((10, 10), np.float32), 0.5, np.zeros((0, 2)),
                                                     np.zeros((0, 16)), np.zeros(0), angles)
    assert points.shape == (0, 16, 2) and valid.shape == (0, 16)


def test_median_of_finite_is_nanmedian_ignoring_infinities():
    rng = np.random.default_rng(7)
    scratch = np.empty(17)
    for _ in range(50):
        values = rng.normal(size=17)
        values[rng.random(17) > 0.7] = np.nan
        values[rng.random(17) > 0.9] = -np.inf
        finite = values[np.isfinite(values)]
        got = edges._median_of_finite(values, scratch)
        if len(finite):
            assert got == np.median(finite)
        else:
            assert np.isnan(got)
    assert np.isnan(edges._median_of_finite(np.full(5, np.nan), scratch))
