"""Robot pose conventions: round trips, vendors' documented reference values, CSV files, transforms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from holevision.calibration.errors import CalibrationError
from holevision.calibration.poses import POSE_FORMATS, pose_to_transform, read_pose_csv, transform_to_pose, write_pose_csv
from holevision.calibration.transforms import invert_transform, make_transform, transform_points


def _random_transforms(n, seed=0):
    rng = np.random.default_rng(seed)
    return [make_transform(Rotation.random(random_state=rng.integers(1 << 31)).as_matrix(), rng.uniform(-900, 900, 3))
            for _ in range(n)]


@pytest.mark.parametrize("fmt", POSE_FORMATS)
def test_every_format_round_trips(fmt):
    for T in _random_transforms(20):
        back = pose_to_transform(transform_to_pose(T, fmt), fmt)
        np.testing.assert_allclose(back, T, atol=1e-9)


def test_reference_values_from_vendor_definitions():
    # KUKA A, B, C: rotate about Z by A, then about the new Y by B, then the new X by C.
    # A = 90: the tool x axis points along base +y.
    T = pose_to_transform([100, 200, 300, 90, 0, 0], "kuka")
    np.testing.assert_allclose(T[:3, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [100, 200, 300])
    # KUKA B = 90: tool x axis points along base -z.
    np.testing.assert_allclose(pose_to_transform([0, 0, 0, 0, 90, 0], "kuka")[:3, 0], [0, 0, -1], atol=1e-12)
    # FANUC W, P, R (fixed axes X, Y, Z) is the same matrix as KUKA A=R, B=P, C=W.
    np.testing.assert_allclose(pose_to_transform([1, 2, 3, 10, 20, 30], "fanuc"),
                               pose_to_transform([1, 2, 3, 30, 20, 10], "kuka"), atol=1e-12)
    # FANUC W = 180 (the usual tool-down pose): tool z points along base -z.
    np.testing.assert_allclose(pose_to_transform([0, 0, 0, 180, 0, 0], "fanuc")[:3, 2], [0, 0, -1], atol=1e-12)
    # UR: metres and a rotation vector; (0, pi, 0) turns the tool z down; x is converted to mm.
    T = pose_to_transform([0.4, -0.1, 0.25, 0, np.pi, 0], "ur")
    np.testing.assert_allclose(T[:3, 3], [400, -100, 250])
    np.testing.assert_allclose(T[:3, 2], [0, 0, -1], atol=1e-12)
    # ABB: quaternion q1..q4 = w, x, y, z; [0, 0, 1, 0] is 180 deg about y (tool down), [cos45, 0, 0, sin45] 90 about z.
    np.testing.assert_allclose(pose_to_transform([0, 0, 0, 0, 0, 1, 0], "abb")[:3, 2], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(pose_to_transform([0, 0, 0, np.sqrt(0.5), 0, 0, np.sqrt(0.5)], "abb")[:3, 0], [0, 1, 0], atol=1e-12)
    # the same orientation through every convention
    T = pose_to_transform([500, 0, 400, 0, 0, 1, 0], "abb")
    for fmt in POSE_FORMATS:
        np.testing.assert_allclose(pose_to_transform(transform_to_pose(T, fmt), fmt), T, atol=1e-9)
    np.testing.assert_allclose(transform_to_pose(T, "ur")[:3], [0.5, 0, 0.4])


def test_transform_inverse_and_points_round_trip():
    for T_a_b in _random_transforms(5, seed=3):
        p_b = np.random.default_rng(1).normal(size=(10, 3)) * 100
        p_a = transform_points(T_a_b, p_b)
        np.testing.assert_allclose(transform_points(invert_transform(T_a_b), p_a), p_b, atol=1e-9)
        np.testing.assert_allclose(invert_transform(T_a_b) @ T_a_b, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("fmt", POSE_FORMATS)
def test_csv_round_trip_keeps_names(tmp_path, fmt):
    Ts = _random_transforms(4, seed=5)
    path = tmp_path / f"poses_{fmt}.csv"
    write_pose_csv(path, Ts, fmt, names=[f"img{i}.png" for i in range(4)])
    poses = read_pose_csv(path, fmt)
    assert poses.names == [f"img{i}.png" for i in range(4)]
    np.testing.assert_allclose(poses.transforms, np.array(Ts), atol=1e-9)


def test_csv_reads_vendor_headers_in_any_order_with_comments(tmp_path):
    path = tmp_path / "kuka.csv"
    path.write_text("# exported from KRC\nA,B,C,X,Y,Z,image\n90,0,0,100,200,300,a.png\n0, 90, 0, 1, 2, 3, b.png\n")
    poses = read_pose_csv(path, "kuka")
    np.testing.assert_allclose(poses.transforms[0][:3, 3], [100, 200, 300])
    assert poses.names == ["a.png", "b.png"]


def test_csv_errors_name_file_line_and_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y,z,rx,ry\n1,2,3,4,5\n")
    with pytest.raises(CalibrationError, match=r"bad\.csv.*rz"):
        read_pose_csv(path, "ur")
    path.write_text("x,y,z,q1,q2,q3,q4\n0,0,0,1,0,0,0\n0,0,0,2,0,0,0\n")
    with pytest.raises(CalibrationError, match=r"bad\.csv: line 3.*unit length"):
        read_pose_csv(path, "abb")
    with pytest.raises(CalibrationError, match="not found"):
        read_pose_csv(tmp_path / "none.csv", "ur")
    with pytest.raises(CalibrationError, match="unknown pose format"):
        read_pose_csv(path, "yaskawa")
