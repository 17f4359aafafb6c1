"""Robust 2D registration: round trips, missing and extra holes, scale, fixed parts, ambiguity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from holevision.runtime.inspect.register import alternative_poses, fit_transform, register, transform_points


def pose(angle_deg, tx, ty, scale=1.0):
    a = math.radians(angle_deg)
    T = np.eye(3)
    T[:2, :2] = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    T[:2, 2] = [tx, ty]
    return T


LAYOUT = np.array([[0, 0], [80, 5], [150, -10], [30, 60], [120, 90], [-20, 110], [60, 140.0]])
DIAMETERS = np.array([20, 20, 30, 20, 40, 20, 30.0])


@pytest.mark.parametrize("kind, scale", [("rigid", 1.0), ("similarity", 1.07)])
def test_fit_transform_recovers_a_known_pose(kind, scale):
    T_true = pose(37.0, 400.0, -12.5, scale)
    T = fit_transform(LAYOUT, transform_points(T_true, LAYOUT), kind)
    np.testing.assert_allclose(T, T_true, atol=1e-9)
    # inverse round trip
    back = transform_points(np.linalg.inv(T), transform_points(T_true, LAYOUT))
    np.testing.assert_allclose(back, LAYOUT, atol=1e-9)


def test_fit_transform_never_reflects():
    mirrored = LAYOUT * [-1, 1]
    T = fit_transform(LAYOUT, mirrored, "rigid")
    assert np.linalg.det(T[:2, :2]) > 0


@pytest.mark.parametrize("angle", [0.0, 93.0, 181.0, 287.5])
def test_register_with_missing_and_extra_holes(angle):
    rng = np.random.default_rng(3)
    T_true = pose(angle, 640.0, 500.0)
    detected = transform_points(T_true, LAYOUT) + rng.normal(0, 0.2, LAYOUT.shape)
    keep = np.array([True, False, True, True, True, False, True])       # holes 2 and 6 missing
    clutter = np.array([[50.0, 50.0], [1200.0, 900.0], [640.0, 505.0]])
    Q = np.concatenate([detected[keep], clutter])
    dQ = np.concatenate([DIAMETERS[keep], [20.0, 30.0, 4.0]])           # the last is a tiny blob near a hole
    reg = register(LAYOUT, Q, inlier_radius=1.5, diameters_part=DIAMETERS, diameters_det=dQ)
    assert reg.found
    assert reg.inliers == 5
    np.testing.assert_array_equal(reg.matches, [0, -1, 1, 2, 3, -1, 4])
    assert abs(((reg.rotation_deg - angle + 180) % 360) - 180) < 0.5
    np.testing.assert_allclose(transform_points(reg.T_det_part, LAYOUT), transform_points(T_true, LAYOUT), atol=0.6)
    assert 0 < reg.fit_residual < 0.6


def test_register_similarity_recovers_scale():
    T_true = pose(-20.0, 300.0, 200.0, 1.06)
    Q = transform_points(T_true, LAYOUT)[1:]
    reg = register(LAYOUT, Q, inlier_radius=1.0, transform="similarity", max_scale_change=0.1,
                   diameters_part=DIAMETERS, diameters_det=DIAMETERS[1:] * 1.06)
    assert reg.found and reg.inliers == 6
    assert reg.scale == pytest.approx(1.06, abs=1e-6)
    rigid = register(LAYOUT, Q, inlier_radius=1.0, transform="rigid",
                     diameters_part=DIAMETERS, diameters_det=DIAMETERS[1:] * 1.06)
    assert rigid.inliers < 6            # a rigid fit cannot explain a 6 % scale change


def test_register_is_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    Q = np.concatenate([transform_points(pose(10, 100, 100), LAYOUT), rng.uniform(0, 1000, (10, 2))])
    a = register(LAYOUT, Q, inlier_radius=1.0, seed=5)
    b = register(LAYOUT, Q, inlier_radius=1.0, seed=5)
    np.testing.assert_array_equal(a.T_det_part, b.T_det_part)
    np.testing.assert_array_equal(a.matches, b.matches)


def test_register_reports_why_it_found_nothing():
    assert register(LAYOUT, np.zeros((0, 2)), inlier_radius=1.0).reason == "no detections"
    far_apart = np.array([[0.0, 0.0], [5000.0, 0.0]])
    reg = register(LAYOUT, far_apart, inlier_radius=1.0)
    assert not reg.found and "spacing" in reg.reason
    with pytest.raises(ValueError, match="inlier_radius"):
        register(LAYOUT, far_apart, inlier_radius=0.0)


def test_fixed_registration_matches_in_place():
    Q = LAYOUT[[0, 2, 3]] + 0.3
    reg = register(LAYOUT, Q, inlier_radius=1.0, transform="fixed")
    np.testing.assert_array_equal(reg.T_det_part, np.eye(3))
    np.testing.assert_array_equal(reg.matches, [0, -1, 1, 2, -1, -1, -1])


def test_alternative_poses_for_a_grid_missing_an_end_column():
    gy, gx = np.mgrid[0:2, 0:3]
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1) * 100.0          # 2 x 3 grid
    T_true = pose(30, 500, 400)
    present = np.array([False, True, True, False, True, True])         # column 0 missing
    Q = transform_points(T_true, grid[present])
    alternatives = alternative_poses(grid, Q, T_true, inlier_radius=1.0)
    assert len(alternatives) >= 1     # the remaining 2 x 2 also fits columns 0-1
    # a full grid has only its symmetric copies, which put every hole on a detection
    full = transform_points(T_true, grid)
    for T in alternative_poses(grid, full, T_true, inlier_radius=1.0):
        d = np.linalg.norm(transform_points(T, grid)[:, None] - full[None], axis=-1).min(axis=1)
        assert d.max() < 1.0
