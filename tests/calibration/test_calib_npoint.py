"""N-point calibration: affine and homography fits, residuals, leave-one-out, file round trip, errors."""

from __future__ import annotations

import numpy as np
import pytest

from holevision.calibration.errors import CalibrationError
from holevision.calibration.npoint import NPointCalibration, apply_matrix, fit_npoint, read_npoint_csv

H_TRUE = np.array([[0.1, 0.01, 400.0], [-0.012, 0.098, -50.0], [2e-5, -1e-5, 1.0]])   # mild perspective


def _touch_points(noise_mm=0.0, seed=0):
    u, v = np.meshgrid([200, 1000, 1800], [150, 750, 1350])
    uv = np.c_[u.ravel(), v.ravel()].astype(float)
    xy = apply_matrix(H_TRUE, uv) + np.random.default_rng(seed).normal(0, noise_mm, (9, 2))
    return uv, xy


def test_homography_recovers_perspective_and_affine_shows_it_in_residuals():
    uv, xy = _touch_points()
    h = fit_npoint(uv, xy, "homography")
    assert h.rms_mm < 1e-4 and h.loo_rms_mm < 1e-4
    a = fit_npoint(uv, xy, "affine")
    assert a.rms_mm > 0.5 and a.loo_rms_mm > a.rms_mm   # the affine shortcut cannot model perspective
    probe = np.array([[640.0, 480.0]])
    np.testing.assert_allclose(h.pixel_to_robot_xy(probe), apply_matrix(H_TRUE, probe), atol=1e-4)


def test_noise_shows_in_residuals_and_leave_one_out():
    uv, xy = _touch_points(noise_mm=0.05)
    h = fit_npoint(uv, xy, "homography")
    assert 0.01 < h.rms_mm < 0.1
    assert h.loo_rms_mm > h.rms_mm
    assert len(h.residuals_mm) == 9 and not h.warnings


def test_file_round_trip_and_csv(tmp_path):
    uv, xy = _touch_points(noise_mm=0.02)
    rows = ["u,v,x,y,z"] + [f"{a},{b},{c},{d},15.0" for (a, b), (c, d) in zip(uv, xy)]
    (tmp_path / "touch.csv").write_text("\n".join(rows) + "\n")
    uv2, xy2, z = read_npoint_csv(tmp_path / "touch.csv")
    np.testing.assert_allclose(uv2, uv)
    assert z == 15.0
    cal = fit_npoint(uv2, xy2, "affine", z)
    cal.save(tmp_path / "npoint.json")
    back = NPointCalibration.load(tmp_path / "npoint.json")
    np.testing.assert_allclose(back.H_robot_pixel, cal.H_robot_pixel)
    assert back.z_mm == 15.0 and back.model == "affine"


def test_errors_and_warnings(tmp_path):
    uv, xy = _touch_points()
    with pytest.raises(CalibrationError, match="at least 4"):
        fit_npoint(uv[:3], xy[:3])
    with pytest.raises(CalibrationError, match="model"):
        fit_npoint(uv, xy, "spline")
    assert fit_npoint(uv[:4], xy[:4], "homography").warnings   # 4 points determine a homography: say so
    (tmp_path / "bad.csv").write_text("u,v,x\n1,2,3\n")
    with pytest.raises(CalibrationError, match=r"bad\.csv.*'y'"):
        read_npoint_csv(tmp_path / "bad.csv")
