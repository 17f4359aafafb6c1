"""`extract_holes`: hole probability map (+ the full-resolution image) -> measured `Holes`.

probability -> instances (connected components, touching holes split) -> three measurements, each
kept only where it is plausible, best last:

1. the mask's moment ellipse (always available);
2. the model's outline: where the probability crosses 0.5 (or a lower threshold) along radial rays (subpixel),
   robustly fitted with an ellipse (a circle for holes cut by the image border);
3. the image edge: the gradient-peak centroid along the same rays on the full-resolution image,
   nearest the model's outline, robustly fitted. Its center is used (``refined = True``) only where
   it agrees with the model's outline within a fraction of a pixel, its size only where the sizes
   agree too: the edge measures the hole, the model says which edge is the hole's wall rather than a
   chamfer, a thread, the visible bore wall of a tilted hole or a drawing's outline stroke. On
   renders of realistic metal and CAD views the image edge often is one of those, and a good model's
   outline is closer to the truth.

Then: regions that cannot be holes are dropped (thin streaks, arcs), a hole read twice (ring and
disc) is reported once, and the holes are numbered left-to-right, top-to-bottom.

Everything per hole runs compiled (numba): the components in one call (instances.py), then 2 and 3 in
one more (`_measure`), the selection and numbering in a third (`_report`); Python only checks inputs
and builds the result.
"""

from __future__ import annotations

import numba
import numpy as np

from holevision.runtime.detections import Holes
from holevision.runtime.holes.edges import _edge_kernel, _outline_kernel, edge_kernel_image, ray_angles
from holevision.runtime.holes.ellipse_fit import _robust_fit
from holevision.runtime.holes.instances import MIN_ASPECT, find_instances, foreign_points
from holevision.runtime.holes.memory import freeze_startup_objects, keep_freed_memory

RAYS = 64            # rays per hole (one batch for all holes; 64 measure as well as 128 at half the cost)
_RAY_COS, _RAY_SIN = np.cos(ray_angles(RAYS)), np.sin(ray_angles(RAYS))
# The image-edge fit gives the center when it lies this close to the model's outline, and the size
# too when the diameters also agree (the larger of an absolute and a relative bound); otherwise the
# outline stands. A looser center bound helps a weak model (its outline ~1 px off) and hurts a good
# one (its outline ~0.1 px off, where rendered bore walls pull the edge 0.5 px): 0.2 px favours the
# good model.
EDGE_SHIFT_PX, EDGE_SHIFT_FRACTION = 0.2, 0.005
EDGE_DIAMETER_PX, EDGE_DIAMETER_FRACTION = 1.0, 0.01
# ...or up to CRISP_SHIFT_PX away when its points sit on the fitted ellipse within CRISP_RESIDUAL_PX RMS
# (a clean machined edge; a coarse model's outline can be 0.2-0.4 px off).
CRISP_SHIFT_PX, CRISP_RESIDUAL_PX = 0.5, 0.05
# The robust fits' settings (see ellipse_fit.fit_ellipses_robust / fit_circles_robust).
FIT_ITERATIONS, MIN_POINTS_ELLIPSE, MIN_POINTS_CIRCLE, FIT_FLOOR_PX, FIT_K_SIGMA = 4, 6, 4, 0.15, 3.0
# warm_up_extraction says that it is compiling when loading the cached kernels takes longer than this.
COMPILE_NOTICE_AFTER_S = 3.0
# Hysteresis: regions above LOW_THRESHOLD_FRACTION x threshold that reach the threshold are one hole.
LOW_THRESHOLD_FRACTION = 0.6
# The model's outline is where the probability crosses min(threshold, OUTLINE_LEVEL). The threshold
# says which regions are holes (confidence); the hole's edge is where the model is undecided, p = 0.5.
# Traced at a high detection threshold (a bundle's 0.9) the outline runs ~1 px inside the edge and
# every diameter comes out ~2 px small.
OUTLINE_LEVEL = 0.5


class HoleExtractionError(ValueError):
    """The inputs to hole extraction do not fit together (shape, dtype, range)."""


def _check_inputs(prob_hole, image_bgr, threshold: float) -> tuple[np.ndarray, np.ndarray | None]:
    prob = np.asarray(prob_hole)
    if prob.ndim != 2:
        raise HoleExtractionError(f"prob_hole must be a (H, W) map, got shape {prob.shape}")
    if not np.issubdtype(prob.dtype, np.floating):
        raise HoleExtractionError(f"prob_hole must be float probabilities in [0, 1], got dtype {prob.dtype}")
    if not 0.0 < threshold < 1.0:
        raise HoleExtractionError(f"threshold must be in (0, 1), got {threshold}")
    # One layout and type for the compiled kernels (another would compile anew on its first frame):
    # C-contiguous float32, the models' output precision.
    prob = np.ascontiguousarray(prob, dtype=np.float32)
    if image_bgr is None:
        return prob, None
    image = np.asarray(image_bgr)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise HoleExtractionError(f"image must be (H, W) grey or (H, W, 3) BGR, got shape {image.shape}")
    if image.shape[:2] != prob.shape:
        raise HoleExtractionError(f"image is {image.shape[1]}x{image.shape[0]} but prob_hole is "
                                  f"{prob.shape[1]}x{prob.shape[0]}; they must match (original pixels)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        image = image.astype(np.float32)
    return prob, np.ascontiguousarray(image)


@numba.njit(cache=True, nogil=True)
def _initial_state(boxes, centroids, mask_axes, mask_angles, width, height):
    """Each hole before measuring: cut by the border (its box touches the frame's edge), and its mask's
    centroid and moment ellipse as center, axes and angle (copies, updated in place by _measure);
    residual NaN, not refined. (One compiled call: a dozen small numpy operations cost more.)"""
    n = len(boxes)
    on_border = np.empty(n, dtype=np.bool_)
    for i in range(n):
        x, y, w, h = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        on_border[i] = x <= 0 or y <= 0 or x + w >= width or y + h >= height
    return (on_border, centroids.copy(), mask_axes.copy(), mask_angles.copy(), np.full(n, np.nan),
            np.zeros(n, dtype=np.bool_))


@numba.njit(cache=True, nogil=True)
def _ellipse_radii(centers, axes, angles_deg, cos_d, sin_d, out):
    """Distance from each ellipse's center to its outline along each ray direction: out (N, K) px."""
    for i in range(len(centers)):
        a, b = max(axes[i, 0] / 2, 1e-6), max(axes[i, 1] / 2, 1e-6)
        theta = np.radians(angles_deg[i])
        cos_t, sin_t = np.cos(theta), np.sin(theta)
        for j in range(len(cos_d)):
            # cos and sin of (direction - angle) by the difference formulas
            cos_phi = cos_d[j] * cos_t + sin_d[j] * sin_t
            sin_phi = sin_d[j] * cos_t - cos_d[j] * sin_t
            out[i, j] = 1.0 / np.sqrt((cos_phi / a) ** 2 + (sin_phi / b) ** 2)


@numba.njit(cache=True, nogil=True)
def _search_half_widths(axes, fraction, low, high, out):
    """clip(fraction x radius, low, high) per hole (0 where the radius is not finite)."""
    for i in range(len(axes)):
        width = fraction * np.sqrt(axes[i, 0] * axes[i, 1]) / 2
        out[i] = min(max(width, low), high) if np.isfinite(width) else 0.0


@numba.njit(cache=True, nogil=True)
def _robust_fits(points, valid, on_border):
    """The robust ellipse fit (a circle where the hole is cut by the border) of each hole's points;
    points that are not finite are not valid."""
    n, k = valid.shape
    usable = np.empty((n, k), dtype=np.bool_)
    for i in range(n):
        for j in range(k):
            usable[i, j] = valid[i, j] and np.isfinite(points[i, j, 0]) and np.isfinite(points[i, j, 1])
    return _robust_fit(points, usable, on_border, FIT_ITERATIONS, MIN_POINTS_ELLIPSE, MIN_POINTS_CIRCLE,
                       FIT_FLOOR_PX, FIT_K_SIGMA)


@numba.njit(cache=True, nogil=True)
def _measure(prob, image, weights, lut, has_image, outline_level, boxes, mask_buffer, mask_offsets, cos_d, sin_d,
             centers, axes, angles, on_border, residual, refined):
    """The model's outline, then the image edge around it, for every hole at once; updates centers,
    axes, angles (from the mask's moments on entry), residual and refined in place.

    1. The model's outline, subpixel: where the probability crosses ``outline_level`` along rays from
       the mask's centroid; robustly fitted. It replaces the mask's moments where it is plausible (near
       the centroid, a size like the mask's).
    2. The image edge nearest that outline, along rays from its center (points on another hole's
       pixels are that hole's edge); robustly fitted. Its center replaces the outline's where the two
       agree within a fraction of a pixel (further for a crisp edge), its size where the sizes agree
       too: the edge measures the hole, the model says which edge is the hole's (not a chamfer, a
       thread or a drawing's line).
    """
    n, k = len(centers), len(cos_d)
    height, width = prob.shape[0], prob.shape[1]
    expected = np.empty((n, k))
    half_widths = np.empty(n)
    points = np.empty((n, k, 2))
    valid = np.empty((n, k), dtype=np.bool_)
    # Pass 1: the model's outline.
    _ellipse_radii(centers, axes, angles, cos_d, sin_d, expected)
    _search_half_widths(axes, 0.5, 3.0, 16.0, half_widths)
    _outline_kernel(prob, outline_level, centers, expected, half_widths, cos_d, sin_d, points, valid)
    o_centers, o_axes, o_angles, o_residual, _, o_ok = _robust_fits(points, valid, on_border)
    # Pass 2 starts from the outline where it was fitted.
    centers2, axes2, angles2 = centers.copy(), axes.copy(), angles.copy()
    for i in range(n):
        if o_ok[i]:
            centers2[i], axes2[i], angles2[i] = o_centers[i], o_axes[i], o_angles[i]
    e_centers, e_axes, e_angles, e_residual, e_ok = o_centers, o_axes, o_angles, o_residual, np.zeros(n, np.bool_)
    if has_image:
        _ellipse_radii(centers2, axes2, angles2, cos_d, sin_d, expected)
        _search_half_widths(axes2, 0.12, 2.0, 5.0, half_widths)
        _edge_kernel(image, weights, lut, centers2, expected, half_widths, cos_d, sin_d, False, np.ones(n), True,
                     points, valid)
        foreign = np.zeros((n, k), dtype=np.bool_)
        foreign_points(points, boxes, mask_buffer, mask_offsets, height, width, foreign)
        for i in range(n):
            for j in range(k):
                valid[i, j] &= not foreign[i, j]
        e_centers, e_axes, e_angles, e_residual, _, e_ok = _robust_fits(points, valid, on_border)
    for i in range(n):
        diameter = np.sqrt(abs(axes[i, 0] * axes[i, 1]))
        shift = np.hypot(o_centers[i, 0] - centers[i, 0], o_centers[i, 1] - centers[i, 1])
        fit_diameter = np.sqrt(abs(o_axes[i, 0] * o_axes[i, 1]))
        plausible = (o_ok[i] and np.isfinite(shift) and shift <= 0.5 * diameter / 2 + 2.0
                     and fit_diameter >= 0.5 * diameter - 2.0 and fit_diameter <= 1.6 * diameter + 4.0)
        if not plausible:
            continue
        centers[i], axes[i], angles[i], residual[i] = o_centers[i], o_axes[i], o_angles[i], o_residual[i]
        if not e_ok[i]:
            continue
        diameter = np.sqrt(abs(axes[i, 0] * axes[i, 1]))
        shift = np.hypot(e_centers[i, 0] - centers[i, 0], e_centers[i, 1] - centers[i, 1])
        # A crisp edge (points on a perfect ellipse) is trusted a little further from the outline.
        limit = CRISP_SHIFT_PX if e_residual[i] <= CRISP_RESIDUAL_PX else EDGE_SHIFT_PX
        limit = max(limit, EDGE_SHIFT_FRACTION * diameter)
        if not (np.isfinite(shift) and shift <= limit):
            continue
        # Size from the edge only where it also agrees in size: a drawing's outline stroke, a chamfer
        # or a thread ring moves the edge outward on every side (the center stays put).
        fit_diameter = np.sqrt(abs(e_axes[i, 0] * e_axes[i, 1]))
        if abs(fit_diameter - diameter) <= max(EDGE_DIAMETER_PX, EDGE_DIAMETER_FRACTION * diameter):
            axes[i], angles[i] = e_axes[i], e_angles[i]
        centers[i], residual[i], refined[i] = e_centers[i], e_residual[i], True


@numba.njit(cache=True, nogil=True)
def _select(centers, axes, on_border, width, height, measured, shape_filter, min_diameter_px, diameters, keep):
    """Which holes to report (``keep``), their diameters, and ``on_border`` completed.

    - A measured outline that leaves the image also means the hole is cut by the border.
    - A hole that mostly overlaps a larger one is a second reading of the same hole: a model may mark
      a hole twice, as a ring (the chamfer or wall) and as the disc inside it, or break one hole into
      pieces around a glare. It is dropped when its center is closer to a larger hole's center than
      half the sum of their radii; touching holes, split on purpose, are a full sum of radii apart.
    - With ``shape_filter``, the measured outline too must be hole-like (a sliver can hide in a
      plausible blob): minor / major >= MIN_ASPECT unless cut by the border.
    - Holes smaller than ``min_diameter_px`` are dropped.
    """
    n = len(centers)
    for i in range(n):
        if measured:
            half_major = axes[i, 0] / 2
            on_border[i] |= (centers[i, 0] - half_major < -0.5 or centers[i, 1] - half_major < -0.5
                             or centers[i, 0] + half_major > width - 0.5 or centers[i, 1] + half_major > height - 0.5)
        diameters[i] = np.sqrt(axes[i, 0] * axes[i, 1])
    for i in range(n):
        keep[i] = True
        radius = diameters[i] / 2
        for j in range(n):
            other = diameters[j] / 2
            larger = other > radius or (other == radius and j < i)
            dx, dy = centers[i, 0] - centers[j, 0], centers[i, 1] - centers[j, 1]
            if larger and np.sqrt(dx * dx + dy * dy) < 0.5 * (radius + other):
                keep[i] = False
                break
        if shape_filter and not on_border[i]:
            circularity = axes[i, 1] / axes[i, 0] if axes[i, 0] > 0 else 0.0
            keep[i] &= circularity >= MIN_ASPECT
        if min_diameter_px > 0:
            keep[i] &= diameters[i] >= min_diameter_px


@numba.njit(cache=True, nogil=True)
def _report(centers, axes, angles, scores, residual, on_border, refined, width, height, measured, shape_filter,
            min_diameter_px):
    """The holes to report (`_select`), in reading order (numbered 1..N as Holes.numbered would number
    them, without a second copy): their centers, axes, angles, scores, residual, on_border, refined."""
    n = len(centers)
    diameters, keep = np.empty(n), np.empty(n, dtype=np.bool_)
    _select(centers, axes, on_border, width, height, measured, shape_filter, min_diameter_px, diameters, keep)
    rows = np.flatnonzero(keep)
    rows = rows[_reading_order(centers[rows], diameters[rows])]
    return (centers[rows], axes[rows], angles[rows], scores[rows], residual[rows], on_border[rows],
            refined[rows])


@numba.njit(cache=True, nogil=True)
def _reading_order(centers, diameters):
    """detections.reading_order with the default row tolerance, compiled (tests hold the two equal):
    rows of holes whose v lie within max(4, median diameter / 2) of the row's first, top to bottom;
    left to right within a row."""
    n = len(centers)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ordered = np.sort(diameters)
    tolerance = max(4.0, 0.5 * ((ordered[(n - 1) // 2] + ordered[n // 2]) / 2))
    by_v = np.argsort(centers[:, 1], kind="mergesort")
    row_of = np.empty(n, dtype=np.int64)
    row, row_start_v = 0, centers[by_v[0], 1]
    for i in by_v:
        if centers[i, 1] - row_start_v > tolerance:
            row += 1
            row_start_v = centers[i, 1]
        row_of[i] = row
    # np.lexsort((u, row)) by two stable sorts: by u, then by row.
    by_u = np.argsort(centers[:, 0], kind="mergesort")
    return by_u[np.argsort(row_of[by_u], kind="mergesort")]


def extract_holes(prob_hole: np.ndarray, image_bgr: np.ndarray | None = None, *, threshold: float = 0.5,
                  min_area_px: float = 6.0, refine: bool = True, min_diameter_px: float = 0.0,
                  shape_filter: bool = True) -> Holes:
    """Find and measure holes.

    prob_hole: (H, W) float hole probability in [0, 1], in the image's original pixels.
    image_bgr: the full-resolution frame ((H, W, 3) BGR or (H, W) grey) for the subpixel edge fit;
    None measures the model's outline alone (``refined`` stays False).
    refine: False keeps the mask's moment ellipse (fastest, least precise).
    shape_filter: join a hole marked as a broken ring (hysteresis down to 0.6 x threshold) and drop
    regions that cannot be holes (thin streaks, arcs; see instances.MIN_ASPECT, MIN_SOLIDITY).
    Returns `Holes` numbered left-to-right, top-to-bottom; holes cut by the image border are kept and
    flagged ``on_border`` (their circle is fitted to the visible arc only).
    """
    prob, image = _check_inputs(prob_hole, image_bgr, threshold)
    keep_freed_memory()      # once per process: no page faults from per-frame arrays (see memory.py)
    instances = find_instances(prob, threshold=threshold, min_area_px=min_area_px, shape_filter=shape_filter,
                               low_threshold=LOW_THRESHOLD_FRACTION * threshold if shape_filter else None)
    n = len(instances)
    if n == 0:
        return Holes.empty()
    height, width = prob.shape
    on_border, centers, axes, angles, residual, refined = _initial_state(
        instances.boxes, instances.centroids, instances.mask_axes, instances.mask_angles, width, height)

    if refine:
        prob3 = prob.reshape(height, width, 1)
        if image is None:
            kernel_image, weights, lut = prob3, np.ones(1), None      # not read: no edge pass
        else:
            kernel_image, weights, lut = edge_kernel_image(image)
        outline_level = min(float(threshold), OUTLINE_LEVEL)
        _measure(prob3, kernel_image, weights, lut, image is not None, outline_level, instances.boxes,
                 instances.mask_buffer, instances.mask_offsets, _RAY_COS, _RAY_SIN, centers, axes, angles,
                 on_border, residual, refined)

    centers, axes, angles, scores, residual, on_border, refined = _report(
        centers, axes, angles, instances.scores, residual, on_border, refined, width, height, refine, shape_filter,
        float(min_diameter_px))
    return Holes(centers=centers, axes=axes, angles=angles, scores=scores, fit_residual=residual, on_border=on_border,
                 refined=refined)


def warm_up_extraction() -> float:
    """Run extraction once on a small made-up frame so that its compiled kernels (numba, cached on disk
    after the first run) are ready before the first real frame, then exclude everything loaded so
    far from garbage collection (memory.freeze_startup_objects). Returns the seconds it took.

    Loading cached kernels takes well under a second; compiling them (the first run after installing,
    or with no writable cache folder) about half a minute, which is logged when it happens."""
    import logging
    import threading
    import time

    start = time.perf_counter()
    notice = threading.Timer(COMPILE_NOTICE_AFTER_S, lambda: logging.getLogger(__name__).warning(
        "compiling the hole-extraction kernels (once after installing; about 30 s; cached in "
        "__pycache__ or $NUMBA_CACHE_DIR)..."))
    notice.daemon = True
    notice.start()
    try:
        _extract_warm_up_frames()
    finally:
        notice.cancel()
    freeze_startup_objects()   # full garbage collections no longer walk the compiled kernels (see memory.py)
    return time.perf_counter() - start


def _extract_warm_up_frames() -> None:
    v, u = np.mgrid[0:96, 0:96]
    # One whole hole and one cut by the border: every kernel (ellipse and circle fits) runs.
    inside = ((u - 40.3) ** 2 + (v - 44.7) ** 2 < 15.0 ** 2) | ((u - 92.0) ** 2 + (v - 20.0) ** 2 < 8.0 ** 2)
    prob = np.where(inside, 0.95, 0.02).astype(np.float32)
    image = np.where(inside, 40, 200).astype(np.uint8)
    # The image types extraction takes: 8-bit BGR (what Detector feeds) and grey, 16-bit, float.
    for frame in (np.dstack([image] * 3), image, image.astype(np.uint16) * 256, image.astype(np.float32)):
        extract_holes(prob, frame, threshold=0.5)
