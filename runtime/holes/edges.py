"""Subpixel points on hole outlines along radial rays: image edges, and the model's outline.

Image edges: for every hole, rays leave a center estimate at evenly spaced angles; the image is
sampled along each ray (bilinear, 0.5 px steps) around the expected edge radius and differentiated.
The gradient peak of the hole's polarity (dark-to-bright outward for a dark hole, the reverse for a
bright one) nearest the expected radius is chosen (not the strongest one: a chamfer or thread ring
is not the wall), and located by the centroid of the whole peak (+-3 px). Unlike a 3-sample
interpolation of the peak's top, the centroid does not depend on where the edge falls between
pixels: interpolation moves gradient mass around but keeps its sum.

A blurred circular edge's gradient peak sits inside the true edge by about sigma^2 / (2 r) (sigma:
the blur, r: the radius); the peak's measured width gives sigma, and the bias is removed.

The model's outline: the threshold crossing of the probability map along the same kind of rays.

All holes are processed together in a handful of vectorised calls.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np

STEP_PX = 0.5          # sampling step along a ray
HALF_SAMPLES = 32      # at most this many samples on each side of the expected radius
OUTLINE_STEP_PX = 1.0  # the probability map is smooth: its threshold crossing needs no finer steps
CENTROID_HALF_SAMPLES = 6  # the gradient peak's centroid is taken over +-3 px
# Grey conversion weights for BGR (ITU-R BT.601, as OpenCV's COLOR_BGR2GRAY).
BGR_TO_GREY = np.array([0.114, 0.587, 0.299], dtype=np.float32)
# Variance the sampling and differencing add along the ray (box of 1 px + bilinear), px^2; it is not
# part of the 2D blur that causes the curvature bias.
PROFILE_VARIANCE_PX2 = 1.0 / 12.0


@dataclass
class EdgePoints:
    points: np.ndarray      # (N, K, 2) u, v px
    valid: np.ndarray       # (N, K) bool
    polarity: np.ndarray    # (N,) +1: dark hole on bright surface, -1: bright hole on dark surface


def ray_angles(count: int) -> np.ndarray:
    return (np.arange(count) + 0.5) * (2.0 * np.pi / count)


def radial_edge_points(image: np.ndarray, centers: np.ndarray, expected_radii: np.ndarray,
                       half_widths: np.ndarray, angles: np.ndarray, *, labels: np.ndarray | None = None,
                       own_labels: np.ndarray | None = None, polarity: np.ndarray | None = None,
                       curvature_correction: bool = True) -> EdgePoints:
    """Edge points for N holes along K rays each.

    image: (H, W) or (H, W, 3) uint8/float; centers: (N, 2); expected_radii: (N, K) or (N,) px;
    half_widths: (N,) search half-width around the expected radius, px; angles: (K,) radians;
    labels/own_labels: optional instance label map and each hole's label: an edge point that lands on
    another hole's pixels is dropped; polarity: (N,) or None to measure it.
    """
    n, k = len(centers), len(angles)
    if n == 0:
        return EdgePoints(np.zeros((0, k, 2)), np.zeros((0, k), bool), np.zeros(0))
    height, width = image.shape[:2]
    expected = np.broadcast_to(np.asarray(expected_radii, dtype=np.float64).reshape(n, -1), (n, k))
    # Enough samples for the widest search window plus the centroid window around a peak at its end.
    half = min(HALF_SAMPLES, int(np.ceil(float(np.max(half_widths)) / STEP_PX)) + CENTROID_HALF_SAMPLES + 2)
    offsets = (np.arange(2 * half + 1) - half) * STEP_PX                           # (S,)
    radii = np.maximum(expected[..., None] + offsets, 0.0)                        # (N, K, S)
    cos, sin = np.cos(angles), np.sin(angles)
    xs = centers[:, 0, None, None] + radii * cos[None, :, None]
    ys = centers[:, 1, None, None] + radii * sin[None, :, None]
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    in_window = np.abs(offsets)[None, None, :] <= half_widths[:, None, None] + 1e-9
    samples = cv2.remap(image, xs.reshape(n * k, -1).astype(np.float32), ys.reshape(n * k, -1).astype(np.float32),
                        interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if samples.ndim == 3:
        profile = samples.astype(np.float32) @ BGR_TO_GREY
    else:
        profile = samples.astype(np.float32)
    profile = profile.reshape(n, k, -1)
    usable = inside & in_window

    if polarity is None:
        centre = half
        inner = np.where(usable[..., :centre - 1], profile[..., :centre - 1], np.nan)
        outer = np.where(usable[..., centre + 2:], profile[..., centre + 2:], np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rays entirely outside the image
            difference = np.nanmedian(np.nanmean(outer, axis=2) - np.nanmean(inner, axis=2), axis=1)
        polarity = np.where(np.nan_to_num(difference) >= 0, 1.0, -1.0)
    else:
        polarity = np.asarray(polarity, dtype=np.float64)

    # Signed derivative along the ray (grey levels per px), central difference over 1 px.
    grad = np.full(profile.shape, np.nan, dtype=np.float32)
    grad[..., 1:-1] = (profile[..., 2:] - profile[..., :-2]) / (2 * STEP_PX)
    grad *= polarity[:, None, None].astype(np.float32)
    # The peak must lie in the search window; its centroid may use the samples around it.
    grad_inside = inside.copy()
    grad_inside[..., 0] = grad_inside[..., -1] = False
    grad_inside[..., 1:-1] &= inside[..., 2:] & inside[..., :-2]
    grad_ok = grad_inside & in_window
    g = np.where(grad_ok, grad, -np.inf)

    ray_max = g.max(axis=2)                                                       # (N, K)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hole_level = np.nanmedian(np.where(np.isfinite(ray_max), ray_max, np.nan), axis=1)  # (N,)
    hole_level = np.nan_to_num(hole_level, nan=0.0)
    floor = np.maximum(0.35 * ray_max, 0.3 * hole_level[:, None])                  # (N, K)
    peak = np.zeros(g.shape, dtype=bool)
    peak[..., 1:-1] = (g[..., 1:-1] > g[..., :-2]) & (g[..., 1:-1] >= g[..., 2:]) & (g[..., 1:-1] > floor[..., None])
    peak &= np.isfinite(g)
    peak[..., :2] = False
    peak[..., -2:] = False
    distance = np.where(peak, np.abs(np.arange(g.shape[2]) - half), np.inf)
    index = np.argmin(distance, axis=2)                                           # (N, K)
    found = np.isfinite(np.take_along_axis(distance, index[..., None], axis=2)[..., 0])

    position, sigma2 = _gradient_centroid(grad, grad_inside, index)
    found &= np.isfinite(position)
    position = np.where(np.isfinite(position), position, index)
    r_edge = np.take_along_axis(radii, np.clip(np.rint(position), 0, g.shape[2] - 1).astype(np.int64)[..., None],
                                axis=2)[..., 0] + (position - np.rint(position)) * STEP_PX
    if curvature_correction:
        blur2 = np.clip(np.nan_to_num(sigma2 - PROFILE_VARIANCE_PX2, nan=0.0), 0.0, 9.0)
        r_edge = r_edge + blur2 / (2.0 * np.maximum(r_edge, 1.0))
    points = np.stack([centers[:, 0, None] + r_edge * cos[None, :], centers[:, 1, None] + r_edge * sin[None, :]], axis=2)
    valid = found & np.isfinite(r_edge) & (r_edge > 0.5)
    if labels is not None and own_labels is not None:
        col = np.clip(np.rint(points[..., 0]).astype(np.int64), 0, width - 1)
        row = np.clip(np.rint(points[..., 1]).astype(np.int64), 0, height - 1)
        hit = labels[row, col]
        valid &= (hit == 0) | (hit == own_labels[:, None])
    return EdgePoints(points=points, valid=valid, polarity=polarity)


def _gradient_centroid(grad: np.ndarray, grad_ok: np.ndarray, index: np.ndarray):
    """Center of mass of the gradient peak around ``index`` (in samples) and its variance (px^2).

    The centroid of the whole peak, unlike a 3-sample interpolation of its top, does not depend on
    where the edge falls between pixels: interpolation moves gradient mass around but keeps its sum.
    The window is re-centred once on the first estimate.
    """
    samples = grad.shape[2]
    offsets = np.arange(-CENTROID_HALF_SAMPLES, CENTROID_HALF_SAMPLES + 1)
    position = index.astype(np.float64)
    variance = np.full(index.shape, np.nan)
    for _ in range(2):
        centre = np.clip(np.rint(np.nan_to_num(position, nan=0.0)).astype(np.int64), 0, samples - 1)
        at = centre[..., None] + offsets
        inside = (at >= 0) & (at < samples)
        at = np.clip(at, 0, samples - 1)
        weight = np.take_along_axis(grad, at, axis=2).astype(np.float64)
        ok = np.take_along_axis(grad_ok, at, axis=2) & inside
        weight = np.where(ok & (weight > 0), weight, 0.0)
        total = weight.sum(axis=2)
        with np.errstate(all="ignore"):
            mean = (weight * offsets).sum(axis=2) / total
            variance = (weight * (offsets - mean[..., None]) ** 2).sum(axis=2) / total * STEP_PX ** 2
        position = np.where((total > 0) & np.isfinite(position), centre + np.nan_to_num(mean), np.nan)
    return position, variance


def probability_outline_points(prob: np.ndarray, threshold: float, centers: np.ndarray, expected_radii: np.ndarray,
                               half_widths: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each ray leaves the hole according to the model: the ``threshold`` crossing of the
    probability map nearest the expected radius, linearly interpolated. Returns points (N, K, 2) and
    a validity mask (N, K); a ray that leaves the image before crossing is invalid.
    """
    n, k = len(centers), len(angles)
    if n == 0:
        return np.zeros((0, k, 2)), np.zeros((0, k), bool)
    height, width = prob.shape
    expected = np.broadcast_to(np.asarray(expected_radii, dtype=np.float64).reshape(n, -1), (n, k))
    half = min(HALF_SAMPLES, int(np.ceil(float(np.max(half_widths)) / OUTLINE_STEP_PX)) + 1)
    offsets = (np.arange(2 * half + 1) - half) * OUTLINE_STEP_PX
    radii = np.maximum(expected[..., None] + offsets, 0.0)
    cos, sin = np.cos(angles), np.sin(angles)
    xs = centers[:, 0, None, None] + radii * cos[None, :, None]
    ys = centers[:, 1, None, None] + radii * sin[None, :, None]
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    in_window = np.abs(offsets)[None, None, :] <= half_widths[:, None, None] + 1e-9
    p = cv2.remap(np.ascontiguousarray(prob, dtype=np.float32), xs.reshape(n * k, -1).astype(np.float32),
                  ys.reshape(n * k, -1).astype(np.float32), interpolation=cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE).reshape(n, k, -1)
    usable = inside & in_window
    crossing = (p[..., :-1] >= threshold) & (p[..., 1:] < threshold) & usable[..., :-1] & usable[..., 1:]
    distance = np.where(crossing, np.abs(np.arange(p.shape[2] - 1) + 0.5 - half), np.inf)
    index = np.argmin(distance, axis=2)
    found = np.isfinite(np.take_along_axis(distance, index[..., None], axis=2)[..., 0])
    p0 = np.take_along_axis(p, index[..., None], axis=2)[..., 0]
    p1 = np.take_along_axis(p, index[..., None] + 1, axis=2)[..., 0]
    with np.errstate(all="ignore"):
        fraction = np.clip(np.nan_to_num((p0 - threshold) / (p0 - p1)), 0.0, 1.0)
    r = np.take_along_axis(radii, index[..., None], axis=2)[..., 0] + fraction * OUTLINE_STEP_PX
    points = np.stack([centers[:, 0, None] + r * cos[None, :], centers[:, 1, None] + r * sin[None, :]], axis=2)
    return points, found & (r > 0.5)
