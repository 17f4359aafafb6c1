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


def _ray_samples(centers: np.ndarray, expected: np.ndarray, offsets: np.ndarray, angles: np.ndarray,
                 width: int, height: int):
    """Sample positions along every ray: radii (N, K, S), float32 maps for cv2.remap (N * K, S) and
    which samples lie inside the image ((N, K, S) bool, or None when all of them do).

    The samples of one ray lie on a segment, and the image is convex: a ray is inside when both its
    ends are. Only frames with rays that leave the image pay for the per-sample test.
    """
    n, k = expected.shape
    radii = expected[..., None] + offsets                                         # (N, K, S)
    if not expected.min() + offsets[0] >= 0:
        radii *= radii > 0            # max(r, 0) (but a -0.0 for a negative r), at a third of its cost
    cos, sin = np.cos(angles)[None, :, None], np.sin(angles)[None, :, None]
    xs = centers[:, 0, None, None] + radii * cos
    ys = centers[:, 1, None, None] + radii * sin
    ends_x, ends_y = xs[..., ::xs.shape[2] - 1], ys[..., ::ys.shape[2] - 1]
    if ((ends_x >= 0) & (ends_x <= width - 1) & (ends_y >= 0) & (ends_y <= height - 1)).all():
        inside = None
    else:
        inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    return radii, xs.reshape(n * k, -1).astype(np.float32), ys.reshape(n * k, -1).astype(np.float32), inside


_NO_CANDIDATE = np.float32(1 << 22)   # larger than any key of _nearest_to_centre, exact in float32


def _nearest_to_centre(candidate: np.ndarray, distance_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ray (N, K, S), the sample index of the candidate with the smallest ``distance_code``
    (non-negative integers, first index among ties, like argmin) and whether there is one.

    One float32 key per sample (code * 128 + index: exact integers) and OpenCV's row minimum replace
    ``np.where`` + ``argmin`` over the short last axis, which numpy does slowly.
    """
    n, k, samples = candidate.shape
    key = (distance_code * 128 + np.arange(samples)).astype(np.float32)      # (S,)
    keys = key + (~candidate).astype(np.float32) * _NO_CANDIDATE            # (N, K, S)
    best = cv2.reduce(keys.reshape(n * k, samples), 1, cv2.REDUCE_MIN).reshape(n, k)
    found = best < _NO_CANDIDATE
    index = np.where(found, best % 128, 0).astype(np.int64)
    return index, found


def _median_rows(values: np.ndarray) -> np.ndarray:
    """Median of each row of (N, K) over its finite entries (NaN for a row without any): np.nanmedian
    with infinities treated as missing too, at a fraction of its cost (a sort and two gathers)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    ordered = np.sort(np.where(finite, values, np.inf), axis=1)
    rows = np.arange(len(values))
    low = ordered[rows, np.maximum((count - 1) // 2, 0)]
    high = ordered[rows, np.maximum(count // 2, 0)]
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (low + high) / 2, np.nan).astype(values.dtype)


def radial_edge_points(image: np.ndarray, centers: np.ndarray, expected_radii: np.ndarray,
                       half_widths: np.ndarray, angles: np.ndarray, *, labels: np.ndarray | None = None,
                       own_labels: np.ndarray | None = None, polarity: np.ndarray | None = None,
                       curvature_correction: bool = True) -> EdgePoints:
    """Edge points for N holes along K rays each.

    image: (H, W) or (H, W, 3) uint8/float; centers: (N, 2); expected_radii: (N, K) or (N,) px;
    half_widths: (N,) search half-width around the expected radius, px; angles: (K,) radians;
    labels/own_labels: optional instance label map and each hole's label: an edge point that lands on
    another hole's pixels is dropped; polarity: (N,) or None to measure it.

    Masks are kept as small as they can be ((N, 1, S) for a hole's search window when every ray lies
    inside the image) and row reductions go through OpenCV or a matrix product: with ~250 000
    samples for 50 holes, numpy's ``where`` and short-axis reductions cost more than the arithmetic.
    """
    n, k = len(centers), len(angles)
    if n == 0:
        return EdgePoints(np.zeros((0, k, 2)), np.zeros((0, k), bool), np.zeros(0))
    height, width = image.shape[:2]
    expected = np.broadcast_to(np.asarray(expected_radii, dtype=np.float64).reshape(n, -1), (n, k))
    half_widths = np.asarray(half_widths, dtype=np.float64)
    # Enough samples for the widest search window plus the centroid window around a peak at its end.
    half = min(HALF_SAMPLES, int(np.ceil(float(np.max(half_widths)) / STEP_PX)) + CENTROID_HALF_SAMPLES + 2)
    samples = 2 * half + 1
    offsets = (np.arange(samples) - half) * STEP_PX                                # (S,)
    radii, map_x, map_y, inside = _ray_samples(centers, expected, offsets, angles, width, height)
    in_window = np.abs(offsets)[None, None, :] <= half_widths[:, None, None] + 1e-9  # (N, 1, S)
    sampled = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if sampled.ndim == 3:
        profile = sampled.astype(np.float32) @ BGR_TO_GREY
    else:
        profile = sampled.astype(np.float32)
    profile = profile.reshape(n, k, samples)
    usable = in_window if inside is None else inside & in_window

    if polarity is None:
        # Mean grey inside vs outside the expected edge on each ray; the median over rays decides.
        inner = _masked_mean(profile[..., :half - 1], usable[..., :half - 1])
        outer = _masked_mean(profile[..., half + 2:], usable[..., half + 2:])
        difference = _median_rows(outer - inner)
        polarity = np.where(np.nan_to_num(difference) >= 0, 1.0, -1.0)
    else:
        polarity = np.asarray(polarity, dtype=np.float64)

    # Signed derivative along the ray (grey levels per px), central difference over 1 px; the two end
    # samples have none (0 here, and never usable).
    grad = np.zeros(profile.shape, dtype=np.float32)
    np.multiply(profile[..., 2:] - profile[..., :-2], (polarity / (2 * STEP_PX)).astype(np.float32)[:, None, None],
                out=grad[..., 1:-1])
    # The peak must lie in the search window; its centroid may use the samples around it.
    ends = np.ones(samples, dtype=bool)
    ends[0] = ends[-1] = False
    if inside is None:
        grad_inside = ends[None, None, :]
    else:
        grad_inside = inside & ends
        grad_inside[..., 1:-1] &= inside[..., 2:] & inside[..., :-2]
    grad_ok = grad_inside & in_window
    # -inf where the gradient may not peak; a row maximum over what is left.
    g = grad + np.where(grad_ok, np.float32(0), np.float32(-np.inf))
    ray_max = cv2.reduce(g.reshape(n * k, samples), 1, cv2.REDUCE_MAX).reshape(n, k)       # (N, K)
    hole_level = np.nan_to_num(_median_rows(ray_max), nan=0.0)                             # (N,)
    floor = np.maximum(np.float32(0.35) * ray_max, np.float32(0.3) * hole_level[:, None])   # (N, K)
    # A peak: above both neighbours (>= the outer one) and the floor; not within 2 samples of an end.
    # (floor is finite, so a peak's gradient is too.)
    peak = np.zeros(g.shape, dtype=bool)
    middle = g[..., 1:-1]
    peak[..., 1:-1] = (middle > g[..., :-2]) & (middle >= g[..., 2:]) & (middle > floor[..., None])
    peak[..., :2] = False
    peak[..., -2:] = False
    index, found = _nearest_to_centre(peak, np.abs(np.arange(samples) - half))

    position, sigma2 = _gradient_centroid(grad, grad_inside, index)
    found &= np.isfinite(position)
    position = np.where(np.isfinite(position), position, index)
    rounded = np.rint(position)
    at = np.clip(rounded, 0, samples - 1).astype(np.int64)
    r_edge = np.maximum(expected + offsets[at], 0.0) + (position - rounded) * STEP_PX
    if curvature_correction:
        blur2 = np.clip(np.nan_to_num(sigma2 - PROFILE_VARIANCE_PX2, nan=0.0), 0.0, 9.0)
        r_edge = r_edge + blur2 / (2.0 * np.maximum(r_edge, 1.0))
    cos, sin = np.cos(angles), np.sin(angles)
    points = np.stack([centers[:, 0, None] + r_edge * cos[None, :], centers[:, 1, None] + r_edge * sin[None, :]], axis=2)
    valid = found & np.isfinite(r_edge) & (r_edge > 0.5)
    if labels is not None and own_labels is not None:
        col = np.clip(np.rint(points[..., 0]).astype(np.int64), 0, width - 1)
        row = np.clip(np.rint(points[..., 1]).astype(np.int64), 0, height - 1)
        hit = labels[row, col]
        valid &= (hit == 0) | (hit == own_labels[:, None])
    return EdgePoints(points=points, valid=valid, polarity=polarity)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of (N, K, S) ``values`` over the last axis where ``mask`` ((N, K, S) or (N, 1, S)) is set;
    NaN where no sample is. A hole-wide mask is a matrix product (one small gemv per hole)."""
    weights = mask.astype(np.float32)
    if mask.shape[1] == 1:
        total = (values @ weights[:, 0, :, None])[..., 0]
        count = np.broadcast_to(weights.sum(axis=2), total.shape)
    else:
        total = (values * weights).sum(axis=2)
        count = weights.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


# Weighted sums of 1, offset and offset^2 over the centroid window, as one matrix product.
_CENTROID_OFFSETS = np.arange(-CENTROID_HALF_SAMPLES, CENTROID_HALF_SAMPLES + 1)
_CENTROID_POWERS = np.stack([np.ones(len(_CENTROID_OFFSETS)), _CENTROID_OFFSETS, _CENTROID_OFFSETS ** 2], axis=1)


def _gradient_centroid(grad: np.ndarray, grad_ok: np.ndarray, index: np.ndarray):
    """Center of mass of the gradient peak around ``index`` (in samples) and its variance (px^2).

    The centroid of the whole peak, unlike a 3-sample interpolation of its top, does not depend on
    where the edge falls between pixels: interpolation moves gradient mass around but keeps its sum.
    The window is re-centred once on the first estimate. The positive, usable gradient is laid out
    once with CENTROID_HALF_SAMPLES zeros on each side of every ray, so each window is a row of a
    sliding-window view (no bounds masks, no index arrays).
    """
    n, k, samples = grad.shape
    pad = CENTROID_HALF_SAMPLES
    weights = np.empty((n * k, samples + 2 * pad), dtype=np.float32)
    weights[:, :pad] = 0
    weights[:, pad + samples:] = 0
    np.multiply(grad, grad_ok & (grad > 0), out=weights.reshape(n, k, samples + 2 * pad)[..., pad:pad + samples])
    # windows[i, c] is ray i's window centred on sample c (a strided view, nothing copied).
    windows = np.lib.stride_tricks.sliding_window_view(weights, 2 * pad + 1, axis=1)        # (N*K, S, 13)
    ray = np.arange(n * k)
    position = index.reshape(-1).astype(np.float64)
    variance = np.full(n * k, np.nan)
    for _ in range(2):
        centre = np.clip(np.rint(np.nan_to_num(position, nan=0.0)).astype(np.int64), 0, samples - 1)
        window = windows[ray, centre].astype(np.float64)                                     # (N*K, 13)
        total, first, second = (window @ _CENTROID_POWERS).T
        with np.errstate(all="ignore"):
            mean = first / total
            variance = (second / total - mean * mean) * STEP_PX ** 2
        position = np.where((total > 0) & np.isfinite(position), centre + np.nan_to_num(mean), np.nan)
    return position.reshape(n, k), variance.reshape(n, k)


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
    half_widths = np.asarray(half_widths, dtype=np.float64)
    half = min(HALF_SAMPLES, int(np.ceil(float(np.max(half_widths)) / OUTLINE_STEP_PX)) + 1)
    samples = 2 * half + 1
    offsets = (np.arange(samples) - half) * OUTLINE_STEP_PX
    radii, map_x, map_y, inside = _ray_samples(centers, expected, offsets, angles, width, height)
    in_window = np.abs(offsets)[None, None, :] <= half_widths[:, None, None] + 1e-9
    p = cv2.remap(np.ascontiguousarray(prob, dtype=np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE).reshape(n, k, samples)
    usable = in_window if inside is None else inside & in_window
    above = p >= threshold
    crossing = above[..., :-1] & ~above[..., 1:] & usable[..., :-1] & usable[..., 1:]
    # Distance of the crossing (between samples s and s + 1) from the centre sample, in half samples.
    index, found = _nearest_to_centre(crossing, np.abs(2 * np.arange(samples - 1) + 1 - 2 * half))
    p0 = np.take_along_axis(p, index[..., None], axis=2)[..., 0]
    p1 = np.take_along_axis(p, index[..., None] + 1, axis=2)[..., 0]
    with np.errstate(all="ignore"):
        fraction = np.clip(np.nan_to_num((p0 - threshold) / (p0 - p1)), 0.0, 1.0)
    r = np.take_along_axis(radii, index[..., None], axis=2)[..., 0] + fraction * OUTLINE_STEP_PX
    cos, sin = np.cos(angles), np.sin(angles)
    points = np.stack([centers[:, 0, None] + r * cos[None, :], centers[:, 1, None] + r * sin[None, :]], axis=2)
    return points, found & (r > 0.5)
