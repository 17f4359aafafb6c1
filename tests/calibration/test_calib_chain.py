"""Pixel -> robot base frame at ~0.1 mm/px: exact and with 0.05 px center noise; perspective-exact hole centers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from holevision.calibration.camera import CameraModel
from holevision.calibration.chain import (circle_center_offset_px, diameters_to_mm, ellipse_to_base, pixel_to_base,
                                          pixel_to_base_eye_in_hand, projected_circle_center)
from holevision.calibration.errors import CalibrationError
from holevision.calibration.plane import Plane, load_plane, plane_from_board_pose, save_plane
from holevision.calibration.transforms import invert_transform, make_transform, transform_points

# fx 3000 px, 300 mm from the part: 0.1 mm per pixel; a mild barrel lens
CAMERA = CameraModel(K=[[3000, 0, 1020], [0, 3000, 770], [0, 0, 1]], dist=[-0.08, 0.1, 0.0005, -0.0003, 0],
                     image_size=(2048, 1536))
# fixed camera 300 mm above the part's top face (z = 12 mm in the base frame), looking down, tilted 20 degrees
R_base_cam = Rotation.from_euler("xyz", [180 + 20, 0, 90], degrees=True).as_matrix()
T_BASE_CAM = make_transform(R_base_cam, [650, 120, 12] - 300 * R_base_cam[:, 2])
PLANE_BASE = Plane([0, 0, 12], [0, 0, 1])


def _holes_base(n=25, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[650 + rng.uniform(-60, 60, n), 120 + rng.uniform(-45, 45, n), np.full(n, 12.0)]


def test_pixel_to_base_exact_and_with_center_noise():
    p_base = _holes_base()
    plane_cam = PLANE_BASE.transformed(invert_transform(T_BASE_CAM))
    uv = CAMERA.project(transform_points(invert_transform(T_BASE_CAM), p_base))
    assert np.all((uv > 0) & (uv < CAMERA.image_size))
    points, approach = pixel_to_base(uv[:, 0], uv[:, 1], CAMERA, plane_cam, T_BASE_CAM)
    assert np.abs(points - p_base).max() < 1e-6
    np.testing.assert_allclose(approach, np.tile([0, 0, -1], (len(p_base), 1)), atol=1e-12)
    noisy = uv + np.random.default_rng(1).normal(0, 0.05, uv.shape)
    points, _ = pixel_to_base(noisy[:, 0], noisy[:, 1], CAMERA, plane_cam, T_BASE_CAM)
    err = np.linalg.norm(points - p_base, axis=1)
    assert err.max() <= 0.2, err.max()
    assert 0.001 < err.mean() < 0.02  # 0.05 px at ~0.1 mm/px: about 5 micrometres; the check can fail
    scalar, _ = pixel_to_base(float(uv[0, 0]), float(uv[0, 1]), CAMERA, plane_cam, T_BASE_CAM)
    assert scalar.shape == (1, 3)


def test_eye_in_hand_form_matches_fixed_form():
    T_flange_cam = make_transform(Rotation.from_rotvec([0.02, -0.01, 1.3]).as_matrix(), [40, -60, 90])
    T_base_flange = T_BASE_CAM @ invert_transform(T_flange_cam)
    p_base = _holes_base(5, seed=2)
    uv = CAMERA.project(transform_points(invert_transform(T_BASE_CAM), p_base))
    points, approach = pixel_to_base_eye_in_hand(uv[:, 0], uv[:, 1], CAMERA, PLANE_BASE, T_base_flange, T_flange_cam)
    assert np.abs(points - p_base).max() < 1e-6
    np.testing.assert_allclose(approach[0], [0, 0, -1], atol=1e-12)


def _image_ellipse(center_cam, normal_cam, radius, camera):
    plane = Plane(center_cam, normal_cam)
    e1, e2 = plane.basis()
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    pts = plane.point + radius * (np.cos(t)[:, None] * e1 + np.sin(t)[:, None] * e2)
    (cx, cy), (w, h), angle = cv2.fitEllipse(camera.project(pts).astype(np.float32))
    return np.array([cx, cy]), np.array([w, h]), angle


def test_ellipse_to_base_removes_the_perspective_center_bias():
    pinhole = CameraModel(CAMERA.K, np.zeros(5), CAMERA.image_size)
    T_base_cam = make_transform(np.eye(3), [0, 0, 0])
    normal = Rotation.from_euler("x", 30, degrees=True).apply([0, 0, -1])   # plane tilted 30 deg
    center = np.array([20.0, -15.0, 300.0])
    plane_cam = Plane(center, normal)
    c_px, axes_px, angle = _image_ellipse(center, normal, 5.0, pinhole)
    naive, _ = pixel_to_base(c_px[0], c_px[1], pinhole, plane_cam, T_base_cam)
    exact, approach, diameter = ellipse_to_base(c_px[None], axes_px[None], [angle], pinhole, plane_cam, T_base_cam)
    bias = np.linalg.norm(naive[0] - center)
    assert 0.02 < bias < 0.08           # a 10 mm hole at 30 deg: the ellipse center is ~0.04 mm off
    assert np.linalg.norm(exact[0] - center) < 0.005
    assert abs(diameter[0] - 10.0) < 0.01
    np.testing.assert_allclose(approach[0], -normal, atol=1e-12)


def test_circle_center_offset_figures_documented_in_chain():
    pinhole = CameraModel(CAMERA.K, np.zeros(5), CAMERA.image_size)
    center = np.array([30.0, 20.0, 300.0])
    facing = circle_center_offset_px(center, [0, 0, -1], 5.0, pinhole)
    assert np.linalg.norm(facing) < 1e-6
    tilted = Rotation.from_euler("x", 30, degrees=True).apply([0, 0, -1])
    offsets = [np.linalg.norm(circle_center_offset_px(center, tilted, r, pinhole)) for r in (2.5, 5.0, 10.0)]
    assert 0.07 < offsets[0] < 0.11 and 0.3 < offsets[1] < 0.4 and 1.2 < offsets[2] < 1.6
    assert offsets[2] / offsets[1] == pytest.approx(4, rel=0.05)   # grows with radius squared
    c_px, _, _ = _image_ellipse(center, tilted, 5.0, pinhole)
    np.testing.assert_allclose(projected_circle_center(center, tilted, 5.0, pinhole), c_px, atol=2e-3)


def test_diameters_to_mm_on_a_facing_plane():
    plane_cam = Plane([0, 0, 300], [0, 0, -1])
    pinhole = CameraModel(CAMERA.K, np.zeros(5), CAMERA.image_size)
    d = diameters_to_mm([[1020, 770], [1500, 300]], [100.0, 50.0], pinhole, plane_cam)
    assert d[0] == pytest.approx(10.0, abs=1e-9)
    assert d[1] == pytest.approx(5.0, rel=0.01)


def test_plane_from_board_pose_with_thickness(tmp_path):
    T_cam_board = make_transform(Rotation.from_euler("xyz", [170, 10, 30], degrees=True).as_matrix(), [-50, 30, 400])
    plane = plane_from_board_pose(T_cam_board, thickness_mm=12.0, board_thickness_mm=3.0)
    assert plane.normal @ (np.zeros(3) - plane.point) > 0              # faces the camera
    corner = transform_points(T_cam_board, [[100.0, 50.0, 0.0]])
    assert plane.signed_distance(corner)[0] == pytest.approx(-9.0)     # holes are 12 - 3 mm above the board face
    save_plane(tmp_path / "plane.json", plane, plane.transformed(T_BASE_CAM), {"note": "test"})
    back = load_plane(tmp_path / "plane.json")
    np.testing.assert_allclose(back.point, plane.point)
    np.testing.assert_allclose(load_plane(tmp_path / "plane.json", "base").normal,
                               plane.transformed(T_BASE_CAM).normal, atol=1e-12)
    save_plane(tmp_path / "cam_only.json", plane)
    with pytest.raises(CalibrationError, match=r"cam_only\.json.*plane_base"):
        load_plane(tmp_path / "cam_only.json", "base")


def test_plane_behind_camera_is_an_error():
    with pytest.raises(CalibrationError, match="behind"):
        pixel_to_base(1020, 770, CAMERA, Plane([0, 0, -300], [0, 0, 1]), np.eye(4))


def test_whole_chain_with_estimated_hand_eye_and_plane():
    """Holes located through a hand-eye and a work plane that were themselves estimated from noisy data
    (robot 0.1 mm / 0.02 deg, corners 0.2 px; ~0.3 mm/px at 550 mm): the error a user would see."""
    from holevision.calibration.boards import BoardDetection
    from holevision.calibration.handeye import HandEyeInput, calibrate_hand_eye
    from holevision.calibration.intrinsics import board_pose
    from holevision.calibration.synthetic import make_handeye_scene

    errors = []
    for seed in range(3):
        scene = make_handeye_scene("eye-to-hand", n_poses=20, seed=seed)
        result = calibrate_hand_eye(HandEyeInput("eye-to-hand", scene.T_base_flange, scene.T_cam_target, scene.names,
                                                 scene.camera, scene.detections), leave_one_out=False)
        rng = np.random.default_rng(seed)
        T_cam_board = make_transform(Rotation.from_euler("xyz", [190, 5, 0], degrees=True).as_matrix(), [-120, -90, 550])
        obj = scene.board.object_points()
        corners = scene.camera.project(transform_points(T_cam_board, obj)) + rng.normal(0, 0.2, (len(obj), 2))
        plane_cam = plane_from_board_pose(board_pose(scene.camera, BoardDetection(corners, obj, np.arange(len(obj))))[0])
        holes_board = np.c_[rng.uniform(20, 230, 30), rng.uniform(20, 160, 30), np.zeros(30)]
        holes_cam = transform_points(T_cam_board, holes_board)
        uv = scene.camera.project(holes_cam) + rng.normal(0, 0.05, (30, 2))
        located, _ = pixel_to_base(uv[:, 0], uv[:, 1], scene.camera, plane_cam, result.X)
        errors.append(np.linalg.norm(located - transform_points(scene.X_true, holes_cam), axis=1))
    errors = np.concatenate(errors)
    print(f"chain error with estimated calibration: mean {errors.mean():.3f} mm, max {errors.max():.3f} mm")
    assert errors.max() < 0.5, f"mean {errors.mean():.3f} mm, max {errors.max():.3f} mm"


def test_one_bad_hole_never_fails_the_others():
    plane_cam = Plane([0, 0, 300], [0, 0, -1])
    pinhole = CameraModel(CAMERA.K, np.zeros(5), CAMERA.image_size)
    centers = [[1020, 770], [1100, 800], [np.nan, 5], [900, 700]]
    axes = [[100, 100], [np.nan, np.nan], [10, 10], [0, 0]]
    points, approach, d = ellipse_to_base(centers, axes, [0, 0, 0, 0], pinhole, plane_cam, np.eye(4))
    np.testing.assert_allclose(points[0], [0, 0, 300], atol=1e-9)
    assert d[0] == pytest.approx(10.0)
    np.testing.assert_allclose(points[1], [8, 3, 300], atol=1e-9)   # no axes: center ray only, diameter unknown
    assert np.isnan(d[1]) and np.all(np.isnan(points[2])) and np.isnan(d[3]) and np.all(np.isfinite(points[3]))
    empty = ellipse_to_base(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), pinhole, plane_cam, np.eye(4))
    assert empty[0].shape == (0, 3) and empty[2].shape == (0,)


def test_batched_circle_fit_is_exact_and_matches_least_squares_per_set():
    from holevision.calibration.chain import fit_circles_2d

    rng = np.random.default_rng(3)
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    centers = rng.uniform(-50, 50, (6, 2))
    radii = rng.uniform(1, 20, 6)
    exact = centers[:, None, :] + radii[:, None, None] * np.stack([np.cos(t), np.sin(t)], axis=1)[None]
    got_centers, got_radii = fit_circles_2d(exact)
    np.testing.assert_allclose(got_centers, centers, atol=1e-9)
    np.testing.assert_allclose(got_radii, radii, atol=1e-9)
    noisy = exact + rng.normal(0, 0.3, exact.shape)
    got_centers, got_radii = fit_circles_2d(noisy)
    for points, center, radius in zip(noisy, got_centers, got_radii):   # the plain per-set Kasa fit
        q = points - points.mean(axis=0)
        design = np.concatenate([2 * q, np.ones((len(q), 1))], axis=1)
        sol = np.linalg.lstsq(design, (q ** 2).sum(axis=1), rcond=None)[0]
        np.testing.assert_allclose(center, sol[:2] + points.mean(axis=0), atol=1e-9)
        np.testing.assert_allclose(radius, np.sqrt(sol[2] + sol[:2] @ sol[:2]), atol=1e-9)
