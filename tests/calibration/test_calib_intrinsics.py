"""Intrinsics: OpenCV's sample chessboard images (Debian opencv-doc) against cv2.calibrateCamera and the shipped
left_intrinsics.yml; board detection on rendered views; camera.json; project/undistort round trips."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from holevision.calibration.boards import BoardSpec
from holevision.calibration.camera import CameraModel
from holevision.calibration.errors import CalibrationError
from holevision.calibration.intrinsics import board_pose, calibrate_intrinsics, calibration_flags
from holevision.calibration.synthetic import render_board_view
from holevision.calibration.transforms import make_transform, transform_difference

SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")


@pytest.fixture(scope="module")
def opencv_samples(tmp_path_factory) -> Path:
    """left01..left14.jpg + left_intrinsics.yml (gunzipped into a temp folder when Debian shipped them .gz)."""
    names = [f"left{i:02d}.jpg" for i in range(1, 15)] + ["left_intrinsics.yml"]
    folder = tmp_path_factory.mktemp("opencv_samples")
    found = 0
    for name in names:
        if (SAMPLES / name).exists():
            shutil.copy(SAMPLES / name, folder / name)
            found += 1
        elif (SAMPLES / (name + ".gz")).exists():
            with gzip.open(SAMPLES / (name + ".gz")) as src, open(folder / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
            found += 1
    if not (folder / "left_intrinsics.yml").exists() or found < 10:
        pytest.skip("OpenCV sample images not installed (apt-get install opencv-doc)")
    return folder


def _reference_calibration(files):
    """What OpenCV's own sample (calibration.cpp) does: find corners, cornerSubPix 11x11, calibrateCamera."""
    obj, img = [], []
    pattern = BoardSpec.parse("chessboard:9x6:25").object_points().astype(np.float32)
    for f in files:
        gray = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        ok, corners = cv2.findChessboardCorners(gray, (9, 6), flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
        if ok:
            cv2.cornerSubPix(gray, corners, (11, 11), (-1, -1), (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4))
            obj.append(pattern)
            img.append(corners)
    return cv2.calibrateCamera(obj, img, (640, 480), np.eye(3), None, flags=cv2.CALIB_FIX_ASPECT_RATIO)


def test_opencv_samples_match_calibratecamera_and_shipped_intrinsics(opencv_samples):
    files = sorted(opencv_samples.glob("left[0-9]*.jpg"))
    board = BoardSpec.parse("chessboard:9x6:25")
    views = {f.name: board.detect(cv2.imread(str(f))) for f in files}
    flags = calibration_flags("k3", fix_aspect_ratio=True)   # the shipped file says flags: 2 (fix aspect ratio)
    result = calibrate_intrinsics(views, (640, 480), flags=flags, reject_outliers=False)
    ref_rms, ref_K, ref_dist, _, _ = _reference_calibration(files)
    assert abs(result.rms_px - ref_rms) < 0.01, (result.rms_px, ref_rms)
    np.testing.assert_allclose(result.camera.K, ref_K, rtol=1e-3)
    shipped = cv2.FileStorage(str(opencv_samples / "left_intrinsics.yml"), cv2.FILE_STORAGE_READ)
    K_shipped = shipped.getNode("camera_matrix").mat()
    shipped.release()
    for ours, theirs in zip(result.camera.K[[0, 1, 0, 1], [0, 1, 2, 2]], K_shipped[[0, 1, 0, 1], [0, 1, 2, 2]]):
        assert abs(ours - theirs) / theirs < 0.01, (ours, theirs)
    assert len(result.per_view_rms_px) == len(files) - len(result.rejected)

    # outlier rejection names the view the shipped file also shows as worst (left02: 1.18 px vs ~0.2)
    robust = calibrate_intrinsics(views, (640, 480), flags=flags)
    assert list(robust.rejected) == ["left02.jpg"]
    assert robust.rms_px < result.rms_px
    assert abs(robust.camera.fx - K_shipped[0, 0]) / K_shipped[0, 0] < 0.01


@pytest.mark.parametrize("spec", ["chessboard:9x6:20", "charuco:8x6:20:15"])
def test_detection_and_pnp_on_a_rendered_view(spec):
    from scipy.spatial.transform import Rotation

    board = BoardSpec.parse(spec)
    camera = CameraModel([[900, 0, 320], [0, 900, 240], [0, 0, 1]], np.zeros(5), (640, 480))
    T_cam_board = make_transform(Rotation.from_euler("xyz", [15, -10, 5], degrees=True).as_matrix(), [-70, -50, 500])
    det = board.detect(render_board_view(board, camera, T_cam_board))
    assert det is not None and len(det.ids) >= 0.9 * len(board.object_points())
    truth = camera.project(det.object_points @ T_cam_board[:3, :3].T + T_cam_board[:3, 3])
    assert np.abs(det.image_points - truth).max() < 0.15
    T, rms = board_pose(camera, det)
    dt, dr = transform_difference(T, T_cam_board)
    assert rms < 0.1 and dt < 1.0 and dr < 0.1


def test_camera_json_round_trip_and_field_errors(tmp_path):
    cam = CameraModel([[800, 0, 320], [0, 805, 240], [0, 0, 1]], [-0.2, 0.05, 0.001, -0.001, 0.01], (640, 480),
                      report={"rms_px": 0.2})
    cam.save(tmp_path / "camera.json")
    back = CameraModel.load(tmp_path / "camera.json")
    np.testing.assert_array_equal(back.K, cam.K)
    np.testing.assert_array_equal(back.dist, cam.dist)
    assert back.image_size == (640, 480) and back.report["rms_px"] == 0.2
    doc = json.loads((tmp_path / "camera.json").read_text())
    doc["K"] = [[800, 0, 320], [0, 805, 240]]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=r"bad\.json.*'K'"):
        CameraModel.load(tmp_path / "bad.json")
    doc["K"], doc["dist"] = cam.K.tolist(), [0.1, 0.2, 0.3]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=r"bad\.json.*distortion"):
        CameraModel.load(tmp_path / "bad.json")


def test_project_and_normalize_round_trip_with_distortion():
    cam = CameraModel([[800, 0, 320], [0, 805, 240], [0, 0, 1]], [-0.3, 0.1, 0.001, -0.001, -0.02], (640, 480))
    rng = np.random.default_rng(0)
    p = np.c_[rng.uniform(-150, 150, (50, 2)), rng.uniform(300, 600, 50)]
    uv = cam.project(p)
    rays = cam.rays(uv)
    np.testing.assert_allclose(rays, p / np.linalg.norm(p, axis=1, keepdims=True), atol=1e-9)
    np.testing.assert_allclose(cam.project(np.c_[cam.normalize(uv), np.ones(50)]), uv, atol=1e-6)


def test_board_spec_errors():
    assert str(BoardSpec.parse("chessboard:9x6:25")) == "chessboard:9x6:25"
    for bad in ("chess:9x6:25", "chessboard:9x6", "charuco:5x5:20:25", "charuco:5x5:20:15:DICT_NOPE", "chessboard:1x6:25"):
        with pytest.raises(CalibrationError, match="board"):
            BoardSpec.parse(bad)


def test_charuco_calibration_from_rendered_views():
    from scipy.spatial.transform import Rotation

    board = BoardSpec.parse("charuco:8x6:20:15")
    camera = CameraModel([[800, 0, 330], [0, 800, 236], [0, 0, 1]], np.zeros(5), (640, 480))
    views = {}
    for i, (rx, ry, rz) in enumerate([(20, 0, 0), (-20, 5, 10), (0, 25, -5), (5, -25, 20), (15, 15, 0), (-10, -15, -15)]):
        R = Rotation.from_euler("xyz", [rx, ry, rz], degrees=True).as_matrix()
        center = board.object_points().mean(axis=0)
        T_cam_board = make_transform(R, [0, 0, 480] - R @ center)
        views[f"view{i}"] = board.detect(render_board_view(board, camera, T_cam_board, supersample=2))
    result = calibrate_intrinsics(views, (640, 480), flags=calibration_flags("k2", zero_tangent=True))
    assert not result.rejected and result.rms_px < 0.2
    np.testing.assert_allclose(result.camera.K[[0, 1, 0, 1], [0, 1, 2, 2]], [800, 800, 330, 236], rtol=0.01)
