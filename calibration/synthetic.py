"""Synthetic hand-eye scenes with known ground truth, for tests and `holevision calib handeye-check`.

A scene: a camera (K, mild distortion), a chessboard, the true hand-eye transforms, robot poses with
noise, board corners projected through the true geometry with pixel noise, board poses by PnP from
those corners, and optionally a fraction of corrupted pose pairs (a flipped board: corner order
reversed, so PnP returns the board turned 180 degrees; or a wrong robot pose: 20-60 mm, 3-10 deg off).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from .boards import BoardDetection, BoardSpec
from .camera import CameraModel
from .intrinsics import board_pose
from .transforms import invert_transform, make_transform, transform_points

MODES = ("eye-in-hand", "eye-to-hand")


@dataclass
class HandEyeScene:
    mode: str
    camera: CameraModel
    board: BoardSpec
    X_true: np.ndarray                  # eye-in-hand: T_flange_cam; eye-to-hand: T_base_cam
    Y_true: np.ndarray                  # eye-in-hand: T_base_target; eye-to-hand: T_flange_target
    T_base_flange: np.ndarray           # (N, 4, 4) as the robot reports them (noisy, maybe corrupted)
    detections: list[BoardDetection]    # corners with pixel noise (maybe corrupted)
    T_cam_target: np.ndarray            # (N, 4, 4) PnP from the detections
    names: list[str]
    corrupted: dict[str, str] = field(default_factory=dict)  # name -> what was done to it


def _perturb(T: np.ndarray, rng, sigma_mm: float, sigma_deg: float) -> np.ndarray:
    dR = Rotation.from_rotvec(np.radians(rng.normal(0, sigma_deg, 3))).as_matrix()
    return make_transform(T[:3, :3] @ dR, T[:3, 3] + rng.normal(0, sigma_mm, 3))


def _random_view(rng, board: BoardSpec) -> np.ndarray:
    """T_target_cam: camera 450-650 mm from the board center, tilted up to 35 deg, rolled up to 60 deg."""
    pts = board.object_points()
    center = pts.mean(axis=0) + np.r_[rng.uniform(-30, 30, 2), 0]
    tilt, azimuth = np.radians(rng.uniform(5, 35)), rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(450, 650)
    # board z points into the board, so the camera sits on the -z side
    direction = np.array([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), -np.cos(tilt)])
    position = center + distance * direction
    z = (center - position) / np.linalg.norm(center - position)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z], axis=1)
    R = R @ Rotation.from_rotvec([0, 0, rng.uniform(-np.pi / 3, np.pi / 3)]).as_matrix()
    return make_transform(R, position)


def make_handeye_scene(mode: str = "eye-in-hand", n_poses: int = 20, seed: int = 0, *,
                       robot_noise_mm: float = 0.1, robot_noise_deg: float = 0.02,
                       corner_noise_px: float = 0.2, corrupt_fraction: float = 0.0) -> HandEyeScene:
    """Noise figures are per-axis standard deviations."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    rng = np.random.default_rng(seed)
    camera = CameraModel(K=[[1800, 0, 640], [0, 1800, 512], [0, 0, 1]], dist=[-0.1, 0.05, 0, 0, 0],
                         image_size=(1280, 1024))
    board = BoardSpec.parse("chessboard:11x8:25")
    obj = board.object_points()
    if mode == "eye-in-hand":
        X = make_transform(Rotation.from_rotvec([0.03, -0.02, 1.2]).as_matrix(), [40, -60, 90])          # T_flange_cam
        Y = make_transform(Rotation.from_euler("xz", [180, 20], degrees=True).as_matrix(), [700, 100, 50])  # T_base_target
    else:
        X = make_transform(Rotation.from_euler("xyz", [175, 8, 95], degrees=True).as_matrix(), [600, -300, 1100])  # T_base_cam
        Y = make_transform(Rotation.from_euler("xyz", [5, -4, 30], degrees=True).as_matrix(), [10, -20, 60])     # T_flange_target
    T_base_flange, detections, names = [], [], []
    while len(names) < n_poses:
        T_target_cam = _random_view(rng, board)
        T_cam_target = invert_transform(T_target_cam)
        uv = camera.project(transform_points(T_cam_target, obj))
        w, h = camera.image_size
        if uv.min() < 20 or uv[:, 0].max() > w - 20 or uv[:, 1].max() > h - 20:
            continue
        if mode == "eye-in-hand":
            T = Y @ T_target_cam @ invert_transform(X)     # T_base_flange = T_base_target T_target_cam T_cam_flange
        else:
            T = X @ T_cam_target @ invert_transform(Y)     # T_base_flange = T_base_cam T_cam_target T_target_flange
        T_base_flange.append(_perturb(T, rng, robot_noise_mm, robot_noise_deg))
        detections.append(BoardDetection(uv + rng.normal(0, corner_noise_px, uv.shape), obj.copy(), np.arange(len(obj))))
        names.append(f"pose{len(names) + 1:02d}")
    corrupted = {}
    n_bad = int(round(corrupt_fraction * n_poses))
    for k, i in enumerate(rng.choice(n_poses, n_bad, replace=False)):
        if k % 2 == 0:
            d = detections[i]
            detections[i] = BoardDetection(d.image_points[::-1].copy(), d.object_points, d.ids)
            corrupted[names[i]] = "flipped board (corner order reversed)"
        else:
            axis = rng.normal(size=3)
            offset_t = axis / np.linalg.norm(axis) * rng.uniform(20, 60)
            rv = rng.normal(size=3)
            dR = Rotation.from_rotvec(rv / np.linalg.norm(rv) * np.radians(rng.uniform(3, 10))).as_matrix()
            T_base_flange[i] = make_transform(T_base_flange[i][:3, :3] @ dR, T_base_flange[i][:3, 3] + offset_t)
            corrupted[names[i]] = "wrong robot pose"
    T_cam_target = np.array([board_pose(camera, d)[0] for d in detections])
    return HandEyeScene(mode=mode, camera=camera, board=board, X_true=X, Y_true=Y,
                        T_base_flange=np.array(T_base_flange), detections=detections,
                        T_cam_target=T_cam_target, names=names, corrupted=corrupted)


def render_board_view(board: BoardSpec, camera: CameraModel, T_cam_board: np.ndarray, *, px_per_mm: float = 8.0,
                      margin_mm: float = 10.0, supersample: int = 4, background: int = 128) -> np.ndarray:
    """Grayscale image of the board seen by a pinhole camera (the camera's distortion is ignored: give
    a camera with zero distortion), anti-aliased by warping at ``supersample`` x and box-averaging down."""
    flat = board.render(px_per_mm, margin_mm)
    offset = margin_mm + (board.square_mm if board.kind == "chessboard" else 0.0)
    # flat pixel (x, y) -> board mm: X = (x + 0.5) / ppm - offset  (pixel centers at integers)
    S = np.array([[1 / px_per_mm, 0, 0.5 / px_per_mm - offset], [0, 1 / px_per_mm, 0.5 / px_per_mm - offset], [0, 0, 1]])
    k = supersample
    K_big = np.diag([k, k, 1.0]) @ camera.K + np.array([[0, 0, (k - 1) / 2], [0, 0, (k - 1) / 2], [0, 0, 0]])
    H = K_big @ np.c_[T_cam_board[:3, 0], T_cam_board[:3, 1], T_cam_board[:3, 3]] @ S
    w, h = camera.image_size
    big = cv2.warpPerspective(flat, H, (w * k, h * k), flags=cv2.INTER_LINEAR, borderValue=background)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
