"""holevision.calibration: from pixels to millimetres in the robot's base frame, with the error stated.

Pure numpy / OpenCV / scipy; imports nothing else of holevision; nothing happens at import time.

- ``camera``      CameraModel (K, distortion, size): project, normalize/undistort, rays; camera.json
- ``boards``      chessboard / ChArUco specs ("chessboard:9x6:25"), corner detection with subpixel refinement
- ``intrinsics``  calibrate with per-view RMS and outlier-view rejection; board pose by PnP
- ``poses``       robot pose conventions (UR, KUKA, FANUC, ABB, matrix) <-> 4x4 mm; pose CSV files
- ``transforms``  4x4 helpers with frames in names: ``transform_points(T_base_cam, p_cam)``
- ``handeye``     eye-in-hand / eye-to-hand: OpenCV solvers, RANSAC, corner bundle refinement, residuals
- ``handeye_file`` handeye.json with frame-named keys
- ``plane``       the work plane from a board on the surface (+ part thickness); plane.json
- ``npoint``      n-point (9-point) pixel -> robot XY, affine or homography, with residuals; npoint.json
- ``chain``       pixel / hole ellipse -> base-frame point, approach vector, diameter in mm
- ``synthetic``   scenes with known truth for tests and ``holevision calib handeye-check``
- ``commands``    ``holevision calib ...``
"""
