"""`holevision calib ...` end to end on files: hand-eye from rendered board images and from pose files,
work plane, n-point, pose conversion, intrinsics on OpenCV's samples; errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from holevision.calibration.camera import CameraModel
from holevision.calibration.handeye_file import load_handeye
from holevision.calibration.plane import load_plane
from holevision.calibration.poses import read_pose_csv, write_pose_csv
from holevision.calibration.synthetic import make_handeye_scene, render_board_view
from holevision.calibration.transforms import invert_transform, make_transform, transform_difference
from holevision.runtime import cli

SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")


def _run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_handeye_from_pose_files_names_rejected_poses(tmp_path, capsys):
    scene = make_handeye_scene("eye-to-hand", n_poses=15, seed=3, corrupt_fraction=0.2)
    write_pose_csv(tmp_path / "robot.csv", scene.T_base_flange, "kuka", names=scene.names)
    write_pose_csv(tmp_path / "target.csv", scene.T_cam_target, "matrix")
    code, out, err = _run(["calib", "handeye", "--mode", "eye-to-hand", "--robot-poses", str(tmp_path / "robot.csv"),
                           "--pose-format", "kuka", "--target-poses", str(tmp_path / "target.csv"),
                           "--out", str(tmp_path / "handeye.json")], capsys)
    assert code == 0, err
    mode, T = load_handeye(tmp_path / "handeye.json")
    assert mode == "eye-to-hand"
    dt, dr = transform_difference(T["T_base_cam"], scene.X_true)
    assert dt < 0.5 and dr < 0.05
    doc = json.loads((tmp_path / "handeye.json").read_text())
    assert sorted(doc["rejected_poses"]) == sorted(scene.corrupted)
    assert doc["leave_one_out_rms_mm"] > 0 and "tsai" in doc["opencv_methods"]
    for name in scene.corrupted:
        assert f"rejected {name}" in out


def test_handeye_and_plane_from_rendered_images(tmp_path, capsys):
    scene = make_handeye_scene("eye-to-hand", n_poses=10, seed=1, robot_noise_mm=0.0, robot_noise_deg=0.0)
    camera = CameraModel(scene.camera.K, np.zeros(5), scene.camera.image_size)
    camera.save(tmp_path / "camera.json")
    (tmp_path / "he").mkdir()
    for i, T_base_flange in enumerate(scene.T_base_flange):
        T_cam_target = invert_transform(scene.X_true) @ T_base_flange @ scene.Y_true
        image = render_board_view(scene.board, camera, T_cam_target, px_per_mm=4, supersample=2)
        cv2.imwrite(str(tmp_path / "he" / f"view{i:02d}.png"), image)
    # the robot's file lists its poses in another order, with the image names: pairing goes by name
    names = [f"view{i:02d}.png" for i in range(len(scene.T_base_flange))]
    write_pose_csv(tmp_path / "robot.csv", scene.T_base_flange[::-1], "ur", names=names[::-1])
    board = str(scene.board)
    code, out, err = _run(["calib", "handeye", "--mode", "eye-to-hand", "--robot-poses", str(tmp_path / "robot.csv"),
                           "--pose-format", "ur", "--images", str(tmp_path / "he" / "*.png"), "--board", board,
                           "--camera", str(tmp_path / "camera.json"), "--out", str(tmp_path / "handeye.json"), "--no-loo"],
                          capsys)
    assert code == 0, err
    _, T = load_handeye(tmp_path / "handeye.json")
    dt, dr = transform_difference(T["T_base_cam"], scene.X_true)
    assert dt < 0.5 and dr < 0.05, (dt, dr)

    # the same board lying on the table, 5 mm thick part on it: plane in camera and base frames
    T_base_board = make_transform(np.diag([1.0, -1.0, -1.0]), [520, -330, 0])     # board z into the table
    T_cam_board = invert_transform(scene.X_true) @ T_base_board
    cv2.imwrite(str(tmp_path / "table.png"), render_board_view(scene.board, camera, T_cam_board, px_per_mm=4, supersample=2))
    code, out, err = _run(["calib", "plane", "--image", str(tmp_path / "table.png"), "--board", board,
                           "--camera", str(tmp_path / "camera.json"), "--handeye", str(tmp_path / "handeye.json"),
                           "--thickness-mm", "5", "--out", str(tmp_path / "plane.json")], capsys)
    assert code == 0, err
    plane_base = load_plane(tmp_path / "plane.json", "base")
    assert np.degrees(np.arccos(plane_base.normal @ [0, 0, 1])) < 0.1
    assert abs(plane_base.signed_distance(np.array([600.0, -300.0, 5.0]))) < 0.5

    # a point on the part's top face, seen at a pixel, comes back in the base frame
    p_base = np.array([580.0, -280.0, 5.0])
    uv = camera.project((invert_transform(scene.X_true) @ np.r_[p_base, 1.0])[:3])[0]
    code, out, err = _run(["calib", "locate", "--camera", str(tmp_path / "camera.json"), "--plane", str(tmp_path / "plane.json"),
                           "--handeye", str(tmp_path / "handeye.json"), "--pixel", f"{uv[0]},{uv[1]}"], capsys)
    assert code == 0, err
    located = np.array([float(x) for x in out.splitlines()[1].split()[2:5]])
    assert np.linalg.norm(located - p_base) < 0.5, located


def test_npoint_and_convert_poses(tmp_path, capsys):
    rows = ["u,v,x,y"] + [f"{u},{v},{0.1 * u + 300},{-0.1 * v + 20}" for u in (100, 500, 900) for v in (100, 400, 700)]
    (tmp_path / "touch.csv").write_text("\n".join(rows) + "\n")
    code, out, err = _run(["calib", "npoint", "--points", str(tmp_path / "touch.csv"), "--out", str(tmp_path / "np.json")], capsys)
    assert code == 0, err
    assert "affine: RMS 0.0000 mm" in out
    scene = make_handeye_scene("eye-in-hand", n_poses=4, seed=0)
    write_pose_csv(tmp_path / "kuka.csv", scene.T_base_flange, "kuka")
    assert _run(["calib", "convert-poses", str(tmp_path / "kuka.csv"), "--from", "kuka", "--to", "abb",
                 "--out", str(tmp_path / "abb.csv")], capsys)[0] == 0
    np.testing.assert_allclose(read_pose_csv(tmp_path / "abb.csv", "abb").transforms, scene.T_base_flange, atol=1e-9)


def test_user_errors_are_one_line(tmp_path, capsys):
    scene = make_handeye_scene("eye-in-hand", n_poses=6, seed=0)
    write_pose_csv(tmp_path / "robot.csv", scene.T_base_flange, "fanuc")
    write_pose_csv(tmp_path / "target.csv", scene.T_cam_target[:5], "matrix")
    code, _, err = _run(["calib", "handeye", "--mode", "eye-in-hand", "--robot-poses", str(tmp_path / "robot.csv"),
                         "--pose-format", "fanuc", "--target-poses", str(tmp_path / "target.csv"), "--out", str(tmp_path / "h.json")], capsys)
    assert code == 2 and "target.csv: 5 poses" in err and "Traceback" not in err
    code, _, err = _run(["calib", "handeye", "--mode", "eye-in-hand", "--robot-poses", str(tmp_path / "robot.csv"),
                         "--pose-format", "ur", "--target-poses", str(tmp_path / "target.csv"), "--out", str(tmp_path / "h.json")], capsys)
    assert code == 2 and "robot.csv" in err and "rx" in err


def test_intrinsics_command_on_opencv_samples(tmp_path, capsys):
    if not (SAMPLES / "left01.jpg").exists():
        pytest.skip("OpenCV sample images not installed (apt-get install opencv-doc)")
    code, out, err = _run(["calib", "intrinsics", "--images", str(SAMPLES / "left[0-9]*.jpg"), "--board", "chessboard:9x6:25",
                           "--fix-aspect-ratio", "--out", str(tmp_path / "camera.json")], capsys)
    assert code == 0, err
    cam = CameraModel.load(tmp_path / "camera.json")
    assert abs(cam.fx - 535.9) / 535.9 < 0.01 and cam.fx == cam.fy
    assert "left02.jpg" in out and "rejected" in out
    assert cam.report["rejected_views"] == {"left02.jpg": cam.report["rejected_views"]["left02.jpg"]}
