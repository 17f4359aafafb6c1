"""`holevision calib ...`: intrinsics, hand-eye, work plane, n-point, pose conversion, synthetic hand-eye check.

Imports only the standard library at module top; numpy/OpenCV/scipy load inside each command.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys

BOARD_HELP = "chessboard:COLSxROWS:SQUARE_MM (inner corners) or charuco:COLSxROWS:SQUARE_MM:MARKER_MM[:DICT] (squares)"
POSE_FORMATS = ("ur", "kuka", "fanuc", "abb", "matrix")
POSE_FORMAT_HELP = ("robot pose convention of the CSV: ur (x,y,z m; rx,ry,rz rotation vector rad), kuka (x,y,z mm; "
                    "a,b,c deg), fanuc (x,y,z mm; w,p,r deg), abb (x,y,z mm; q1..q4 = w,x,y,z), matrix (m00..m33 "
                    "row-major, mm)")


def register(registry) -> None:
    registry.group("calib", help="calibrate: camera intrinsics, hand-eye, work plane, n-point; robot pose files",
                   examples="""\
  holevision calib intrinsics --images 'cal/*.png' --board chessboard:9x6:25 --out camera.json
  holevision calib handeye --mode eye-to-hand --robot-poses poses.csv --pose-format kuka \\
      --images 'he/*.png' --board chessboard:9x6:25 --camera camera.json --out handeye.json
  holevision calib plane --image table.png --board chessboard:9x6:25 --camera camera.json \\
      --handeye handeye.json --thickness-mm 12 --out plane.json
  holevision calib npoint --points touch.csv --model homography --out npoint.json
  holevision calib locate --camera camera.json --plane plane.json --handeye handeye.json --pixel 812.4,603.1
  holevision calib handeye-check --seeds 5 --corrupt 0.2""")

    p = registry.command("intrinsics", group="calib", help="camera intrinsics from board images (RMS, per-view errors, outlier views)",
                         examples="""\
  holevision calib intrinsics --images 'cal/*.png' --board chessboard:9x6:25 --out camera.json
  holevision calib intrinsics --images '/usr/share/doc/opencv-doc/examples/data/left[0-9]*.jpg' \\
      --board chessboard:9x6:25 --fix-aspect-ratio --out camera.json
  holevision calib intrinsics --images 'cal/*.png' --board charuco:11x8:20:15 --model rational --out camera.json""")
    p.add_argument("--images", required=True, action="append", help="image glob (quote it); repeat for several")
    p.add_argument("--board", required=True, help=BOARD_HELP)
    p.add_argument("--out", required=True, help="camera.json to write")
    p.add_argument("--model", default="k3", choices=("k2", "k3", "rational"),
                   help="distortion model: k2 (k1 k2 p1 p2), k3 (+k3, OpenCV default), rational (k1..k6)")
    p.add_argument("--fix-aspect-ratio", action="store_true", help="fx = fy (square pixels)")
    p.add_argument("--zero-tangent", action="store_true", help="no tangential distortion (p1 = p2 = 0)")
    p.add_argument("--no-reject", action="store_true", help="keep every view (no outlier-view rejection)")
    p.add_argument("--outlier-factor", type=float, default=3.0, help="reject views with RMS > this x median (default 3)")
    p.add_argument("--max-view-rms", type=float, default=None, help="also reject views above this RMS, px")
    p.set_defaults(func=run_intrinsics)

    p = registry.command("handeye", group="calib", help="hand-eye calibration (eye-in-hand or eye-to-hand), robust, with residuals",
                         examples="""\
  holevision calib handeye --mode eye-in-hand --robot-poses poses.csv --pose-format ur \\
      --images 'he/*.png' --board chessboard:9x6:25 --camera camera.json --out handeye.json
  holevision calib handeye --mode eye-to-hand --robot-poses flange.csv --pose-format matrix \\
      --target-poses cam_target.csv --out handeye.json
pose files: CSV with a header, one pose per line, in the order of the images sorted by name, or
with an image/name column holding each image's file name. Robot poses are T_base_flange at capture.""")
    p.add_argument("--mode", required=True, choices=("eye-in-hand", "eye-to-hand"),
                   help="eye-in-hand: camera on the flange (finds T_flange_cam); eye-to-hand: fixed camera (T_base_cam)")
    p.add_argument("--robot-poses", required=True, help="CSV of flange poses in the base frame")
    p.add_argument("--pose-format", required=True, choices=POSE_FORMATS, help=POSE_FORMAT_HELP)
    p.add_argument("--images", help="board image glob, one per robot pose (sorted order)")
    p.add_argument("--board", help=BOARD_HELP)
    p.add_argument("--camera", help="camera.json (with --images)")
    p.add_argument("--target-poses", help="instead of images: CSV of camera->target poses T_cam_target, matrix form (mm)")
    p.add_argument("--out", required=True, help="handeye.json to write")
    p.add_argument("--robot-noise-mm", type=float, default=0.1, help="robot position noise per axis, mm (prior; default 0.1)")
    p.add_argument("--robot-noise-deg", type=float, default=0.02, help="robot rotation noise per axis, deg (default 0.02)")
    p.add_argument("--inlier-mm", type=float, default=5.0, help="largest pose disagreement accepted, mm (default 5)")
    p.add_argument("--inlier-deg", type=float, default=1.0, help="largest pose disagreement accepted, deg (default 1)")
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-out error (faster)")
    p.set_defaults(func=run_handeye)

    p = registry.command("plane", group="calib", help="work plane from a board lying on the work surface",
                         examples="""\
  holevision calib plane --image table.png --board chessboard:9x6:25 --camera camera.json --out plane.json
  holevision calib plane --image table.png --board chessboard:9x6:25 --camera camera.json \\
      --handeye handeye.json --thickness-mm 12 --board-thickness-mm 3 --out plane.json
  holevision calib plane --image shot.png --board chessboard:9x6:25 --camera camera.json \\
      --handeye handeye.json --robot-pose 0.4,0.1,0.3,3.14,0,0 --pose-format ur --out plane.json""")
    p.add_argument("--image", required=True, help="image of the board lying on the work surface")
    p.add_argument("--board", required=True, help=BOARD_HELP)
    p.add_argument("--camera", required=True, help="camera.json")
    p.add_argument("--thickness-mm", type=float, default=0.0, help="part thickness: holes lie this far above the surface")
    p.add_argument("--board-thickness-mm", type=float, default=0.0, help="board thickness (surface lies below its face)")
    p.add_argument("--handeye", help="handeye.json: also write the plane in the base frame")
    p.add_argument("--robot-pose", help="eye-in-hand: flange pose at capture, comma-separated numbers in --pose-format")
    p.add_argument("--pose-format", choices=POSE_FORMATS, default="matrix", help=POSE_FORMAT_HELP)
    p.add_argument("--out", required=True, help="plane.json to write")
    p.set_defaults(func=run_plane)

    p = registry.command("npoint", group="calib", help="n-point (9-point) pixel -> robot XY calibration with residuals",
                         examples="""\
  holevision calib npoint --points touch.csv --out npoint.json
  holevision calib npoint --points touch.csv --model homography --out npoint.json
touch.csv: header u,v,x,y[,z]; pixel of each mark and the robot's touch position (mm).""")
    p.add_argument("--points", required=True, help="CSV with header u,v,x,y[,z]")
    p.add_argument("--model", default="affine", choices=("affine", "homography"),
                   help="affine (camera looks straight down) or homography (perspective)")
    p.add_argument("--out", required=True, help="npoint.json to write")
    p.set_defaults(func=run_npoint)

    p = registry.command("convert-poses", group="calib", help="convert a robot pose CSV between conventions",
                         examples="""\
  holevision calib convert-poses poses_kuka.csv --from kuka --to ur --out poses_ur.csv
  holevision calib convert-poses poses.csv --from abb --to matrix --out poses_matrix.csv""")
    p.add_argument("input", help="pose CSV")
    p.add_argument("--from", dest="from_format", required=True, choices=POSE_FORMATS, help=POSE_FORMAT_HELP)
    p.add_argument("--to", dest="to_format", required=True, choices=POSE_FORMATS)
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=run_convert_poses)

    p = registry.command("locate", group="calib",
                         help="pixel(s) -> robot base frame through camera.json, plane.json and handeye.json",
                         examples="""\
  holevision calib locate --camera camera.json --plane plane.json --handeye handeye.json --pixel 812.4,603.1
  holevision calib locate --camera camera.json --plane plane.json --handeye handeye.json \\
      --pixel 100,200 --pixel 900,650 --robot-pose 0.4,0.1,0.3,3.14,0,0 --pose-format ur
eye-to-hand uses the plane in the camera frame; eye-in-hand needs the flange pose at capture and the
plane in the base frame (plane.json written with --handeye).""")
    p.add_argument("--camera", required=True, help="camera.json")
    p.add_argument("--plane", required=True, help="plane.json")
    p.add_argument("--handeye", required=True, help="handeye.json")
    p.add_argument("--pixel", required=True, action="append", help="u,v (repeat for several)")
    p.add_argument("--robot-pose", help="eye-in-hand: flange pose at capture, comma-separated numbers in --pose-format")
    p.add_argument("--pose-format", choices=POSE_FORMATS, default="matrix", help=POSE_FORMAT_HELP)
    p.set_defaults(func=run_locate)

    p = registry.command("handeye-check", group="calib",
                         help="accuracy of the hand-eye solver vs every OpenCV method on synthetic scenes with known truth",
                         examples="""\
  holevision calib handeye-check --seeds 5
  holevision calib handeye-check --seeds 10 --corrupt 0.2 --json handeye_check.json""")
    p.add_argument("--seeds", type=int, default=5, help="number of random scenes per mode")
    p.add_argument("--poses", type=int, default=20, help="pose pairs per scene")
    p.add_argument("--corrupt", type=float, default=0.0, help="fraction of corrupted pose pairs (flipped board, wrong robot pose)")
    p.add_argument("--mode", choices=("eye-in-hand", "eye-to-hand", "both"), default="both")
    p.add_argument("--no-corners", action="store_true",
                   help="feed only the board poses (as --target-poses does), not the corners")
    p.add_argument("--json", help="also write the figures here")
    p.set_defaults(func=run_handeye_check)


def _images(patterns: list[str]) -> list[str]:
    files = sorted({f for pattern in patterns for f in glob.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no images match {' '.join(patterns)}")
    return files


def _read_image(path: str):
    import cv2

    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"{path}: cannot read image")
    return image


def run_intrinsics(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from .boards import BoardSpec
    from .intrinsics import calibrate_intrinsics, calibration_flags

    board = BoardSpec.parse(args.board)
    files = _images(args.images)
    views, size = {}, None
    for f in tqdm(files, desc="detecting corners", unit="image", disable=None):
        image = _read_image(f)
        this_size = (image.shape[1], image.shape[0])
        if size is not None and this_size != size:
            raise ValueError(f"{f}: image size {this_size} differs from the first image's {size}")
        size = this_size
        views[Path(f).name] = board.detect(image)
    flags = calibration_flags(args.model, args.fix_aspect_ratio, args.zero_tangent)
    result = calibrate_intrinsics(views, size, flags=flags, reject_outliers=not args.no_reject,
                                  outlier_factor=args.outlier_factor, max_view_rms_px=args.max_view_rms)
    cam = result.camera
    cam.report = {"board": str(board), "model": args.model, "images": len(files), **result.summary()}
    cam.save(args.out)
    print(f"{'view':30s} RMS px")
    for name, rms in result.per_view_rms_px.items():
        print(f"{name:30s} {rms:.3f}")
    for name, why in result.rejected.items():
        print(f"{name:30s} rejected: {why}")
    print(f"RMS {result.rms_px:.4f} px over {len(result.per_view_rms_px)} views; fx {cam.fx:.2f} fy {cam.fy:.2f} "
          f"cx {cam.cx:.2f} cy {cam.cy:.2f}; dist {', '.join(f'{d:.5f}' for d in cam.dist)}")
    print(f"wrote {args.out}")
    return 0


def run_handeye(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    from tqdm import tqdm

    from .boards import BoardSpec
    from .camera import CameraModel
    from .errors import CalibrationError
    from .handeye import HandEyeInput, calibrate_hand_eye
    from .handeye_file import save_handeye
    from .intrinsics import board_pose
    from .poses import read_pose_csv

    robot = read_pose_csv(args.robot_poses, args.pose_format)
    camera = detections = None
    if args.target_poses:
        if args.images:
            raise CalibrationError("give either --images (with --board and --camera) or --target-poses, not both")
        target = read_pose_csv(args.target_poses, "matrix")
        if len(target) != len(robot):
            raise CalibrationError(f"{args.target_poses}: {len(target)} poses but {args.robot_poses} has {len(robot)}")
        T_cam_target, names, T_base_flange = target.transforms, robot.names, robot.transforms
    else:
        if not (args.images and args.board and args.camera):
            raise CalibrationError("--images needs --board and --camera (or give --target-poses instead)")
        board = BoardSpec.parse(args.board)
        camera = CameraModel.load(args.camera)
        files = _images([args.images])
        by_name = {n: i for i, n in enumerate(robot.names)}
        if all(Path(f).name in by_name for f in files):
            # the pose file names its images: pair by name, poses without an image are left out
            order = [by_name[Path(f).name] for f in files]
            robot = type(robot)(names=[robot.names[i] for i in order], transforms=robot.transforms[order])
        elif len(files) != len(robot):
            raise CalibrationError(f"{len(files)} images match {args.images} but {args.robot_poses} has {len(robot)} poses; "
                                   f"they pair up in sorted-name order (or by an image/name column naming the files)")
        keep, detections, poses = [], [], []
        for i, f in enumerate(tqdm(files, desc="board poses", unit="image", disable=None)):
            det = board.detect(_read_image(f))
            if det is None:
                print(f"note: board not found in {f}; pose {robot.names[i]} dropped", file=sys.stderr)
                continue
            keep.append(i)
            detections.append(det)
            poses.append(board_pose(camera, det)[0])
        names = [robot.names[i] if robot.names[i] == Path(files[i]).name else f"{robot.names[i]} ({Path(files[i]).name})"
                 for i in keep]
        T_base_flange, T_cam_target = robot.transforms[keep], np.array(poses)
    data = HandEyeInput(args.mode, T_base_flange, T_cam_target, names, camera, detections)
    progress = (lambda it: tqdm(it, desc="leave-one-out", unit="pose", disable=None))
    result = calibrate_hand_eye(data, tol_mm=args.inlier_mm, tol_deg=args.inlier_deg, leave_one_out=not args.no_loo,
                                robot_noise_mm=args.robot_noise_mm, robot_noise_deg=args.robot_noise_deg, progress=progress)
    save_handeye(args.out, result, {"robot_poses": args.robot_poses, "pose_format": args.pose_format})
    x_name, y_name = result.frame_names
    rms_mm, rms_deg = result.rms()
    print(f"{'pose':34s} {'mm':>8s} {'deg':>8s}")
    for n, m, d, used in zip(result.names, result.residual_mm, result.residual_deg, result.inliers):
        print(f"{n[:34]:34s} {m:8.3f} {d:8.4f}{'' if used else '  REJECTED'}")
    print(f"\n{'OpenCV method':14s} {'rms mm':>8s} {'rms deg':>8s} {'vs result mm':>13s} {'deg':>8s}")
    for m, v in result.opencv.items():
        if v.get("failed"):
            print(f"{m:14s} failed")
        else:
            print(f"{m:14s} {v['residual_rms_mm']:8.3f} {v['residual_rms_deg']:8.4f} "
                  f"{v['differs_from_result_mm']:13.3f} {v['differs_from_result_deg']:8.4f}")
    print(f"\nmethod: {result.method}")
    print(f"{x_name} =\n{np.array2string(result.X, precision=4, suppress_small=True)}")
    print(f"residual RMS {rms_mm:.3f} mm / {rms_deg:.4f} deg over {int(result.inliers.sum())} of {len(result.inliers)} poses"
          + (f"; reprojection {result.reprojection_rms_px:.3f} px" if result.reprojection_rms_px is not None else ""))
    if result.loo_mm is not None:
        print(f"leave-one-out RMS {result.loo_mm:.3f} mm / {result.loo_deg:.4f} deg")
    for name, why in result.rejected.items():
        print(f"rejected {name}: {why}")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 0


def run_plane(args: argparse.Namespace) -> int:
    import numpy as np

    from .boards import BoardSpec
    from .camera import CameraModel
    from .errors import CalibrationError
    from .handeye_file import load_handeye
    from .intrinsics import board_pose
    from .plane import plane_from_board_pose, save_plane
    from .poses import pose_to_transform

    board = BoardSpec.parse(args.board)
    camera = CameraModel.load(args.camera)
    det = board.detect(_read_image(args.image))
    if det is None:
        raise CalibrationError(f"{args.image}: board {board} not found")
    T_cam_board, rms = board_pose(camera, det)
    plane_cam = plane_from_board_pose(T_cam_board, args.thickness_mm, args.board_thickness_mm)
    plane_base = None
    report = {"image": args.image, "board": str(board), "reprojection_rms_px": rms, "T_cam_board": T_cam_board,
              "thickness_mm": args.thickness_mm, "board_thickness_mm": args.board_thickness_mm}
    if args.handeye:
        mode, T = load_handeye(args.handeye)
        if mode == "eye-to-hand":
            T_base_cam = T["T_base_cam"]
        else:
            if not args.robot_pose:
                raise CalibrationError("eye-in-hand: give --robot-pose (flange pose at capture) with --handeye")
            values = [float(x) for x in args.robot_pose.split(",")]
            T_base_cam = pose_to_transform(values, args.pose_format) @ T["T_flange_cam"]
        plane_base = plane_cam.transformed(T_base_cam)
        report["T_base_cam"] = T_base_cam
    save_plane(args.out, plane_cam, plane_base, report)
    distance = float(plane_cam.signed_distance(np.zeros(3)))
    print(f"board found: {len(det.ids)} corners, reprojection RMS {rms:.3f} px")
    print(f"plane (camera frame): point {np.round(plane_cam.point, 3).tolist()} mm, normal "
          f"{np.round(plane_cam.normal, 5).tolist()}, camera {distance:.1f} mm above it")
    if plane_base is not None:
        print(f"plane (base frame): point {np.round(plane_base.point, 3).tolist()} mm, normal "
              f"{np.round(plane_base.normal, 5).tolist()}")
    print(f"wrote {args.out}")
    return 0


def run_npoint(args: argparse.Namespace) -> int:
    from .npoint import fit_npoint, read_npoint_csv

    uv, xy, z = read_npoint_csv(args.points)
    cal = fit_npoint(uv, xy, args.model, z)
    cal.save(args.out)
    print(f"{'#':>3s} {'u':>9s} {'v':>9s} {'x mm':>9s} {'y mm':>9s} {'residual mm':>12s}")
    for i, ((u, v), (x, y), r) in enumerate(zip(uv, xy, cal.residuals_mm), 1):
        print(f"{i:3d} {u:9.2f} {v:9.2f} {x:9.3f} {y:9.3f} {r:12.4f}")
    loo = f"; leave-one-out RMS {cal.loo_rms_mm:.4f} mm" if cal.loo_rms_mm is not None else ""
    print(f"{args.model}: RMS {cal.rms_mm:.4f} mm, max {cal.residuals_mm.max():.4f} mm{loo}")
    for w in cal.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 0


def run_convert_poses(args: argparse.Namespace) -> int:
    from .poses import read_pose_csv, write_pose_csv

    poses = read_pose_csv(args.input, args.from_format)
    write_pose_csv(args.out, poses.transforms, args.to_format, poses.names)
    print(f"wrote {len(poses)} poses ({args.from_format} -> {args.to_format}) to {args.out}")
    return 0


def run_locate(args: argparse.Namespace) -> int:
    import numpy as np

    from .camera import CameraModel
    from .chain import pixel_to_base, pixel_to_base_eye_in_hand
    from .errors import CalibrationError
    from .handeye_file import load_handeye
    from .plane import load_plane
    from .poses import pose_to_transform

    camera = CameraModel.load(args.camera)
    mode, T = load_handeye(args.handeye)
    try:
        uv = np.array([[float(x) for x in p.split(",")] for p in args.pixel]).reshape(-1, 2)
    except ValueError:
        raise CalibrationError(f"--pixel takes u,v numbers, got {args.pixel}") from None
    if mode == "eye-to-hand":
        points, approach = pixel_to_base(uv[:, 0], uv[:, 1], camera, load_plane(args.plane, "cam"), T["T_base_cam"])
    else:
        if not args.robot_pose:
            raise CalibrationError(f"{args.handeye} is eye-in-hand: give --robot-pose (flange pose at capture)")
        T_base_flange = pose_to_transform([float(x) for x in args.robot_pose.split(",")], args.pose_format)
        points, approach = pixel_to_base_eye_in_hand(uv[:, 0], uv[:, 1], camera, load_plane(args.plane, "base"),
                                                     T_base_flange, T["T_flange_cam"])
    print(f"{'u':>9s} {'v':>9s} {'x mm':>10s} {'y mm':>10s} {'z mm':>10s}   approach (base frame)")
    for (u, v), p, a in zip(uv, points, approach):
        print(f"{u:9.2f} {v:9.2f} {p[0]:10.3f} {p[1]:10.3f} {p[2]:10.3f}   {a[0]:+.4f} {a[1]:+.4f} {a[2]:+.4f}")
    return 0


def run_handeye_check(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from .handeye import OPENCV_METHODS, HandEyeInput, calibrate_hand_eye, opencv_solve
    from .synthetic import make_handeye_scene
    from .transforms import transform_difference

    modes = ("eye-in-hand", "eye-to-hand") if args.mode == "both" else (args.mode,)
    report = {"poses": args.poses, "seeds": args.seeds, "corrupt_fraction": args.corrupt, "corners": not args.no_corners,
              "noise": {"robot_mm": 0.1, "robot_deg": 0.02, "corner_px": 0.2}, "modes": {}}
    for mode in modes:
        clean_names = [f"{m} (clean)" for m in OPENCV_METHODS] if args.corrupt > 0 else []
        errors = {m: [] for m in ("holevision", *OPENCV_METHODS, *clean_names)}
        rejection_ok = 0
        for seed in tqdm(range(args.seeds), desc=mode, unit="scene", disable=None):
            scene = make_handeye_scene(mode, args.poses, seed, corrupt_fraction=args.corrupt)
            data = HandEyeInput(mode, scene.T_base_flange, scene.T_cam_target, scene.names, scene.camera,
                                None if args.no_corners else scene.detections)
            result = calibrate_hand_eye(data, leave_one_out=False)
            rejection_ok += sorted(result.rejected) == sorted(scene.corrupted)
            errors["holevision"].append(transform_difference(result.X, scene.X_true))
            clean = np.array([n not in scene.corrupted for n in scene.names])
            for m in OPENCV_METHODS:
                sol = opencv_solve(data.A, data.B, m)
                errors[m].append(transform_difference(sol[0], scene.X_true) if sol else (float("nan"),) * 2)
                if clean_names:  # the same solver told which poses are good: what rejection has to reach
                    sol = opencv_solve(data.A[clean], data.B[clean], m)
                    errors[f"{m} (clean)"].append(transform_difference(sol[0], scene.X_true) if sol else (float("nan"),) * 2)
        table = {}
        print(f"\n{mode}: {args.seeds} scenes x {args.poses} poses, {args.corrupt:.0%} corrupted; error of "
              f"{'T_flange_cam' if mode == 'eye-in-hand' else 'T_base_cam'} vs truth")
        print(f"{'method':18s} {'mean mm':>9s} {'max mm':>9s} {'mean deg':>9s} {'max deg':>9s}  failed")
        for m, e in errors.items():
            e = np.array(e, dtype=float)
            ok = np.isfinite(e[:, 0])
            if not ok.any():
                table[m] = {"failed": int((~ok).sum())}
                print(f"{m:18s} {'solver failed on every scene':>39s}")
                continue
            row = {"mean_mm": float(np.mean(e[ok, 0])), "max_mm": float(np.max(e[ok, 0])),
                   "mean_deg": float(np.mean(e[ok, 1])), "max_deg": float(np.max(e[ok, 1])), "failed": int((~ok).sum())}
            table[m] = row
            print(f"{m:18s} {row['mean_mm']:9.3f} {row['max_mm']:9.3f} {row['mean_deg']:9.4f} {row['max_deg']:9.4f}"
                  f"  {row['failed']}")
        print(f"corrupted poses named exactly in {rejection_ok} of {args.seeds} scenes")
        report["modes"][mode] = {"errors": table, "rejection_exact": rejection_ok}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, allow_nan=True)
        print(f"wrote {args.json}")
    return 0
