"""Hole extraction: subpixel accuracy on rendered holes of known geometry, and the awkward cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from holevision.runtime.benchmarks.hole_scenes import probability_from_image, random_hole_layout, render_holes
from holevision.runtime.holes import HoleExtractionError, extract_holes


def _rms(values) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def _nearest(holes, center) -> int:
    return int(np.argmin(np.linalg.norm(holes.centers - center, axis=1)))


def _accuracy_set():
    """Fixed seeds: 6 frames x 8 holes, diameters 8-120 px, blur sigma 0.7, noise sigma 2 grey levels."""
    for seed in range(6):
        centers, diameters = random_hole_layout((640, 480), 8, seed=seed, diameter_range=(8.0, 120.0))
        yield render_holes((640, 480), centers, diameters, seed=seed, blur_sigma=0.7, noise_sigma=2.0)


def test_subpixel_accuracy_and_at_least_5x_better_than_fit_ellipse_on_the_mask():
    center_err, diameter_err, cv_center_err, cv_diameter_err = [], [], [], []
    diameters_seen = []
    for scene in _accuracy_set():
        probability = probability_from_image(scene.image)
        holes = extract_holes(probability, scene.image)
        assert len(holes) == len(scene.centers)
        mask = (probability >= 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        assert len(contours) == len(scene.centers)
        for center, diameter in zip(scene.centers, scene.diameters):
            k = _nearest(holes, center)
            assert holes.refined[k]
            center_err.append(np.linalg.norm(holes.centers[k] - center))
            diameter_err.append(holes.diameters_px[k] - diameter)
            diameters_seen.append(diameter)
        for contour in contours:
            (u, v), (a, b), _ = cv2.fitEllipse(contour)
            j = int(np.argmin(np.linalg.norm(scene.centers - (u, v), axis=1)))
            cv_center_err.append(np.hypot(u - scene.centers[j, 0], v - scene.centers[j, 1]))
            cv_diameter_err.append(np.sqrt(a * b) - scene.diameters[j])
    assert min(diameters_seen) < 15 and max(diameters_seen) > 100, "the set must span small and large holes"
    center_rms, diameter_rms = _rms(center_err), _rms(diameter_err)
    assert center_rms <= 0.05, f"center RMS {center_rms:.4f} px"
    assert diameter_rms <= 0.1, f"diameter RMS {diameter_rms:.4f} px"
    assert _rms(cv_center_err) >= 5 * center_rms, (center_rms, _rms(cv_center_err))
    assert _rms(cv_diameter_err) >= 5 * diameter_rms, (diameter_rms, _rms(cv_diameter_err))


def test_bright_holes_on_a_dark_surface_are_measured_too():
    centers = np.array([[60.3, 50.6], [150.8, 90.2]])
    diameters = np.array([24.0, 41.5])
    scene = render_holes((220, 150), centers, diameters, seed=3, background=40, hole=210)
    probability = probability_from_image(scene.image, background=40, hole=210)
    probability = 1.0 - probability  # bright = hole here
    holes = extract_holes(probability, scene.image)
    assert len(holes) == 2 and holes.refined.all()
    for center, diameter in zip(centers, diameters):
        k = _nearest(holes, center)
        assert np.linalg.norm(holes.centers[k] - center) < 0.05
        assert abs(holes.diameters_px[k] - diameter) < 0.1


def test_ellipse_axes_and_angle():
    """A tilted view makes holes elliptical: axes and angle come out of the fit."""
    height, width, ss = 140, 180, 8
    u0, v0, a, b, angle = 90.4, 70.7, 30.0, 19.0, 25.0
    ys, xs = np.mgrid[0:height * ss, 0:width * ss]
    x = (xs + 0.5) / ss - 0.5 - u0
    y = (ys + 0.5) / ss - 0.5 - v0
    t = np.radians(angle)
    xr, yr = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    coverage = ((xr / a) ** 2 + (yr / b) ** 2 <= 1).reshape(height, ss, width, ss).mean(axis=(1, 3))
    grey = cv2.GaussianBlur(190 - 145 * coverage, (0, 0), 0.7) + np.random.default_rng(0).normal(0, 2, coverage.shape)
    image = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    holes = extract_holes(probability_from_image(image), image)
    assert len(holes) == 1 and holes.refined[0]
    assert np.linalg.norm(holes.centers[0] - (u0, v0)) < 0.05
    assert abs(holes.axes[0, 0] - 2 * a) < 0.1 and abs(holes.axes[0, 1] - 2 * b) < 0.1
    assert abs(holes.angles[0] - angle) < 0.5
    assert holes.circularity[0] == pytest.approx(b / a, abs=0.01)


def test_touching_holes_are_split_and_each_measured():
    centers = np.array([[70.0, 60.2], [101.5, 60.9]])   # 31.5 px apart, diameter 32: they touch
    diameters = np.array([32.0, 32.0])
    scene = render_holes((170, 120), centers, diameters, seed=5)
    holes = extract_holes(probability_from_image(scene.image), scene.image)
    assert len(holes) == 2
    for center in centers:
        k = _nearest(holes, center)
        assert np.linalg.norm(holes.centers[k] - center) < 0.15
        assert abs(holes.diameters_px[k] - 32.0) < 0.3


def test_hole_cut_by_the_border_is_flagged_and_fitted_to_its_visible_arc():
    centers = np.array([[8.0, 60.3], [100.0, 60.0]])
    diameters = np.array([40.0, 20.0])
    scene = render_holes((160, 120), centers, diameters, seed=7)
    holes = extract_holes(probability_from_image(scene.image), scene.image)
    assert len(holes) == 2
    cut, whole = _nearest(holes, centers[0]), _nearest(holes, centers[1])
    assert holes.on_border[cut] and not holes.on_border[whole]
    # The visible arc is enough for a circle: not the mask's truncated blob.
    assert np.linalg.norm(holes.centers[cut] - centers[0]) < 0.3
    assert abs(holes.diameters_px[cut] - 40.0) < 0.5


def test_empty_and_featureless_frames_give_no_holes():
    flat = np.full((90, 120, 3), 128, np.uint8)
    assert len(extract_holes(np.zeros((90, 120), np.float32), flat)) == 0
    assert len(extract_holes(np.zeros((90, 120), np.float32), None)) == 0
    assert extract_holes(np.zeros((90, 120), np.float32), flat).centers.shape == (0, 2)


def test_without_the_image_holes_come_from_the_mask_and_are_not_marked_refined():
    scene = render_holes((120, 100), [[60.0, 50.0]], [30.0], seed=1)
    holes = extract_holes(probability_from_image(scene.image), None)
    assert len(holes) == 1 and not holes.refined[0]
    assert np.linalg.norm(holes.centers[0] - (60, 50)) < 0.5
    assert abs(holes.diameters_px[0] - 30) < 1.5


def test_a_high_detection_threshold_does_not_shrink_the_outline():
    """A bundle detects at 0.9, but a hole's edge is where the model is undecided (p = 0.5): traced at
    0.9, a soft map's outline would run 2.2 px inside the edge on every side."""
    centers = np.array([[60.3, 50.6], [150.2, 70.1], [100.7, 140.4]])
    diameters = np.array([12.0, 30.0, 56.0])
    yy, xx = np.mgrid[0:190, 0:220].astype(float)
    signed = np.full(yy.shape, -np.inf)             # px inside the nearest hole's edge
    for (u, v), d in zip(centers, diameters):
        signed = np.maximum(signed, d / 2 - np.hypot(xx - u, yy - v))
    probability = (1.0 / (1.0 + np.exp(-signed / 1.0))).astype(np.float32)
    for threshold in (0.5, 0.9):
        holes = extract_holes(probability, None, threshold=threshold)
        assert len(holes) == 3
        for center, diameter in zip(centers, diameters):
            k = _nearest(holes, center)
            assert abs(holes.diameters_px[k] - diameter) < 0.2, (threshold, diameter, holes.diameters_px[k])
            assert np.linalg.norm(holes.centers[k] - center) < 0.1


def test_ids_are_numbered_left_to_right_top_to_bottom_and_min_diameter_filters():
    centers = np.array([[150.0, 40.0], [40.0, 42.0], [90.0, 120.0]])
    diameters = np.array([20.0, 12.0, 30.0])
    scene = render_holes((200, 170), centers, diameters, seed=2)
    probability = probability_from_image(scene.image)
    holes = extract_holes(probability, scene.image)
    assert list(holes.ids) == [1, 2, 3]
    assert np.allclose(holes.centers[:, 0], [40, 150, 90], atol=0.1)
    big = extract_holes(probability, scene.image, min_diameter_px=15.0)
    assert len(big) == 2 and np.all(big.diameters_px >= 15.0)


@pytest.mark.parametrize("prob, image, match", [
    (np.zeros((4, 4, 2), np.float32), None, "prob_hole must be a"),
    (np.zeros((4, 4), np.uint8), None, "float probabilities"),
    (np.zeros((4, 4), np.float32), np.zeros((5, 4), np.uint8), "must match"),
    (np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8), "grey or"),
])
def test_bad_inputs_raise_clear_errors(prob, image, match):
    with pytest.raises(HoleExtractionError, match=match):
        extract_holes(prob, image)
    with pytest.raises(ValueError):
        extract_holes(np.zeros((4, 4), np.float32), None, threshold=1.5)


def test_a_drawing_stroke_around_the_hole_does_not_bias_the_diameter():
    """CAD views outline holes with a dark stroke; the image edge is the stroke's outer side, 1 px off.

    The model's outline (here: the true disc, softened) says where the hole is; the edge fit disagrees
    with it in size by the stroke's width, so the outline sizes the hole (the symmetric stroke does not
    move the edge fit's center, which may still be used).
    """
    size, center, radius = (160, 140), np.array([[80.3, 70.6]]), 20.0
    stroke = render_holes(size, center, [2 * radius + 2.4], noise_sigma=0, blur_sigma=0).coverage
    interior = render_holes(size, center, [2 * radius - 2.4], noise_sigma=0, blur_sigma=0).coverage
    disc = render_holes(size, center, [2 * radius], noise_sigma=0, blur_sigma=0).coverage
    grey = 150 - 130 * stroke + 50 * interior
    grey = cv2.GaussianBlur(grey.astype(np.float64), (0, 0), 0.7) + np.random.default_rng(1).normal(0, 2, grey.shape)
    image = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    probability = cv2.GaussianBlur(disc, (0, 0), 1.0)
    holes = extract_holes(probability, image)
    assert len(holes) == 1
    assert abs(holes.diameters_px[0] - 2 * radius) < 0.2, "the stroke's edge must not size the hole"
    assert np.linalg.norm(holes.centers[0] - center[0]) < 0.05


def test_robust_ellipse_fit_ignores_outliers():
    from holevision.runtime.holes.ellipse_fit import fit_circles_robust, fit_ellipses_robust

    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 80, endpoint=False)
    truth = [((50.0, 40.0), (30.0, 18.0), 30.0), ((10.5, -7.25), (6.0, 6.0), 0.0)]
    points = []
    for (u, v), (a, b), angle in truth:
        r = np.radians(angle)
        x, y = a * np.cos(t), b * np.sin(t)
        p = np.stack([u + x * np.cos(r) - y * np.sin(r), v + x * np.sin(r) + y * np.cos(r)], axis=1)
        p += rng.normal(0, 0.02, p.shape)
        p[::10] += rng.uniform(2, 4, (8, 2))  # 10% gross outliers (a thread, a burr)
        points.append(p)
    points = np.stack(points)
    valid = np.ones(points.shape[:2], bool)
    fit = fit_ellipses_robust(points, valid)
    assert fit.ok.all()
    for k, ((u, v), (a, b), angle) in enumerate(truth):
        assert np.allclose(fit.centers[k], (u, v), atol=0.02)
        assert np.allclose(fit.axes[k], (2 * a, 2 * b), atol=0.04)
        assert not fit.inliers[k, ::10].any()
    assert abs(fit.angles[0] - 30.0) < 0.2
    circle = fit_circles_robust(points[1:, :30], valid[1:, :30])  # a 135-degree arc only
    assert np.allclose(circle.centers[0], truth[1][0], atol=0.05) and abs(circle.axes[0, 0] - 12.0) < 0.1


def test_a_coarse_model_mask_is_sharpened_by_the_image_edge():
    """A stride-4 decoder's probability is soft and ~0.2 px small; the edge fit recovers the hole."""
    centers_err, diameters_err, outline_err = [], [], []
    for seed in range(3):
        centers, diameters = random_hole_layout((640, 480), 8, seed=seed, diameter_range=(10.0, 120.0))
        scene = render_holes((640, 480), centers, diameters, seed=seed)
        small = cv2.resize(scene.coverage, (160, 120), interpolation=cv2.INTER_AREA)
        probability = cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR)
        holes = extract_holes(probability, scene.image)
        outline_only = extract_holes(probability, None)
        for center, diameter in zip(centers, diameters):
            k = _nearest(holes, center)
            centers_err.append(np.linalg.norm(holes.centers[k] - center))
            diameters_err.append(holes.diameters_px[k] - diameter)
            outline_err.append(outline_only.diameters_px[_nearest(outline_only, center)] - diameter)
    assert _rms(centers_err) <= 0.05 and _rms(diameters_err) <= 0.1
    assert _rms(outline_err) > 2 * _rms(diameters_err), "the edge fit, not the coarse outline, measured them"


def test_a_hole_marked_twice_as_ring_and_disc_is_reported_once():
    scene = render_holes((160, 120), [[80.2, 60.4]], [40.0], seed=2)
    yy, xx = np.mgrid[0:120, 0:160]
    r = np.hypot(xx - 80.2, yy - 60.4)
    probability = np.where((r < 9) | ((r > 12) & (r < 20)), 0.95, 0.05).astype(np.float32)
    holes = extract_holes(probability, scene.image)
    assert len(holes) == 1
    assert abs(holes.diameters_px[0] - 40.0) < 0.3


def _ring_probability(shape, center, radius, width=2.0, gaps=()):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    r = np.hypot(xx - center[0], yy - center[1])
    angle = np.degrees(np.arctan2(yy - center[1], xx - center[0])) % 360
    prob = np.where(np.abs(r - radius) <= width / 2, 0.9, 0.02)
    for start, stop in gaps:
        prob = np.where((np.abs(r - radius) <= width / 2) & (angle >= start) & (angle < stop), 0.4, prob)
    return prob.astype(np.float32)


def test_a_hole_marked_as_a_broken_ring_is_one_hole():
    """Drawings show holes as thin circles; a model marks the circle, with weak spots."""
    center, radius = (90.3, 70.6), 25.0
    prob = _ring_probability((140, 180), center, radius, gaps=[(10, 30), (100, 115), (200, 230), (300, 310)])
    holes = extract_holes(prob, None)
    assert len(holes) == 1
    assert np.linalg.norm(holes.centers[0] - center) < 0.3
    assert abs(holes.diameters_px[0] - 2 * radius - 2.0) < 1.0  # the ring's outer edge
    fragments = extract_holes(prob, None, shape_filter=False)
    assert len(fragments) == 4, "without hysteresis the ring falls apart"


def test_streaks_and_arcs_along_part_edges_are_not_holes():
    prob = np.full((200, 260), 0.02, np.float32)
    prob[40:43, 20:220] = 0.9                                       # a straight edge of a part
    arc = _ring_probability((200, 260), (130.0, 190.0), 90.0, width=3.0)
    yy, _ = np.mgrid[0:200, 0:260]
    prob = np.maximum(prob, np.where(yy < 150, arc, 0.02))          # a curved edge
    scene = render_holes((260, 200), [[200.5, 80.4]], [20.0], seed=3)
    prob = np.maximum(prob, probability_from_image(scene.image))    # and one real hole
    prob[80:82, 209:232] = 0.45                                     # a faint bridge from the hole to nowhere
    holes = extract_holes(prob, scene.image)
    assert len(holes) == 1
    assert np.linalg.norm(holes.centers[0] - (200.5, 80.4)) < 0.05
    assert len(extract_holes(prob, scene.image, shape_filter=False)) > 1


def test_a_speckled_hole_is_not_split_into_pieces():
    """Glare or texture leaves gaps in a hole's mask; it is still one hole, not overlapping fragments."""
    scene = render_holes((200, 200), [[100.4, 99.7]], [80.0], seed=4)
    probability = probability_from_image(scene.image)
    rng = np.random.default_rng(0)
    speckle = cv2.dilate((rng.random((200, 200)) > 0.985).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    probability[speckle] = 0.1
    holes = extract_holes(probability, scene.image)
    assert len(holes) == 1
    assert np.linalg.norm(holes.centers[0] - (100.4, 99.7)) < 0.05


def test_any_float_map_layout_gives_the_holes_of_its_contiguous_float32_copy():
    scene = next(_accuracy_set())
    probability = probability_from_image(scene.image)
    expected = extract_holes(probability, scene.image)
    wide = np.zeros((probability.shape[0], 2 * probability.shape[1]), np.float64)
    wide[:, ::2] = probability
    for variant in (probability.astype(np.float64), wide[:, ::2], np.asfortranarray(probability),
                    probability.astype(np.float16)):
        got = extract_holes(variant, scene.image)
        assert len(got) == len(expected)
        assert np.allclose(got.centers, expected.centers, atol=0.05)
