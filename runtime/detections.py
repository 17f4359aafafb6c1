"""`Holes`: the typed result of hole extraction, one row per hole, numpy arrays throughout.

Pixel quantities are in original image coordinates (u right, v down, pixel centers at integers).
Robot-frame quantities are filled in by the geometry step and stay NaN until then.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, fields

import numpy as np


def _column(n: int, width: int | None = None, fill: float = np.nan) -> np.ndarray:
    shape = (n,) if width is None else (n, width)
    return np.full(shape, fill, dtype=np.float64)


def reading_order(centers: np.ndarray, diameters_px: np.ndarray, row_tolerance_px: float | None = None) -> np.ndarray:
    """Indices that sort holes left-to-right, top-to-bottom (see `Holes.numbered`)."""
    n = len(centers)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tol = row_tolerance_px
    if tol is None:
        # The median diameter, as np.median gives it (the mean of the middle two for an even count),
        # without np.median's overhead (it was most of this function's cost).
        ordered = np.sort(np.asarray(diameters_px, dtype=np.float64))
        tol = max(4.0, 0.5 * float((ordered[(n - 1) // 2] + ordered[n // 2]) / 2))
    order_v = np.argsort(centers[:, 1], kind="stable")
    v = centers[:, 1].tolist()           # Python floats: indexing numpy scalars in the loop is slower
    row_of = [0] * n
    row, row_start_v = 0, v[order_v[0]]
    for i in order_v.tolist():
        if v[i] - row_start_v > tol:
            row += 1
            row_start_v = v[i]
        row_of[i] = row
    return np.lexsort((centers[:, 0], np.asarray(row_of, dtype=np.int64)))


@dataclass
class Holes:
    """N measured holes. Every array has N rows; build with ``Holes.empty()`` or the constructor."""

    centers: np.ndarray                       # (N, 2) subpixel center (u, v), px
    axes: np.ndarray                          # (N, 2) ellipse full axes (major, minor), px
    angles: np.ndarray                        # (N,) ellipse major-axis angle, degrees, from +u toward +v
    scores: np.ndarray                        # (N,) model confidence in [0, 1]
    circularity: np.ndarray = None            # (N,) minor / major in (0, 1]
    fit_residual: np.ndarray = None           # (N,) RMS distance of edge points to the ellipse, px
    on_border: np.ndarray = None              # (N,) bool: cut by the image border (measurement unreliable)
    refined: np.ndarray = None                # (N,) bool: center/axes from the subpixel edge fit (else from the mask)
    points_base: np.ndarray = None            # (N, 3) hole center in the robot base frame, mm (NaN = not computed)
    approach_base: np.ndarray = None          # (N, 3) unit approach vector in the base frame (plane normal)
    diameters_mm: np.ndarray = None           # (N,) mm (NaN = not computed)
    ids: np.ndarray = None                    # (N,) int, 1-based, numbered left-to-right, top-to-bottom

    def __post_init__(self) -> None:
        self.centers = np.asarray(self.centers, dtype=np.float64).reshape(-1, 2)
        n = len(self.centers)
        self.axes = np.asarray(self.axes, dtype=np.float64).reshape(-1, 2)
        self.angles = np.asarray(self.angles, dtype=np.float64).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        # Missing columns get their defaults; given ones become arrays (bool and int columns in their type).
        # Plain statements, not a table of closures: this runs once per frame on the line.
        if self.circularity is None:
            self.circularity = np.divide(self.axes[:, 1], self.axes[:, 0], out=np.zeros(n), where=self.axes[:, 0] > 0)
        self.circularity = np.asarray(self.circularity)
        self.fit_residual = _column(n) if self.fit_residual is None else np.asarray(self.fit_residual)
        self.on_border = np.zeros(n, dtype=bool) if self.on_border is None else np.asarray(self.on_border, dtype=bool)
        self.refined = np.zeros(n, dtype=bool) if self.refined is None else np.asarray(self.refined, dtype=bool)
        self.points_base = _column(n, 3) if self.points_base is None else np.asarray(self.points_base)
        self.approach_base = _column(n, 3) if self.approach_base is None else np.asarray(self.approach_base)
        self.diameters_mm = _column(n) if self.diameters_mm is None else np.asarray(self.diameters_mm)
        self.ids = (np.arange(1, n + 1, dtype=np.int64) if self.ids is None
                    else np.asarray(self.ids, dtype=np.int64))
        for name in _HOLES_FIELDS:
            value = getattr(self, name)
            if len(value) != n:
                raise ValueError(f"Holes.{name} has {len(value)} rows, expected {n} (one per center); "
                                 f"shape {value.shape}")
        for name, width in (("axes", 2), ("points_base", 3), ("approach_base", 3)):
            if getattr(self, name).shape != (n, width):
                raise ValueError(f"Holes.{name} must have shape ({n}, {width}), got {getattr(self, name).shape}")

    @classmethod
    def empty(cls) -> "Holes":
        return cls(centers=np.zeros((0, 2)), axes=np.zeros((0, 2)), angles=np.zeros(0), scores=np.zeros(0))

    def __len__(self) -> int:
        return len(self.centers)

    def __getitem__(self, index) -> "Holes":
        """Select rows by int, slice, index array or boolean mask; always returns Holes."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Holes(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def diameters_px(self) -> np.ndarray:
        """Equivalent circle diameter: geometric mean of the ellipse's full axes (px)."""
        return np.sqrt(self.axes[:, 0] * self.axes[:, 1])

    @classmethod
    def concatenate(cls, parts: list["Holes"]) -> "Holes":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def numbered(self, row_tolerance_px: float | None = None) -> "Holes":
        """Sort left-to-right, top-to-bottom (rows grouped within ``row_tolerance_px``) and renumber 1..N.

        Rows: holes whose v differ by less than the tolerance (default: half the median diameter,
        at least 4 px) are one row, ordered by u. Numbers are stable for the same image.
        """
        n = len(self)
        if n == 0:
            return self
        order = reading_order(self.centers, self.diameters_px, row_tolerance_px)
        numbers = np.arange(1, n + 1, dtype=np.int64)
        if np.array_equal(order, numbers - 1) and np.array_equal(self.ids, numbers):
            return self             # numbered already (hole extraction returns its holes so)
        out = self[order]
        out.ids = numbers
        return out

    def to_rows(self) -> list[dict]:
        """Plain dicts (JSON-ready, NaN -> None), one per hole, in id order.

        Built from whole columns: each becomes Python floats with one ``tolist()`` (indexing numpy
        arrays one element at a time costs ~16 numpy scalars per hole, 0.4 ms for 20 holes, per frame).
        """
        if len(self) == 0:
            return []

        def num(x: float):
            return round(x, 4) if math.isfinite(x) else None

        u, v = self.centers.T.tolist()
        major, minor = self.axes.T.tolist()
        x_mm, y_mm, z_mm = self.points_base.T.tolist()
        approach_ok = np.isfinite(self.approach_base).all(axis=1).tolist()
        return [{
            "id": int(hole_id),
            "u": num(u[i]), "v": num(v[i]),
            "diameter_px": num(diameter),
            "major_px": num(major[i]), "minor_px": num(minor[i]),
            "angle_deg": num(angle),
            "circularity": num(circularity),
            "fit_residual_px": num(residual),
            "score": num(score),
            "on_border": bool(on_border),
            "refined": bool(refined),
            "x_mm": num(x_mm[i]), "y_mm": num(y_mm[i]), "z_mm": num(z_mm[i]),
            "approach": [num(a) for a in approach] if approach_ok[i] else None,
            "diameter_mm": num(diameter_mm),
        } for i, (hole_id, diameter, angle, circularity, residual, score, on_border, refined, approach, diameter_mm)
            in enumerate(zip(self.ids.tolist(), self.diameters_px.tolist(), self.angles.tolist(),
                             self.circularity.tolist(), self.fit_residual.tolist(), self.scores.tolist(),
                             self.on_border.tolist(), self.refined.tolist(), self.approach_base.tolist(),
                             self.diameters_mm.tolist()))]


_HOLES_FIELDS = tuple(f.name for f in fields(Holes))   # every column, for the row-count check
