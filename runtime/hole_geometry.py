"""Holes in pixels -> holes in the robot base frame (mm), through the calibration files of the config.

``HoleGeometry.from_config(config.calibration)`` loads camera.json, plane.json and handeye.json (from
`holevision calib ...`) and returns a callable ``geometry(holes, T_base_flange=None) -> Holes`` that
fills ``points_base``, ``approach_base`` and ``diameters_mm`` (perspective-exact: each hole ellipse's
outline is back-projected onto the work plane and a circle is fitted there).

- eye-to-hand: a fixed camera, ``T_base_cam`` from handeye.json; plane.json's ``plane_cam``.
- eye-in-hand: ``T_base_cam = T_base_flange @ T_flange_cam`` with the pose that came with the trigger;
  the work plane is fixed in the base frame (plane.json's ``plane_base``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from holevision.runtime.detections import Holes


class GeometryConfigError(ValueError):
    """A calibration file named in the config is missing or does not fit the calibration mode."""


def read_hand_eye(path: str | Path, key: str, mode: str) -> np.ndarray:
    """The 4x4 (mm) stored under ``key`` (``T_base_cam`` or ``T_flange_cam``) in handeye.json."""
    from holevision.calibration.handeye_file import load_handeye

    file_mode, transforms = load_handeye(path)
    if file_mode != mode or key not in transforms:
        raise GeometryConfigError(f"{path}: mode: this hand-eye result is {file_mode!r} but calibration.mode is "
                                  f"{mode!r} (it needs {key})")
    return transforms[key]


@dataclass
class HoleGeometry:
    camera: object                       # holevision.calibration.camera.CameraModel
    plane: object                        # Plane in the camera frame (eye-to-hand) or base frame (eye-in-hand)
    mode: str                            # eye-to-hand | eye-in-hand
    T_base_cam: np.ndarray | None = None
    T_flange_cam: np.ndarray | None = None

    @classmethod
    def from_config(cls, calibration_config, config_path: str = "config") -> "HoleGeometry | None":
        """None when ``calibration.mode = "none"`` (results stay in pixels)."""
        mode = calibration_config.mode
        if mode == "none":
            return None
        if mode not in ("eye-to-hand", "eye-in-hand"):
            raise GeometryConfigError(f"{config_path}: calibration.mode: {mode!r} is not supported by the service "
                                      "yet (use eye-to-hand or eye-in-hand)")
        for name in ("camera", "plane", "handeye"):
            if not getattr(calibration_config, name):
                raise GeometryConfigError(f"{config_path}: calibration.{name}: required for calibration.mode = {mode!r}")
        from holevision.calibration.camera import CameraModel
        from holevision.calibration.chain import warm_up_geometry
        from holevision.calibration.plane import load_plane

        warm_up_geometry()          # compiled kernels ready before the first frame
        camera = CameraModel.load(calibration_config.camera)
        if mode == "eye-to-hand":
            return cls(camera, load_plane(calibration_config.plane, "cam"), mode,
                       T_base_cam=read_hand_eye(calibration_config.handeye, "T_base_cam", mode))
        return cls(camera, load_plane(calibration_config.plane, "base"), mode,
                   T_flange_cam=read_hand_eye(calibration_config.handeye, "T_flange_cam", mode))

    @property
    def needs_robot_pose(self) -> bool:
        return self.mode == "eye-in-hand"

    def __call__(self, holes: Holes, T_base_flange: np.ndarray | None = None) -> Holes:
        from holevision.calibration.chain import ellipse_to_base
        from holevision.calibration.transforms import invert_transform

        if not len(holes):
            return holes
        if self.mode == "eye-in-hand":
            if T_base_flange is None:
                raise ValueError("eye-in-hand geometry needs the robot pose (T_base_flange) at capture")
            T_base_cam = np.asarray(T_base_flange) @ self.T_flange_cam
            plane_cam = self.plane.transformed(invert_transform(T_base_cam))
        else:
            T_base_cam, plane_cam = self.T_base_cam, self.plane
        points, approach, diameters = ellipse_to_base(holes.centers, holes.axes, holes.angles, self.camera,
                                                      plane_cam, T_base_cam)
        return replace(holes, points_base=points, approach_base=approach, diameters_mm=diameters)
