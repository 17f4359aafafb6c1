"""Hand-eye calibration: eye-in-hand (AX = XB) and eye-to-hand (AX = YB), robust and refined.

Both set-ups are solved in one form, ``A_i X = Y B_i`` with

==============  ========================  ===============  ===================  =================
mode            A_i                       X (wanted)       Y (by-product)       B_i
==============  ========================  ===============  ===================  =================
eye-in-hand     T_base_flange_i           T_flange_cam     T_base_target        T_target_cam_i
eye-to-hand     T_flange_base_i           T_base_cam       T_flange_target      T_target_cam_i
==============  ========================  ===============  ===================  =================

so that the board pose predicted by a solution is ``T_cam_target_i = X^-1 A_i^-1 Y``.

Steps: (1) every OpenCV solver (``calibrateHandEye``: Tsai, Park, Horaud, Andreff, Daniilidis;
``calibrateRobotWorldHandEye``: Shah, Li) on all pose pairs, and the same solvers on random small
subsets (RANSAC); (2) the candidate with the best truncated (MSAC) cost over per-pose residuals wins
and fixes the inlier pose pairs; (3) nonlinear least squares (scipy) over X and Y on the inliers: on
board-corner reprojection error when corners are given, else on pose residuals weighted by their own
scatter; outliers re-checked against the refined solution; (4) residuals per pose (mm at the board
center, degrees), leave-one-out error, OpenCV methods' agreement, and a degenerate-motion warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from .boards import BoardDetection
from .camera import CameraModel
from .errors import CalibrationError
from .transforms import invert_transform, make_transform, mean_transform, transform_difference

MODES = ("eye-in-hand", "eye-to-hand")
HAND_EYE_METHODS = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI, "park": cv2.CALIB_HAND_EYE_PARK, "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "andreff": cv2.CALIB_HAND_EYE_ANDREFF, "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
ROBOT_WORLD_METHODS = {"shah": cv2.CALIB_ROBOT_WORLD_HAND_EYE_SHAH, "li": cv2.CALIB_ROBOT_WORLD_HAND_EYE_LI}
OPENCV_METHODS = tuple(HAND_EYE_METHODS) + tuple(ROBOT_WORLD_METHODS)
MIN_POSES = 3
FRAME_NAMES = {  # mode -> (name of X, name of Y)
    "eye-in-hand": ("T_flange_cam", "T_base_target"),
    "eye-to-hand": ("T_base_cam", "T_flange_target"),
}


@dataclass
class HandEyeInput:
    """Pose pairs for one calibration. ``detections`` (with ``camera``) enables reprojection refinement."""

    mode: str
    T_base_flange: np.ndarray                  # (N, 4, 4) robot poses at capture, mm
    T_cam_target: np.ndarray                   # (N, 4, 4) board poses in the camera, mm
    names: list[str] | None = None
    camera: CameraModel | None = None
    detections: list[BoardDetection] | None = None
    target_center: np.ndarray | None = None    # board-frame point where mm residuals are measured

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CalibrationError(f"hand-eye mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        self.T_base_flange = np.asarray(self.T_base_flange, dtype=np.float64).reshape(-1, 4, 4)
        self.T_cam_target = np.asarray(self.T_cam_target, dtype=np.float64).reshape(-1, 4, 4)
        n = len(self.T_base_flange)
        if len(self.T_cam_target) != n:
            raise CalibrationError(f"{n} robot poses but {len(self.T_cam_target)} target poses; they must pair up "
                                   f"one to one, in the same order")
        if n < MIN_POSES:
            raise CalibrationError(f"hand-eye needs at least {MIN_POSES} pose pairs (15-25 recommended), got {n}")
        if self.names is None:
            self.names = [f"row {i + 1}" for i in range(n)]
        if self.detections is not None and (self.camera is None or len(self.detections) != n):
            raise CalibrationError("board detections need the camera model and one detection per pose")
        if self.target_center is None:
            self.target_center = (np.mean(np.concatenate([d.object_points for d in self.detections]), axis=0)
                                  if self.detections is not None else np.zeros(3))

    @property
    def A(self) -> np.ndarray:
        return self.T_base_flange if self.mode == "eye-in-hand" else np.array([invert_transform(T) for T in self.T_base_flange])

    @property
    def B(self) -> np.ndarray:
        return np.array([invert_transform(T) for T in self.T_cam_target])


@dataclass
class HandEyeResult:
    mode: str
    X: np.ndarray                      # T_flange_cam (eye-in-hand) or T_base_cam (eye-to-hand)
    Y: np.ndarray                      # T_base_target (eye-in-hand) or T_flange_target (eye-to-hand)
    method: str                        # e.g. "park + RANSAC + reprojection LM"
    inliers: np.ndarray                # (N,) bool
    rejected: dict[str, str]           # pose name -> why
    residual_mm: np.ndarray            # (N,) per pose, board center position disagreement
    residual_deg: np.ndarray           # (N,) per pose
    reprojection_rms_px: float | None  # on inliers, when corners were given
    loo_mm: float | None               # leave-one-out RMS (mm) over inliers
    loo_deg: float | None
    opencv: dict[str, dict]            # method -> {residual_rms_mm, residual_rms_deg, diff_mm, diff_deg}
    warnings: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    rotation_diversity: dict = field(default_factory=dict)

    @property
    def frame_names(self) -> tuple[str, str]:
        return FRAME_NAMES[self.mode]

    def rms(self) -> tuple[float, float]:
        i = self.inliers
        return (float(np.sqrt(np.mean(self.residual_mm[i] ** 2))), float(np.sqrt(np.mean(self.residual_deg[i] ** 2))))

    def summary(self) -> dict:
        x_name, y_name = self.frame_names
        rms_mm, rms_deg = self.rms()
        return {
            "mode": self.mode, x_name: self.X, y_name: self.Y, "method": self.method,
            "residual_rms_mm": rms_mm, "residual_rms_deg": rms_deg,
            "reprojection_rms_px": self.reprojection_rms_px,
            "leave_one_out_rms_mm": self.loo_mm, "leave_one_out_rms_deg": self.loo_deg,
            "poses_used": int(self.inliers.sum()), "poses_total": len(self.inliers),
            "rejected_poses": self.rejected,
            "per_pose": [{"name": n, "residual_mm": float(m), "residual_deg": float(d), "used": bool(u)}
                         for n, m, d, u in zip(self.names, self.residual_mm, self.residual_deg, self.inliers)],
            "opencv_methods": self.opencv, "rotation_diversity": self.rotation_diversity,
            "warnings": self.warnings,
        }


# --- OpenCV starting points -----------------------------------------------------------------------
def opencv_solve(A: np.ndarray, B: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(X, Y) from one OpenCV solver on pose pairs (A_i X = Y B_i); None when the solver fails."""
    Binv = np.array([invert_transform(b) for b in B])
    try:
        if method in HAND_EYE_METHODS:
            R, t = cv2.calibrateHandEye(A[:, :3, :3], A[:, :3, 3], Binv[:, :3, :3], Binv[:, :3, 3],
                                        method=HAND_EYE_METHODS[method])
            X = make_transform(R, t)
            if not np.all(np.isfinite(X)):
                return None
            Y = mean_transform(np.array([a @ X @ bi for a, bi in zip(A, Binv)]))
        else:
            Ainv = np.array([invert_transform(a) for a in A])
            R_w, t_w, R_c, t_c = cv2.calibrateRobotWorldHandEye(
                Binv[:, :3, :3], Binv[:, :3, 3], Ainv[:, :3, :3], Ainv[:, :3, 3], method=ROBOT_WORLD_METHODS[method])
            X = invert_transform(make_transform(R_c, t_c))
            Y = invert_transform(make_transform(R_w, t_w))
    except (cv2.error, np.linalg.LinAlgError):
        return None
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))) or abs(np.linalg.det(X[:3, :3]) - 1) > 1e-3:
        return None
    return X, Y


def pose_residuals(A, B, X, Y, center) -> tuple[np.ndarray, np.ndarray]:
    """Per pose: distance (mm) between where pose i puts the board center (A_i X B_i^-1) and where Y
    puts it, and the rotation angle (deg) between them."""
    Yi = np.einsum("nij,jk,nkl->nil", A, X, np.array([invert_transform(b) for b in B]))
    c = np.r_[center, 1.0]
    mm = np.linalg.norm((Yi @ c)[:, :3] - (Y @ c)[:3], axis=1)
    rel = np.einsum("ji,njk->nik", Y[:3, :3], Yi[:, :3, :3])
    deg = np.degrees(np.linalg.norm(Rotation.from_matrix(rel).as_rotvec(), axis=1))
    return mm, deg


def _msac_cost(mm, deg, tol_mm, tol_deg) -> np.ndarray:
    e = (mm / tol_mm) ** 2 + (deg / tol_deg) ** 2
    return np.minimum(e, 1.0)


# --- refinement ---------------------------------------------------------------------------------
def _exp(p: np.ndarray) -> np.ndarray:
    return make_transform(Rotation.from_rotvec(p[:3]).as_matrix(), p[3:])


def _refine_poses(A, B, X0, Y0, center, sigma_mm, sigma_deg):
    """Least squares on pose residuals: board-center position (mm / sigma_mm) and rotation (rad / sigma)."""
    Binv = np.array([invert_transform(b) for b in B])
    c = np.r_[center, 1.0]
    sigma_rad = np.radians(sigma_deg)

    def residuals(p):
        X, Y = X0 @ _exp(p[:6]), Y0 @ _exp(p[6:])
        Yi = np.einsum("nij,jk,nkl->nil", A, X, Binv)
        dpos = (Yi @ c)[:, :3] - (Y @ c)[:3]
        drot = Rotation.from_matrix(np.einsum("ji,njk->nik", Y[:3, :3], Yi[:, :3, :3])).as_rotvec()
        return np.concatenate([dpos.ravel() / sigma_mm, drot.ravel() / sigma_rad])

    sol = least_squares(residuals, np.zeros(12), method="lm", x_scale="jac")
    return X0 @ _exp(sol.x[:6]), Y0 @ _exp(sol.x[6:])


def _invert_many(T: np.ndarray) -> np.ndarray:
    out = np.tile(np.eye(4), (len(T), 1, 1))
    Rt = np.transpose(T[:, :3, :3], (0, 2, 1))
    out[:, :3, :3] = Rt
    out[:, :3, 3] = -(Rt @ T[:, :3, 3, None])[..., 0]
    return out


def _corner_noise_px(data: HandEyeInput, index: np.ndarray) -> float:
    """Pixel noise of the corners, estimated from each view's own PnP fit (median RMS, floor 0.05 px)."""
    rms = []
    for i in index:
        det, T = data.detections[i], data.T_cam_target[i]
        uv = data.camera.project(det.object_points @ T[:3, :3].T + T[:3, 3])
        m = len(uv)
        rms.append(np.sqrt(np.mean(np.sum((uv - det.image_points) ** 2, axis=1)) * m / max(m - 3, 1)))
    return max(float(np.median(rms)) / np.sqrt(2), 0.05)


def _refine_bundle(data: HandEyeInput, index, X0, Y0, robot_noise_mm, robot_noise_deg):
    """Maximum-likelihood refinement on board corners: unknowns X, Y and a small correction of every robot
    pose (its prior: the robot's noise), residuals = corner reprojection / pixel noise + corrections / robot
    noise. Treating robot poses as exact instead lets 0.02 deg of robot jitter (about 0.5 px at 500 mm)
    bias X by a millimetre."""
    index = np.asarray(index)
    n = len(index)
    T_bf = data.T_base_flange[index]
    obj = [data.detections[i].object_points for i in index]
    img = np.concatenate([data.detections[i].image_points for i in index])
    sizes = np.array([len(o) for o in obj])
    sigma_px = _corner_noise_px(data, index)
    prior_scale = np.r_[np.full(3, np.radians(robot_noise_deg)), np.full(3, robot_noise_mm)]
    eye_in_hand = data.mode == "eye-in-hand"

    same_size = bool(np.all(sizes == sizes[0]))
    obj_stack = np.stack(obj) if same_size else None

    def residuals(p):
        X, Y = X0 @ _exp(p[:6]), Y0 @ _exp(p[6:12])
        d = p[12:].reshape(n, 6)
        E = np.tile(np.eye(4), (n, 1, 1))
        E[:, :3, :3] = Rotation.from_rotvec(d[:, :3]).as_matrix()
        E[:, :3, 3] = d[:, 3:]
        T = T_bf @ E                                            # corrected T_base_flange
        if eye_in_hand:
            T = _invert_many(T)                                 # A_i^-1 = T_flange_base
        T_cam_target = invert_transform(X) @ T @ Y
        if same_size:
            p_cam = (obj_stack @ np.transpose(T_cam_target[:, :3, :3], (0, 2, 1))
                     + T_cam_target[:, None, :3, 3]).reshape(-1, 3)
        else:
            p_cam = np.concatenate([o @ t[:3, :3].T + t[:3, 3] for o, t in zip(obj, T_cam_target)])
        uv, _ = cv2.projectPoints(p_cam, np.zeros(3), np.zeros(3), data.camera.K, data.camera.dist)
        return np.concatenate([((uv.reshape(-1, 2) - img) / sigma_px).ravel(), (d / prior_scale).ravel()])

    rows = 2 * sizes.sum() + 6 * n
    sparsity = np.zeros((rows, 12 + 6 * n), dtype=bool)
    sparsity[: 2 * sizes.sum(), :12] = True
    start = 0
    for i, m in enumerate(sizes):
        sparsity[start:start + 2 * m, 12 + 6 * i: 18 + 6 * i] = True
        sparsity[2 * sizes.sum() + 6 * i: 2 * sizes.sum() + 6 * i + 6, 12 + 6 * i: 18 + 6 * i] = np.eye(6, dtype=bool)
        start += 2 * m
    sol = least_squares(residuals, np.zeros(12 + 6 * n), jac_sparsity=sparsity, method="trf", x_scale="jac")
    X, Y = X0 @ _exp(sol.x[:6]), Y0 @ _exp(sol.x[6:12])
    r = residuals(sol.x)[: 2 * sizes.sum()] * sigma_px
    return X, Y, float(np.sqrt(np.mean(r.reshape(-1, 2) ** 2) * 2))


def _refine(data, A, B, index, X0, Y0, use_images, robot_noise=(0.1, 0.02)):
    """Refine on the poses in ``index``: bundle on corners when given, else pose residuals weighted by
    their own scatter."""
    if use_images:
        return _refine_bundle(data, index, X0, Y0, *robot_noise)
    X, Y = X0, Y0
    for _ in range(2):  # weights from the current residual scatter, then once more
        mm, deg = pose_residuals(A[index], B[index], X, Y, data.target_center)
        sigma_mm = max(float(np.sqrt(np.mean(mm ** 2))), 1e-3)
        sigma_deg = max(float(np.sqrt(np.mean(deg ** 2))), 1e-4)
        X, Y = _refine_poses(A[index], B[index], X, Y, data.target_center, sigma_mm, sigma_deg)
    return X, Y, None


# --- diagnostics ----------------------------------------------------------------------------------
def rotation_diversity(T_base_flange: np.ndarray) -> dict:
    """How well the robot's orientations span rotation space: largest relative rotation (deg) and the
    spread of relative-rotation axes (second/first eigenvalue of the angle-weighted axis scatter)."""
    R = T_base_flange[:, :3, :3]
    S = np.zeros((3, 3))
    max_angle = 0.0
    for i in range(len(R)):
        rv = Rotation.from_matrix(np.einsum("ji,njk->nik", R[i], R[i + 1:])).as_rotvec() if i + 1 < len(R) else np.zeros((0, 3))
        for v in rv:
            angle = np.linalg.norm(v)
            max_angle = max(max_angle, np.degrees(angle))
            if angle > 1e-6:
                S += angle * np.outer(v / angle, v / angle)
    eig = np.sort(np.linalg.eigvalsh(S))[::-1]
    ratio = float(eig[1] / eig[0]) if eig[0] > 0 else 0.0
    return {"max_relative_rotation_deg": float(max_angle), "axis_spread": ratio}


def _degeneracy_warnings(diversity: dict) -> list[str]:
    out = []
    if diversity["max_relative_rotation_deg"] < 15:
        out.append(f"degenerate motion: the largest rotation between robot poses is only "
                   f"{diversity['max_relative_rotation_deg']:.1f} deg; tilt the flange by 20-40 deg between poses")
    if diversity["axis_spread"] < 0.05:
        out.append(f"degenerate motion: robot rotations are nearly about one axis (axis spread "
                   f"{diversity['axis_spread']:.3f}); rotate about at least two different axes")
    return out


# --- the solver -----------------------------------------------------------------------------------
def calibrate_hand_eye(data: HandEyeInput, *, ransac_iterations: int = 60, sample_size: int = 5,
                       tol_mm: float = 5.0, tol_deg: float = 1.0, leave_one_out: bool = True,
                       robot_noise_mm: float = 0.1, robot_noise_deg: float = 0.02, seed: int = 0,
                       progress=None) -> HandEyeResult:
    """Robust, refined hand-eye calibration; see the module docstring for the steps.

    ``tol_mm`` / ``tol_deg``: a pose pair counts as an inlier of a candidate when its board-center
    disagreement is below both (after refinement the limits tighten to 5x the robust residual scale,
    never below 1 mm / 0.2 deg and never above these).
    ``robot_noise_mm`` / ``robot_noise_deg``: the robot's pose noise (per axis, 1 sigma), the prior of
    the corner-based refinement. ``progress``: optional callable wrapping an iterable (e.g. tqdm) for
    the leave-one-out loop.
    """
    A, B = data.A, data.B
    n = len(A)
    center = data.target_center
    use_images = data.detections is not None
    robot_noise = (robot_noise_mm, robot_noise_deg)

    # (1) candidates: every OpenCV method on all pairs, then RANSAC subsets
    candidates: list[tuple[str, np.ndarray, np.ndarray]] = []
    opencv_all: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for method in OPENCV_METHODS:
        opencv_all[method] = opencv_solve(A, B, method)
        if opencv_all[method] is not None:
            candidates.append((method, *opencv_all[method]))
    rng = np.random.default_rng(seed)
    k = min(sample_size, n)
    if n > k:
        for it in range(ransac_iterations):
            subset = np.sort(rng.choice(n, k, replace=False))
            method = ("park", "shah")[it % 2]
            sol = opencv_solve(A[subset], B[subset], method)
            if sol is not None:
                candidates.append((f"{method} + RANSAC", *sol))
    if not candidates:
        raise CalibrationError("every OpenCV hand-eye solver failed on these poses; check that robot and target "
                               "poses pair up and that the robot rotated between poses")

    # (2) the most consistent candidate
    costs = [float(_msac_cost(*pose_residuals(A, B, X, Y, center), tol_mm, tol_deg).sum()) for _, X, Y in candidates]
    best = int(np.argmin(costs))
    start_name, X, Y = candidates[best]
    mm, deg = pose_residuals(A, B, X, Y, center)
    inliers = (mm < tol_mm) & (deg < tol_deg)
    if inliers.sum() < MIN_POSES:
        raise CalibrationError(f"only {int(inliers.sum())} of {n} pose pairs agree within {tol_mm} mm / {tol_deg} deg; "
                               f"check pose formats and units (--pose-format), or raise the tolerances")

    # (3) refine, re-check outliers against the refined solution, refine again
    for _ in range(3):
        X, Y, reproj = _refine(data, A, B, np.flatnonzero(inliers), X, Y, use_images, robot_noise)
        mm, deg = pose_residuals(A, B, X, Y, center)
        scale_mm = 1.4826 * float(np.median(mm[inliers]))
        scale_deg = 1.4826 * float(np.median(deg[inliers]))
        lim_mm = float(np.clip(5 * scale_mm, 1.0, tol_mm))
        lim_deg = float(np.clip(5 * scale_deg, 0.2, tol_deg))
        new = (mm < lim_mm) & (deg < lim_deg)
        if new.sum() < MIN_POSES or np.array_equal(new, inliers):
            break
        inliers = new
    names = list(data.names)
    rejected = {names[i]: f"residual {mm[i]:.2f} mm / {deg[i]:.3f} deg > limit {lim_mm:.2f} mm / {lim_deg:.2f} deg"
                for i in np.flatnonzero(~inliers)}

    # (4) diagnostics
    loo_mm = loo_deg = None
    if leave_one_out and inliers.sum() > MIN_POSES:
        errs = []
        idx = np.flatnonzero(inliers)
        for i in (progress(idx) if progress else idx):
            Xi, Yi, _ = _refine(data, A, B, idx[idx != i], X, Y, use_images, robot_noise)
            errs.append([v[0] for v in pose_residuals(A[i:i + 1], B[i:i + 1], Xi, Yi, center)])
        errs = np.array(errs)
        loo_mm, loo_deg = (float(v) for v in np.sqrt(np.mean(errs ** 2, axis=0)))
    opencv = {}
    idx = np.flatnonzero(inliers)
    for method in OPENCV_METHODS:
        sol = opencv_all[method]
        if sol is None:
            opencv[method] = {"failed": True}
            continue
        m_mm, m_deg = pose_residuals(A[idx], B[idx], *sol, center)
        dmm, ddeg = transform_difference(sol[0], X)
        opencv[method] = {"residual_rms_mm": float(np.sqrt(np.mean(m_mm ** 2))),
                          "residual_rms_deg": float(np.sqrt(np.mean(m_deg ** 2))),
                          "differs_from_result_mm": dmm, "differs_from_result_deg": ddeg}
    diversity = rotation_diversity(data.T_base_flange[inliers])
    warnings = _degeneracy_warnings(diversity)
    if inliers.sum() < 10:
        warnings.append(f"only {int(inliers.sum())} pose pairs used; 15-25 give a reliable result")
    method = f"{start_name} start, {'corner bundle' if use_images else 'pose-residual'} least squares"
    return HandEyeResult(mode=data.mode, X=X, Y=Y, method=method, inliers=inliers, rejected=rejected,
                         residual_mm=mm, residual_deg=deg, reprojection_rms_px=reproj, loo_mm=loo_mm,
                         loo_deg=loo_deg, opencv=opencv, warnings=warnings, names=names,
                         rotation_diversity=diversity)
