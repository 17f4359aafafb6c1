"""Robot pose conventions <-> 4x4 transforms (mm), and CSV pose files any robot or tool can write.

Conventions (translation always converted to millimetres at this boundary):

=========  ==============================  =====================================================
format     columns (CSV header)            rotation
=========  ==============================  =====================================================
ur         x, y, z  (metres)               rx, ry, rz: rotation vector (axis * angle), radians
kuka       x, y, z  (mm)                   a, b, c (deg): R = Rz(A) Ry(B) Rx(C)
fanuc      x, y, z  (mm)                   w, p, r (deg): fixed axes X by W, then Y by P, then Z by R,
                                           R = Rz(R) Ry(P) Rx(W)  (same matrix as KUKA's A=R, B=P, C=W)
abb        x, y, z  (mm)                   q1, q2, q3, q4 = unit quaternion w, x, y, z
matrix     m00 .. m33 (16 numbers)         row-major 4x4, translation in mm
=========  ==============================  =====================================================

A pose file is a CSV with a header line; one pose per line; lines starting with ``#`` are comments.
Extra columns are allowed; a column named ``name``, ``id``, ``image`` or ``label`` names the pose in
reports (otherwise ``row N``, counting data lines from 1).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .errors import CalibrationError
from .transforms import make_transform

POSE_FORMATS = ("ur", "kuka", "fanuc", "abb", "matrix")
MATRIX_COLUMNS = tuple(f"m{r}{c}" for r in range(4) for c in range(4))
POSE_COLUMNS = {
    "ur": ("x", "y", "z", "rx", "ry", "rz"),
    "kuka": ("x", "y", "z", "a", "b", "c"),
    "fanuc": ("x", "y", "z", "w", "p", "r"),
    "abb": ("x", "y", "z", "q1", "q2", "q3", "q4"),
    "matrix": MATRIX_COLUMNS,
}
COLUMN_ALIASES = {"qw": "q1", "qx": "q2", "qy": "q3", "qz": "q4"}
NAME_COLUMNS = ("name", "id", "image", "label")


def _check_format(fmt: str) -> str:
    if fmt not in POSE_FORMATS:
        raise CalibrationError(f"unknown pose format {fmt!r}; choose one of {', '.join(POSE_FORMATS)}")
    return fmt


def pose_to_transform(values, fmt: str) -> np.ndarray:
    """One pose in a vendor convention (numbers in the column order of POSE_COLUMNS) -> 4x4 (mm)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    expected = len(POSE_COLUMNS[_check_format(fmt)])
    if v.size != expected:
        raise CalibrationError(f"a {fmt} pose has {expected} numbers ({', '.join(POSE_COLUMNS[fmt])}), got {v.size}")
    if fmt == "matrix":
        T = v.reshape(4, 4)
        if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-6):
            raise CalibrationError(f"matrix pose last row must be 0 0 0 1, got {T[3].tolist()}")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
            raise CalibrationError("matrix pose rotation part is not a proper rotation (R R^T != I or det < 0)")
        U, _, Vt = np.linalg.svd(R)  # re-orthonormalise printed-with-few-digits matrices
        return make_transform(U @ Vt, T[:3, 3])
    if fmt == "ur":
        return make_transform(Rotation.from_rotvec(v[3:6]).as_matrix(), v[:3] * 1000.0)
    if fmt == "kuka":
        a, b, c = v[3:6]
        return make_transform(Rotation.from_euler("ZYX", [a, b, c], degrees=True).as_matrix(), v[:3])
    if fmt == "fanuc":
        w, p, r = v[3:6]
        return make_transform(Rotation.from_euler("xyz", [w, p, r], degrees=True).as_matrix(), v[:3])
    # abb: quaternion w, x, y, z; scipy wants scalar-last
    q = v[3:7]
    norm = np.linalg.norm(q)
    if not 0.99 < norm < 1.01:
        raise CalibrationError(f"ABB quaternion q1..q4 must be unit length, got norm {norm:.4f}")
    return make_transform(Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix(), v[:3])


def transform_to_pose(T: np.ndarray, fmt: str) -> np.ndarray:
    """4x4 (mm) -> the numbers of one pose in a vendor convention (column order of POSE_COLUMNS)."""
    T = np.asarray(T, dtype=np.float64)
    rot = Rotation.from_matrix(T[:3, :3])
    t = T[:3, 3]
    fmt = _check_format(fmt)
    if fmt == "matrix":
        return T.reshape(16).copy()
    if fmt == "ur":
        return np.concatenate([t / 1000.0, rot.as_rotvec()])
    if fmt == "kuka":
        return np.concatenate([t, rot.as_euler("ZYX", degrees=True)])
    if fmt == "fanuc":
        return np.concatenate([t, rot.as_euler("xyz", degrees=True)])
    x, y, z, w = rot.as_quat()
    q = np.array([w, x, y, z])
    if q[0] < 0:  # ABB convention: q1 >= 0
        q = -q
    return np.concatenate([t, q])


@dataclass
class PoseList:
    """Poses read from a file: ``names[i]`` labels ``transforms[i]`` (4x4, mm)."""

    names: list[str]
    transforms: np.ndarray  # (N, 4, 4)

    def __len__(self) -> int:
        return len(self.names)


def read_pose_csv(path: str | Path, fmt: str) -> PoseList:
    """Read a pose CSV (header + one pose per line) in the given convention; errors name file, line, column."""
    path = Path(path)
    fmt = _check_format(fmt)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CalibrationError(f"{path}: pose file not found") from None
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines())
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise CalibrationError(f"{path}: empty pose file (need a header line and one pose per line)")
    delimiter = ";" if ";" in lines[0][1] and "," not in lines[0][1] else ","
    rows = list(csv.reader([line for _, line in lines], delimiter=delimiter, skipinitialspace=True))
    header = [COLUMN_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    wanted = POSE_COLUMNS[fmt]
    if fmt == "matrix" and not set(wanted) <= set(header):
        numeric = [h for h in header if h not in NAME_COLUMNS]
        if len(numeric) != 16:
            raise CalibrationError(
                f"{path}: a matrix pose file needs columns m00..m33 or exactly 16 number columns; "
                f"header has {header}")
        wanted = tuple(numeric)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise CalibrationError(f"{path}: header lacks column(s) {missing} for --pose-format {fmt} "
                               f"(expected {', '.join(wanted)}); header is {header}")
    index = [header.index(c) for c in wanted]
    name_index = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
    names, transforms = [], []
    for (line_no, _), row in zip(lines[1:], rows[1:]):
        try:
            values = [float(row[i]) for i in index]
        except (ValueError, IndexError):
            raise CalibrationError(f"{path}: line {line_no}: expected numbers in columns {', '.join(wanted)}, "
                                   f"got {row}") from None
        try:
            transforms.append(pose_to_transform(values, fmt))
        except CalibrationError as exc:
            raise CalibrationError(f"{path}: line {line_no}: {exc}") from None
        names.append(row[name_index].strip() if name_index is not None and name_index < len(row)
                     else f"row {len(names) + 1}")
    if not transforms:
        raise CalibrationError(f"{path}: no poses after the header")
    return PoseList(names=names, transforms=np.array(transforms))


def write_pose_csv(path: str | Path, transforms: np.ndarray, fmt: str, names: list[str] | None = None) -> None:
    """Write poses in a vendor convention, with a header (and a ``name`` column when names are given)."""
    fmt = _check_format(fmt)
    header = (["name"] if names is not None else []) + list(POSE_COLUMNS[fmt])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, T in enumerate(transforms):
            row = [repr(float(x)) for x in transform_to_pose(T, fmt)]
            writer.writerow(([names[i]] if names is not None else []) + row)
