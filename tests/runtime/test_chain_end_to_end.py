"""Issue 6's chain, end to end: holes at known base-frame positions, rendered through a known camera and
hand-eye (eye-to-hand), found and measured by the runtime's Detector, transformed back to the base frame.

The "model" is the classical dark-pixel bundle of fake_bundle.py: this test is about measurement and
geometry (subpixel edge fit -> perspective-exact ellipse back-projection -> hand-eye), not about the
network, which is evaluated separately.
"""

from __future__ import annotations

import numpy as np
import pytest

from holevision.calibration.camera import CameraModel
from holevision.calibration.chain import ellipse_to_base
from holevision.calibration.plane import Plane
from holevision.calibration.transforms import invert_transform, transform_points
from holevision.runtime.detector import Detector
from holevision.runtime.synthparts.conics import circle_conic, conic_coverage, ellipse_bbox, ellipse_from_conic, transform_conic

WIDTH, HEIGHT = 1280, 1024
FOCAL_PX = 3000.0          # at ~300 mm working distance: ~0.1 mm/px
SURFACE_GREY, HOLE_GREY, NOISE_SIGMA = 205.0, 35.0, 2.0


def _rotation(axis, angle_deg):
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    t = np.radians(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def _camera_over_table(tilt_deg: float) -> np.ndarray:
    """T_base_cam of a camera ~300 mm above the table (base z = 0), looking down, tilted about base x."""
    R_base_cam = _rotation([1, 0, 0], 180.0 + tilt_deg) @ _rotation([0, 0, 1], 7.0)
    T = np.eye(4)
    T[:3, :3] = R_base_cam
    T[:3, 3] = [400.0, -120.0, 0.0] + R_base_cam @ [0.0, 0.0, -300.0]   # optical axis hits (400, -120, 0)
    return T


def _render(camera: CameraModel, T_base_cam: np.ndarray, centers_base_xy: np.ndarray, diameters_mm: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dark holes on a bright table, anti-aliased from the exact projected conics; returns image, GT (u, v)."""
    T_cam_base = invert_transform(T_base_cam)
    H_img_table = camera.K @ T_cam_base[:3][:, [0, 1, 3]]          # table plane z = 0 -> image
    image = np.full((HEIGHT, WIDTH), SURFACE_GREY, dtype=np.float64)
    gt_centers = []
    for (x, y), d in zip(centers_base_xy, diameters_mm):
        conic = transform_conic(H_img_table, circle_conic((x, y), d / 2.0))
        center, axes, angle = ellipse_from_conic(conic)
        u0, v0, u1, v1 = ellipse_bbox(center, axes, angle)
        c0, r0 = int(np.floor(u0)) - 2, int(np.floor(v0)) - 2
        c1, r1 = int(np.ceil(u1)) + 3, int(np.ceil(v1)) + 3
        vv, uu = np.mgrid[r0:r1, c0:c1].astype(np.float64)
        coverage = conic_coverage(conic, uu, vv, supersample=8)
        window = image[r0:r1, c0:c1]
        window[:] = window * (1 - coverage) + HOLE_GREY * coverage
        gt_centers.append(center)
    image = cv2_blur(image) + rng.normal(0.0, NOISE_SIGMA, image.shape)
    bgr = np.repeat(np.clip(np.rint(image), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return bgr, np.asarray(gt_centers)


def cv2_blur(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), 0.7)


@pytest.mark.parametrize("tilt_deg", [0.0, 20.0])
def test_holes_at_known_base_positions_come_back_within_0_2_mm(make_bundle, tilt_deg):
    rng = np.random.default_rng(6)
    camera = CameraModel(K=[[FOCAL_PX, 0, WIDTH / 2 - 0.5], [0, FOCAL_PX, HEIGHT / 2 - 0.5], [0, 0, 1]],
                         dist=np.zeros(5), image_size=(WIDTH, HEIGHT))
    T_base_cam = _camera_over_table(tilt_deg)
    xs, ys = np.meshgrid(np.linspace(-45, 45, 5), np.linspace(-32, 32, 4))
    centers_base_xy = np.c_[xs.ravel() + 400.0, ys.ravel() - 120.0] + rng.uniform(-1.5, 1.5, (20, 2))
    diameters_mm = rng.uniform(2.5, 10.0, len(centers_base_xy))      # ~25..100 px
    image, gt_uv = _render(camera, T_base_cam, centers_base_xy, diameters_mm, rng)

    detector = Detector(make_bundle(height=512, width=512, overlap_px=128))
    holes = detector.detect(image).holes
    assert len(holes) == len(gt_uv), f"found {len(holes)} holes, rendered {len(gt_uv)}"

    plane_cam = Plane(point=[0, 0, 0], normal=[0, 0, 1]).transformed(invert_transform(T_base_cam))
    points_base, approach, measured_d_mm = ellipse_to_base(holes.centers, holes.axes, holes.angles,
                                                           camera, plane_cam, T_base_cam)
    truth = np.c_[centers_base_xy, np.zeros(len(centers_base_xy))]
    # one-to-one by nearest truth (holes are >= 10 mm apart)
    nearest = np.argmin(np.linalg.norm(points_base[:, None, :] - truth[None], axis=2), axis=1)
    assert len(set(nearest.tolist())) == len(truth)
    errors_mm = np.linalg.norm(points_base - truth[nearest], axis=1)
    diameter_errors_mm = np.abs(measured_d_mm - diameters_mm[nearest])
    pixel_errors = np.linalg.norm(holes.centers - gt_uv[nearest], axis=1)
    assert errors_mm.max() <= 0.2, (f"tilt {tilt_deg}: max position error {errors_mm.max():.3f} mm "
                                    f"(RMS {np.sqrt(np.mean(errors_mm ** 2)):.3f}), pixel RMS "
                                    f"{np.sqrt(np.mean(pixel_errors ** 2)):.3f}")
    assert diameter_errors_mm.max() <= 0.1, f"max diameter error {diameter_errors_mm.max():.3f} mm"
    # approach vector: into the table, i.e. -z of the base frame
    np.testing.assert_allclose(approach, np.tile([0, 0, -1.0], (len(truth), 1)), atol=1e-9)
    # sanity of the scale this test claims (~0.1 mm/px)
    mm_per_px = np.median(diameters_mm[nearest] / holes.diameters_px)
    assert 0.08 < mm_per_px < 0.13
    print(f"tilt {tilt_deg}: position error RMS {np.sqrt(np.mean(errors_mm ** 2)):.4f} mm, "
          f"max {errors_mm.max():.4f} mm; diameter max {diameter_errors_mm.max():.4f} mm; "
          f"pixel RMS {np.sqrt(np.mean(pixel_errors ** 2)):.4f} px")
