"""`extract_holes`: hole probability map (+ the full-resolution image) -> measured `Holes`.

probability -> instances (connected components, touching holes split) -> three measurements, each
kept only where it is plausible, best last:

1. the mask's moment ellipse (always available);
2. the model's outline: where the probability crosses the threshold along radial rays (subpixel),
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
"""

from __future__ import annotations

import numpy as np

from holevision.runtime.detections import Holes
from holevision.runtime.holes.edges import probability_outline_points, radial_edge_points, ray_angles
from holevision.runtime.holes.ellipse_fit import EllipseFit, fit_circles_robust, fit_ellipses_robust
from holevision.runtime.holes.instances import MIN_ASPECT, find_instances
from holevision.runtime.holes.memory import keep_freed_memory

RAYS = 64            # rays per hole (one batch for all holes; 64 measure as well as 128 at half the cost)
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
# warm_up_extraction says that it is compiling when loading the cached kernels takes longer than this.
COMPILE_NOTICE_AFTER_S = 3.0
# Hysteresis: regions above LOW_THRESHOLD_FRACTION x threshold that reach the threshold are one hole.
LOW_THRESHOLD_FRACTION = 0.6


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


def ellipse_radius(axes: np.ndarray, angles_deg: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Distance from an ellipse's center to its outline along each direction: (N, K) px."""
    a = np.maximum(axes[:, 0, None] / 2, 1e-6)
    b = np.maximum(axes[:, 1, None] / 2, 1e-6)
    # cos and sin of (direction - angle) by the difference formulas: no trigonometry on (N, K) arrays.
    theta = np.radians(angles_deg)[:, None]
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    cos_d, sin_d = np.cos(directions)[None, :], np.sin(directions)[None, :]
    cos_phi = cos_d * cos_t + sin_d * sin_t
    sin_phi = sin_d * cos_t - cos_d * sin_t
    return 1.0 / np.sqrt((cos_phi / a) ** 2 + (sin_phi / b) ** 2)


def _measure(image, prob, threshold, instances, centers, axes, angles, on_border, rays: int):
    """Outline from the model's probability, then the image edge around it; both fits returned."""
    directions = ray_angles(rays)
    radius = np.sqrt(axes[:, 0] * axes[:, 1]) / 2
    # Pass 1: the model's outline, subpixel: where the probability crosses the threshold.
    expected = ellipse_radius(axes, angles, directions)
    points, valid = probability_outline_points(prob, threshold, centers, expected, np.clip(0.5 * radius, 3.0, 16.0),
                                               directions)
    outline = _fit(points, valid, on_border)
    use = outline.ok
    centers2 = np.where(use[:, None], outline.centers, centers)
    axes2 = np.where(use[:, None], outline.axes, axes)
    angles2 = np.where(use, outline.angles, angles)
    # Pass 2: the image edge nearest that outline, along rays from its center.
    radius2 = np.sqrt(axes2[:, 0] * axes2[:, 1]) / 2
    expected2 = ellipse_radius(axes2, angles2, directions)
    if image is None:
        return outline, None
    edges = radial_edge_points(image, centers2, expected2, np.clip(0.12 * radius2, 2.0, 5.0), directions)
    # An edge point on another hole's pixels is that hole's edge.
    valid = edges.valid & ~instances.foreign(edges.points)
    return outline, _fit(edges.points, valid, on_border)


def _not_nested(centers: np.ndarray, diameters: np.ndarray) -> np.ndarray:
    """False for a hole that mostly overlaps a larger one: a second reading of the same hole.

    A model may mark a hole twice, as a ring (the chamfer or wall) and as the disc inside it, or break
    one hole into pieces around a glare. A hole is dropped when its center is closer to a larger
    hole's center than half the sum of their radii; touching holes, split on purpose, are a full sum
    of radii apart.
    """
    n = len(centers)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    radius = diameters / 2
    distance = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    index = np.arange(n)
    larger = (radius[None, :] > radius[:, None]) | ((radius[None, :] == radius[:, None]) & (index[None, :] < index[:, None]))
    overlapped = (distance < 0.5 * (radius[:, None] + radius[None, :])) & larger
    return ~overlapped.any(axis=1)


def _agrees(fit: EllipseFit, centers, axes, *, shift_px, radius_ratio=None, diameter_px=None) -> np.ndarray:
    """Holes whose fit is valid and close to a reference ellipse (centers, axes)."""
    shift = np.linalg.norm(fit.centers - centers, axis=1)
    fit_d = np.sqrt(np.abs(fit.axes[:, 0] * fit.axes[:, 1]))
    ref_d = np.sqrt(np.abs(axes[:, 0] * axes[:, 1]))
    ok = fit.ok & np.isfinite(shift) & (shift <= shift_px)
    if radius_ratio is not None:
        ok &= (fit_d >= radius_ratio[0] * ref_d - 2.0) & (fit_d <= radius_ratio[1] * ref_d + 4.0)
    if diameter_px is not None:
        ok &= np.abs(fit_d - ref_d) <= diameter_px
    return ok


def _fit(points, valid, on_border) -> EllipseFit:
    fit = fit_ellipses_robust(points, valid)
    if on_border.any():
        circles = fit_circles_robust(points[on_border], valid[on_border])
        for name in ("centers", "axes", "angles", "residual", "inliers", "ok"):
            getattr(fit, name)[on_border] = getattr(circles, name)
    return fit


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
    x, y, w, h = instances.boxes.T
    on_border = (x <= 0) | (y <= 0) | (x + w >= width) | (y + h >= height)
    centers = instances.centroids.copy()
    axes = instances.mask_axes.copy()
    angles = instances.mask_angles.copy()
    residual = np.full(n, np.nan)
    refined = np.zeros(n, dtype=bool)

    if refine:
        radius = np.sqrt(axes[:, 0] * axes[:, 1]) / 2
        outline, fit = _measure(image, prob, threshold, instances, centers, axes, angles, on_border, RAYS)
        # The model's subpixel outline replaces the mask moments where it is plausible...
        plausible = _agrees(outline, centers, axes, shift_px=0.5 * radius + 2.0, radius_ratio=(0.5, 1.6))
        centers[plausible] = outline.centers[plausible]
        axes[plausible] = outline.axes[plausible]
        angles[plausible] = outline.angles[plausible]
        residual[plausible] = outline.residual[plausible]
        if fit is not None:
            # ...and the image edge replaces the outline where the two agree: the edge measures the
            # hole, the model says which edge is the hole's (not a chamfer, thread or drawing line).
            diameter = np.sqrt(np.abs(axes[:, 0] * axes[:, 1]))
            shift = np.linalg.norm(fit.centers - centers, axis=1)
            # A crisp edge (points on a perfect ellipse) is trusted a little further from the outline.
            shift_limit = np.where(fit.residual <= CRISP_RESIDUAL_PX, CRISP_SHIFT_PX, EDGE_SHIFT_PX)
            shift_limit = np.maximum(shift_limit, EDGE_SHIFT_FRACTION * diameter)
            center_ok = plausible & fit.ok & np.isfinite(shift) & (shift <= shift_limit)
            # Size from the edge only where it also agrees in size: a drawing's outline stroke, a
            # chamfer or a thread ring moves the edge outward on every side (the center stays put).
            fit_diameter = np.sqrt(np.abs(fit.axes[:, 0] * fit.axes[:, 1]))
            size_ok = center_ok & (np.abs(fit_diameter - diameter)
                                   <= np.maximum(EDGE_DIAMETER_PX, EDGE_DIAMETER_FRACTION * diameter))
            centers[center_ok] = fit.centers[center_ok]
            axes[size_ok] = fit.axes[size_ok]
            angles[size_ok] = fit.angles[size_ok]
            residual[center_ok] = fit.residual[center_ok]
            refined[center_ok] = True
        # A fitted outline that leaves the image also means the hole is cut by the border.
        half_major = axes[:, 0] / 2
        on_border |= ((centers[:, 0] - half_major < -0.5) | (centers[:, 1] - half_major < -0.5)
                      | (centers[:, 0] + half_major > width - 0.5) | (centers[:, 1] + half_major > height - 0.5))

    diameters = np.sqrt(axes[:, 0] * axes[:, 1])
    keep = _not_nested(centers, diameters)
    if shape_filter:
        # The measured outline too must be hole-like (a sliver can hide in a plausible blob).
        circularity = np.divide(axes[:, 1], axes[:, 0], out=np.zeros(len(axes)), where=axes[:, 0] > 0)
        keep &= on_border | (circularity >= MIN_ASPECT)
    if min_diameter_px > 0:
        keep &= diameters >= min_diameter_px
    holes = Holes(centers=centers[keep], axes=axes[keep], angles=angles[keep], scores=instances.scores[keep],
                  fit_residual=residual[keep], on_border=on_border[keep], refined=refined[keep])
    return holes.numbered()


def warm_up_extraction() -> float:
    """Run extraction once on a small made-up frame so that its compiled kernels (numba, cached on disk
    after the first run) are ready before the first real frame. Returns the seconds it took.

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
