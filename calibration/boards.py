"""Calibration boards: spec strings ("chessboard:9x6:25", "charuco:11x8:20:15:DICT_5X5_100"), corner detection.

- ``chessboard:COLSxROWS:SQUARE_MM``: COLS x ROWS *inner* corners (OpenCV's convention; its sample
  board is 9x6), square side in mm. Board frame: origin at the first corner, x along a row, z into the board.
- ``charuco:COLSxROWS:SQUARE_MM:MARKER_MM[:DICT]``: COLS x ROWS *squares*, ArUco dictionary name
  (default DICT_5X5_100). Corners are identified individually, so partial views work.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import CalibrationError

BOARD_SYNTAX = "chessboard:COLSxROWS:SQUARE_MM or charuco:COLSxROWS:SQUARE_MM:MARKER_MM[:DICT]"
_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-4)


@dataclass(frozen=True)
class BoardDetection:
    """Corners found in one image: pixels (N, 2), board-frame points (N, 3) mm, corner ids (N,)."""

    image_points: np.ndarray
    object_points: np.ndarray
    ids: np.ndarray


@dataclass(frozen=True)
class BoardSpec:
    kind: str          # "chessboard" | "charuco"
    cols: int          # chessboard: inner corners per row; charuco: squares per row
    rows: int
    square_mm: float
    marker_mm: float = 0.0
    dictionary: str = "DICT_5X5_100"

    @classmethod
    def parse(cls, text: str) -> "BoardSpec":
        parts = text.strip().split(":")
        kind = parts[0].lower()
        try:
            cols, rows = (int(x) for x in parts[1].lower().split("x"))
            square = float(parts[2])
            if kind == "chessboard" and len(parts) == 3:
                spec = cls("chessboard", cols, rows, square)
            elif kind == "charuco" and len(parts) in (4, 5):
                spec = cls("charuco", cols, rows, square, float(parts[3]),
                           parts[4].upper() if len(parts) == 5 else "DICT_5X5_100")
            else:
                raise ValueError
        except (ValueError, IndexError):
            raise CalibrationError(f"board {text!r} not understood; write {BOARD_SYNTAX}, "
                                   f"e.g. chessboard:9x6:25 or charuco:11x8:20:15") from None
        if spec.cols < 2 or spec.rows < 2 or spec.square_mm <= 0:
            raise CalibrationError(f"board {text!r}: need at least 2x2 and a positive square size")
        if spec.kind == "charuco":
            if not 0 < spec.marker_mm < spec.square_mm:
                raise CalibrationError(f"board {text!r}: marker size must be positive and smaller than the square")
            if not hasattr(cv2.aruco, spec.dictionary):
                raise CalibrationError(f"board {text!r}: unknown ArUco dictionary {spec.dictionary!r}")
        return spec

    def __str__(self) -> str:
        base = f"{self.kind}:{self.cols}x{self.rows}:{self.square_mm:g}"
        return base if self.kind == "chessboard" else f"{base}:{self.marker_mm:g}:{self.dictionary}"

    @property
    def corner_grid(self) -> tuple[int, int]:
        """Inner corners (cols, rows)."""
        return (self.cols, self.rows) if self.kind == "chessboard" else (self.cols - 1, self.rows - 1)

    def object_points(self) -> np.ndarray:
        """All inner corners in the board frame (N, 3), mm, in detection id order."""
        cols, rows = self.corner_grid
        grid = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), axis=-1).reshape(-1, 2)
        offset = self.square_mm if self.kind == "charuco" else 0.0
        return np.concatenate([grid * self.square_mm + offset, np.zeros((len(grid), 1))], axis=1)

    def _charuco_board(self):
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_mm, self.marker_mm, dictionary)

    def detect(self, image: np.ndarray, subpix_window: int | None = None) -> BoardDetection | None:
        """Find the board's corners with subpixel refinement; None when the board is not (fully) found."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.kind == "chessboard":
            flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
            found, corners = cv2.findChessboardCorners(gray, (self.cols, self.rows), flags=flags)
            if not found:
                return None
            corners = corners.reshape(-1, 2).astype(np.float32)
            ids = np.arange(len(corners))
        else:
            detector = cv2.aruco.CharucoDetector(self._charuco_board())
            corners, ids, _, _ = detector.detectBoard(gray)
            if ids is None or len(ids) < 6:
                return None
            corners = corners.reshape(-1, 2).astype(np.float32)
            ids = ids.reshape(-1)
        # ChArUco: the window must stay clear of the markers inside the squares
        clear = 0.4 if self.kind == "chessboard" else 0.4 * (1 - self.marker_mm / self.square_mm)
        window = subpix_window or _subpix_window(corners, ids, clear)
        cv2.cornerSubPix(gray, corners.reshape(-1, 1, 2), (window, window), (-1, -1), _SUBPIX_CRITERIA)
        return BoardDetection(image_points=corners.reshape(-1, 2).astype(np.float64),
                              object_points=self.object_points()[ids], ids=ids)

    def render(self, px_per_mm: float, margin_mm: float = 10.0) -> np.ndarray:
        """A flat grayscale picture of the board (for printing, or synthetic tests); the board frame
        origin (first corner) sits at pixel ``(margin_mm + square_mm) * px_per_mm`` for chessboards."""
        if self.kind == "charuco":
            size = (int(round((self.cols * self.square_mm + 2 * margin_mm) * px_per_mm)),
                    int(round((self.rows * self.square_mm + 2 * margin_mm) * px_per_mm)))
            return self._charuco_board().generateImage(size, marginSize=int(round(margin_mm * px_per_mm)))
        squares_x, squares_y = self.cols + 1, self.rows + 1
        w = (squares_x * self.square_mm + 2 * margin_mm) * px_per_mm
        h = (squares_y * self.square_mm + 2 * margin_mm) * px_per_mm
        ys, xs = np.mgrid[0:int(round(h)), 0:int(round(w))]
        bx = ((xs + 0.5) / px_per_mm - margin_mm) / self.square_mm
        by = ((ys + 0.5) / px_per_mm - margin_mm) / self.square_mm
        inside = (bx >= 0) & (bx < squares_x) & (by >= 0) & (by < squares_y)
        black = (np.floor(bx).astype(int) + np.floor(by).astype(int)) % 2 == 0
        return np.where(inside & black, 0, 255).astype(np.uint8)


def _subpix_window(corners: np.ndarray, ids: np.ndarray, clear_fraction: float) -> int:
    """Half-window for cornerSubPix: 11 (OpenCV's sample) unless squares are small in the image
    (at most ``clear_fraction`` of the corner spacing)."""
    if len(corners) < 2:
        return 5
    d = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    spacing = float(np.median(d[np.diff(ids) == 1])) if np.any(np.diff(ids) == 1) else float(np.median(d))
    return int(np.clip(spacing * clear_fraction, 2, 11))
