"""From a ``Holes`` result to inspection inputs, and from an inspection to overlay statuses.

Pixel recipes use the image centers and diameters as measured. Millimetre recipes use the holes'
points in the robot base frame, expressed in 2D on the work plane: the plane's normal is the mean
approach vector (turned to point up, +z of the base), its first axis is the base x axis projected onto
the plane. For a level work plane the 2D coordinates are the base frame's (x, y).
"""

from __future__ import annotations

import numpy as np

from holevision.runtime.detections import Holes
from holevision.runtime.inspect.inspect import HOLE_UNCHECKED, Inspection, inspect
from holevision.runtime.inspect.recipe import Recipe


def plane_coordinates(points_base: np.ndarray, normal_base: np.ndarray) -> np.ndarray:
    """(N, 3) points in the base frame -> (N, 2) coordinates on the plane with that normal (mm)."""
    points_base = np.asarray(points_base, dtype=np.float64).reshape(-1, 3)
    n = np.asarray(normal_base, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(n)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("plane_coordinates: the plane normal must be a finite, non-zero vector")
    n = n / norm
    if n[2] < 0:
        n = -n
    e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n
    if np.linalg.norm(e1) < 1e-6:            # plane normal along base x: use base y as the first axis
        e1 = np.array([0.0, 1.0, 0.0]) - n[1] * n
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    return np.stack([points_base @ e1, points_base @ e2], axis=1)


def hole_measurements(holes: Holes, units: str) -> tuple[np.ndarray, np.ndarray]:
    """``(centers_2d (N, 2), diameters (N,))`` of ``holes`` in ``units`` ("px" or "mm").

    Holes cut by the image border are given as NaN (not measurable: inspection ignores them, and
    ``inspect_holes`` marks the recipe hole there ``unchecked``, so a hole half out of view is neither
    "ok" nor "missing"). mm needs the geometry step to have filled ``points_base`` and ``diameters_mm``.
    """
    centers, diameters = _positions(holes, units)
    if len(holes):
        centers[holes.on_border] = np.nan
    return centers, diameters


def _positions(holes: Holes, units: str) -> tuple[np.ndarray, np.ndarray]:
    if units == "px":
        return holes.centers.copy(), holes.diameters_px.copy()
    if units != "mm":
        raise ValueError(f"units must be 'px' or 'mm', got {units!r}")
    finite = np.all(np.isfinite(holes.points_base), axis=1) & np.isfinite(holes.diameters_mm)
    if len(holes) and not finite.any():
        raise ValueError("the recipe is in mm but the holes have no robot-frame positions; "
                         "set [calibration] camera, handeye and plane in the config (or use a px recipe)")
    normals = holes.approach_base[np.all(np.isfinite(holes.approach_base), axis=1)]
    normal = normals.mean(axis=0) if len(normals) else np.array([0.0, 0.0, 1.0])
    centers = np.full((len(holes), 2), np.nan)
    centers[finite] = plane_coordinates(holes.points_base[finite], normal)
    return centers, holes.diameters_mm.astype(np.float64).copy()


def inspect_holes(recipe: Recipe, holes: Holes, *, frame_size: tuple[int, int] | None = None,
                  seed: int = 0) -> Inspection:
    """The pipeline's inspect step: judge ``holes`` (one frame) against ``recipe``.

    ``frame_size`` (width, height px) lets a px recipe tell a hole outside the frame (``unchecked``,
    verdict NONE: part out of view) from a missing one. ``HoleCheck.detection`` and
    ``Inspection.extra`` are row indices into ``holes``.
    """
    centers, diameters = _positions(holes, recipe.units)
    border = holes.on_border if len(holes) else np.zeros(0, dtype=bool)
    blocked = centers[border]
    centers[border] = np.nan
    return inspect(recipe, centers, diameters, units=recipe.units,
                   unmeasurable_xy=blocked[np.all(np.isfinite(blocked), axis=1)],
                   frame_size=frame_size if recipe.units == "px" else None, seed=seed)


def overlay_statuses(inspection: Inspection, holes: Holes) -> list[tuple[int, str, tuple[float, float], float]]:
    """``[(id, status, (u, v), diameter_px), ...]`` for ``overlay.draw_overlay(..., statuses=...)``.

    Ids follow the overlay's contract: a found hole (ok / out_of_tolerance / extra) carries the id of
    its row in ``holes`` (``holes.ids``), so the overlay colours that outline. A missing hole carries its
    *recipe* id and is drawn as a marker where the fitted recipe puts it (px recipes directly; mm
    recipes through a plane -> image homography fitted on the matched holes, when at least 4 matched).
    """
    statuses: list[tuple[int, str, tuple[float, float], float]] = []
    if inspection.verdict == "NONE":
        return statuses
    to_px, px_per_unit = _to_pixels(inspection, holes)
    for check in inspection.holes:
        if check.status == HOLE_UNCHECKED:
            continue
        if check.detection >= 0:
            u, v = holes.centers[check.detection]
            statuses.append((int(holes.ids[check.detection]), check.status, (float(u), float(v)),
                             float(holes.diameters_px[check.detection])))
        elif to_px is not None and check.expected_xy is not None:
            u, v = to_px(np.array([check.expected_xy]))[0]
            statuses.append((check.id, check.status, (float(u), float(v)),
                             float(check.nominal_diameter * px_per_unit)))
    for row in inspection.extra:
        statuses.append((int(holes.ids[row]), "extra", tuple(float(x) for x in holes.centers[row]),
                         float(holes.diameters_px[row])))
    return statuses


def _to_pixels(inspection: Inspection, holes: Holes):
    if inspection.units == "px":
        return (lambda xy: xy), 1.0
    import cv2

    pairs = [(c.measured_xy, holes.centers[c.detection]) for c in inspection.holes
             if c.detection >= 0 and c.measured_xy is not None]
    if len(pairs) < 4:
        return None, 1.0
    src = np.array([p[0] for p in pairs], dtype=np.float64)
    dst = np.array([p[1] for p in pairs], dtype=np.float64)
    H, _ = cv2.findHomography(src, dst, 0)
    if H is None:
        return None, 1.0
    ratios = [holes.diameters_px[c.detection] / c.measured_diameter for c in inspection.holes
              if c.detection >= 0 and c.measured_diameter > 0]
    px_per_unit = float(np.median(ratios)) if ratios else 1.0

    def apply(xy: np.ndarray) -> np.ndarray:
        h = np.c_[xy, np.ones(len(xy))] @ H.T
        return h[:, :2] / h[:, 2:3]

    return apply, px_per_unit
