"""Synthetic parts: exact conic ground truth, sub-pixel rendering, determinism, label consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from holevision.runtime.synthparts import render_holes, render_scene
from holevision.runtime.synthparts.camera import PlaneCamera
from holevision.runtime.synthparts.conics import (
    ConicError, circle_conic, conic_from_ellipse, ellipse_from_conic, transform_conic,
)


def _tilted_camera(tilt_deg=28.0):
    K = np.array([[700.0, 0, 320], [0, 700.0, 256], [0, 0, 1]])
    return PlaneCamera.looking_at(K=K, center_px=(300, 240), scale_px_per_mm=4.0, rotation_deg=20,
                                  tilt_deg=tilt_deg, tilt_axis_deg=35)


def test_projected_circle_ellipse_is_exact_and_its_center_is_not_the_projected_center():
    camera = _tilted_camera()
    H = camera.H_img_plane(0.0)
    center_mm, radius = (30.0, -12.0), 9.0
    (cu, cv), (major, minor), angle = ellipse_from_conic(transform_conic(H, circle_conic(center_mm, radius)))
    t = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    rim = np.column_stack([center_mm[0] + radius * np.cos(t), center_mm[1] + radius * np.sin(t), 0 * t])
    pts = camera.project(rim)
    # Every projected rim point lies on the ellipse given by (center, axes, angle).
    a = math.radians(angle)
    d = pts - [cu, cv]
    x = d[:, 0] * math.cos(a) + d[:, 1] * math.sin(a)
    y = -d[:, 0] * math.sin(a) + d[:, 1] * math.cos(a)
    assert np.abs((x / (major / 2)) ** 2 + (y / (minor / 2)) ** 2 - 1).max() < 1e-9
    assert major > minor * 1.05  # tilted: a real ellipse
    projected_center = camera.project(np.array([[*center_mm, 0.0]]))[0]
    assert np.hypot(*(projected_center - [cu, cv])) > 0.01  # perspective shifts the ellipse center


def test_conic_round_trip_and_degenerate_conic_is_rejected():
    conic = conic_from_ellipse((12.25, -3.5), (20.0, 11.0), 33.0)
    center, axes, angle = ellipse_from_conic(conic)
    assert center == pytest.approx((12.25, -3.5), abs=1e-9)
    assert axes == pytest.approx((20.0, 11.0), abs=1e-9)
    assert angle == pytest.approx(33.0, abs=1e-7)
    with pytest.raises(ConicError):
        ellipse_from_conic(np.diag([1.0, -1.0, -1.0]))  # a hyperbola


@pytest.mark.parametrize("major,minor", [(4.0, 4.0), (9.3, 9.3), (25.0, 17.0), (80.0, 62.0)])
def test_plain_disc_intensity_centroid_matches_ground_truth(major, minor):
    rng = np.random.default_rng(int(major * 10))
    specs = []
    for k in range(4):
        specs.append({"center": (40 + 100 * k + rng.uniform(-0.5, 0.5), 60 + rng.uniform(-0.5, 0.5)),
                      "axes": (major, minor), "angle_deg": float(rng.uniform(0, 180))})
    scene = render_holes(specs, 420, 130, seed=1, style="plain")
    darkness = 0.8 * 255 - scene.image[:, :, 1].astype(np.float64)
    assert len(scene.holes) == 4
    for spec, hole in zip(specs, scene.holes):
        assert hole.center == spec["center"]
        u0, v0 = spec["center"]
        r = int(major / 2 + 4)
        v, u = np.mgrid[int(v0) - r:int(v0) + r + 1, int(u0) - r:int(u0) + r + 1]
        w = darkness[v, u]
        centroid = ((w * u).sum() / w.sum(), (w * v).sum() / w.sum())
        # uint8 quantization included; the analytic coverage alone is ~1e-3 px
        assert np.hypot(centroid[0] - u0, centroid[1] - v0) < 0.02, (centroid, spec)


def test_render_scene_is_deterministic_and_seed_dependent():
    a = render_scene(11, 320, 256, "photo")
    b = render_scene(11, 320, 256, "photo")
    c = render_scene(12, 320, 256, "photo")
    assert np.array_equal(a.image, b.image) and np.array_equal(a.instance_map, b.instance_map)
    assert [h.center for h in a.holes] == [h.center for h in b.holes]
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("style", ["photo", "cad"])
def test_instance_map_and_hole_ground_truth_agree(style):
    checked = 0
    for seed in range(6):
        scene = render_scene(seed, 320, 256, style)
        assert scene.image.shape == (256, 320, 3) and scene.image.dtype == np.uint8
        assert scene.instance_map.shape == (256, 320) and scene.instance_map.dtype == np.int32
        assert scene.instance_map.max() == len(scene.holes)
        drilled = sum(h["drilled"] for p in scene.parts for h in p["holes"])
        assert len(scene.holes) <= drilled
        for k, hole in enumerate(scene.holes, start=1):
            assert hole.kind in ("cad",) if style == "cad" else hole.kind != "cad"
            assert 0 < hole.visible <= 1.0
            assert hole.axes[0] >= hole.axes[1] > 0
            mask = scene.instance_map == k
            assert mask.any()
            if not hole.occluded and not hole.on_border and mask.sum() >= 80:
                v, u = np.nonzero(mask)
                # the thresholded label's centroid sits on the exact center (quantization only)
                assert abs(u.mean() - hole.center[0]) < 0.5 and abs(v.mean() - hole.center[1]) < 0.5
                area = math.pi * hole.axes[0] * hole.axes[1] / 4
                assert abs(mask.sum() - area) < 0.05 * area + 4 * math.sqrt(area)
                checked += 1
        for part in scene.parts:
            assert set(part["missing"]) == {h["index"] for h in part["holes"] if not h["drilled"]}
    assert checked > 3


def test_missing_holes_are_not_drawn_as_labels():
    found = 0
    for seed in range(40):
        scene = render_scene(seed, 256, 208, "photo")
        if not scene.missing:
            continue
        found += 1
        labelled = {(h.part_index, h.design_index) for h in scene.holes}
        assert not labelled & set(scene.missing)
        if found == 3:
            break
    assert found == 3


def test_large_frame_and_bad_arguments():
    scene = render_scene(3, 1280, 1024, "mixed")
    assert scene.image.shape == (1024, 1280, 3)
    with pytest.raises(ValueError, match="style"):
        render_scene(1, 64, 64, "sketch")
    with pytest.raises(ValueError, match=r"holes_spec\[0\]\.axes"):
        render_holes([{"center": (5, 5), "axes": (2, 4), "angle_deg": 0}], 32, 32, seed=0)


def test_render_holes_photo_and_cad_keep_given_geometry():
    specs = [((50.3, 40.7), (30.0, 22.0), 15.0), ((120.1, 60.2), (12.0, 12.0), 0.0)]
    for style in ("photo", "cad"):
        scene = render_holes(specs, 200, 120, seed=4, style=style)
        assert [h.center for h in scene.holes] == [s[0] for s in specs]
        assert [h.axes for h in scene.holes] == [s[1] for s in specs]
        # holes are darker than their surroundings on average
        grey = scene.image.mean(axis=2)
        inside = scene.instance_map > 0
        assert grey[inside].mean() < grey[~inside].mean()


def test_square_lookalikes_are_added_without_changing_the_rest_of_the_scene():
    changed = 0
    for seed in range(8):
        plain = render_scene(seed, 320, 256, "photo")
        squared = render_scene(seed, 320, 256, "photo", squares=True)
        assert squared.parts == plain.parts and squared.meta == plain.meta
        # the look-alikes only cover things: every hole still labelled is the same hole, measured the same
        before = {(h.part_index, h.design_index): h for h in plain.holes}
        for hole in squared.holes:
            same = before[(hole.part_index, hole.design_index)]
            assert hole.center == same.center and hole.axes == same.axes
            assert hole.visible <= same.visible
        changed += not np.array_equal(plain.image, squared.image)
    assert changed == 8
    cad = render_scene(2, 320, 256, "cad")
    assert np.array_equal(render_scene(2, 320, 256, "cad", squares=True).image, cad.image)


def test_checkerboard_lookalike_has_dark_and_light_squares():
    from holevision.runtime.synthparts.clutter import paint_clutter

    image = np.full((200, 200, 3), 0.4, np.float32)
    window, alpha = paint_clutter(np.random.default_rng(3), image, "checkerboard", (100.0, 100.0), 90.0,
                                  np.array([1.0, 0.0]))
    x0, y0, x1, y1 = window
    board = image[y0:y1, x0:x1, 0][alpha > 0.99]
    assert board.size > 0.25 * 90 * 90
    dark, light = (board < 0.2).mean(), (board > 0.5).mean()
    assert 0.2 < dark < 0.6 and 0.3 < light < 0.8     # about half the squares, plus the white margin
    with pytest.raises(ValueError, match="checkerboard"):
        paint_clutter(np.random.default_rng(0), image, "triangle", (50.0, 50.0), 20.0, np.zeros(2))
