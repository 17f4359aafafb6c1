"""The fast paths of hole extraction give what the plain formulations give.

Extraction was made fast by replacing general numpy/LAPACK calls with cheaper equivalents (OpenCV
row reductions). Each is checked here against the plain version it replaced, including the awkward
inputs that send it to its fallback. The ellipse fit's kernels are checked in
test_holes_ellipse_fit_kernels.py, the instance kernels in test_holes_instances_kernels.py,
the edge kernels in test_holes_edges_kernels.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from holevision.runtime.holes import edges, ellipse_fit, instances


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


def test_compiled_reading_order_is_detections_reading_order():
    """Extraction numbers its holes with a compiled copy of detections.reading_order (one call for the
    selection and the order); the two must agree, ties and rows of equal v included."""
    from holevision.runtime.detections import reading_order
    from holevision.runtime.holes.extract import _reading_order

    rng = np.random.default_rng(11)
    for trial in range(400):
        n = int(rng.integers(0, 60))
        centers = rng.uniform(0, 1500, (n, 2))
        if trial % 3 == 0:    # rows: v close to a few levels
            centers[:, 1] = rng.choice([100.0, 160.0, 400.0], n) + rng.normal(0, 4, n)
        if trial % 5 == 0:    # exact ties in u and v
            centers = np.round(centers / 50) * 50
        diameters = rng.uniform(4, 80, n)
        if trial % 7 == 0:
            diameters = np.round(diameters / 10) * 10
        assert np.array_equal(_reading_order(centers, diameters), reading_order(centers, diameters)), trial


def test_prefetch_compiles_and_takes_any_box():
    """Prefetching only warms caches: it must compile (the llvm.prefetch declaration) and accept boxes
    partly or wholly outside the image and centers that are not finite, touching nothing."""
    from holevision.runtime.holes.prefetch import prefetch_box, prefetch_rect

    for image in (np.arange(48 * 64, dtype=np.float32).reshape(48, 64), np.zeros((48, 64, 3), np.uint8)):
        before = image.copy()
        for box in ((-10, -10, 5, 5), (60, 40, 200, 300), (0, 0, 64, 48), (30, 30, 10, 10), (-50, -50, -40, -40)):
            prefetch_rect(image, *box)
        for center in ((10.5, 20.5), (np.nan, 3.0), (np.inf, np.inf), (-1e12, 5.0)):
            prefetch_box(image, center[0], center[1], 7.0)
        prefetch_box(image, 10.0, 10.0, np.nan)
        assert np.array_equal(image, before)
