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

Both are numba kernels with a plain loop over holes and, within a hole, over its rays. A ray is
sampled only where its hole needs it: the search window (the hole's own half-width) first, then the
few samples the centroid of the chosen peak reaches beyond it; the outline search walks outward from
the expected radius and stops at the nearest crossing. Sampling is exact bilinear interpolation in
float64 (cv2.remap, used before, rounds positions to 1/32 px and 8/16-bit results to integers).

Speed, with the same values: a hole whose samples all lie inside the frame (most) is sampled without
bounds checks (`_sample_interior`), from a grey patch of its box converted once (8-bit BGR frames:
a small hole's rays read each pixel many times), and the next hole's pixels are prefetched while one
is measured (prefetch.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from holevision.runtime.holes.ellipse_fit import _kth_smallest
from holevision.runtime.holes.prefetch import prefetch_box

STEP_PX = 0.5          # sampling step along a ray
HALF_SAMPLES = 32      # at most this many samples on each side of the expected radius
OUTLINE_STEP_PX = 1.0  # the probability map is smooth: its threshold crossing needs no finer steps
OUTLINE_PREFETCH_PX = 4.0  # the outline search prefetches the map this far beyond the expected outline
CENTROID_HALF_SAMPLES = 6  # the gradient peak's centroid is taken over +-3 px
# Grey conversion weights for BGR (ITU-R BT.601, as OpenCV's COLOR_BGR2GRAY).
BGR_TO_GREY = np.array([0.114, 0.587, 0.299], dtype=np.float32)
# Variance the sampling and differencing add along the ray (box of 1 px + bilinear), px^2; it is not
# part of the 2D blur that causes the curvature bias.
PROFILE_VARIANCE_PX2 = 1.0 / 12.0
# Window tolerance: a sample at offset o from the expected radius is in a hole's search window when
# |o| <= half_width + WINDOW_SLACK_PX.
WINDOW_SLACK_PX = 1e-9
_MAX_SAMPLES = 2 * HALF_SAMPLES + 1
_ONE_CHANNEL_WEIGHTS = np.ones(1)   # a grey image (or probability map) is its own grey
_BGR_WEIGHTS = BGR_TO_GREY.astype(np.float64)
# weights[c] * v for every 8-bit value v (rows: channels)
_BGR_LUT = _BGR_WEIGHTS[:, None] * np.arange(256.0)[None, :]


@dataclass
class EdgePoints:
    points: np.ndarray      # (N, K, 2) u, v px
    valid: np.ndarray       # (N, K) bool
    polarity: np.ndarray    # (N,) +1: dark hole on bright surface, -1: bright hole on dark surface


def ray_angles(count: int) -> np.ndarray:
    return (np.arange(count) + 0.5) * (2.0 * np.pi / count)


@numba.njit(cache=True, nogil=True)
def _sample_rays(image, ox, oy, width, height, weights, lut, cx, cy, cos, sin, expected, half, step, lo, hi, first,
                 last, profile, inside, interior):
    """Extends the sampled range ``first[j]``..``last[j]`` of every ray j of one hole to cover
    ``lo[j]``..``hi[j]`` (an empty range: first = last + 1). Sample s of ray j lies at radius
    max(expected[j] + (s - half) * step, 0) from (cx, cy) along (cos[j], sin[j]); its grey value goes
    to ``profile[j, s]`` and whether it lies in the image to ``inside[j, s]``.

    Bilinear interpolation of the image's C channels combined with ``weights`` (grey from BGR). For
    8-bit BGR images ``lut[c, v]`` holds weights[c] * v (a lookup instead of a conversion and a
    product, the same value), otherwise it is None. Samples outside the image are not read (no result
    depends on them); inside, the far neighbour of the last row / column is that row / column itself
    (as with a replicated border). One call serves all rays of a hole, and the per-sample code is
    written out here: numba passes arrays to a function that it does not inline with atomic reference
    counting, which would cost more than the samples. ``interior``: the caller knows that every sample
    and its far neighbours lie inside the image (the compiler then drops the per-sample checks).

    ``image`` (h, w, C) may be a patch of the frame: its pixel (0, 0) is the frame's (ox, oy), and
    ``width`` x ``height`` is the frame's size (bounds and border rule are the frame's); the patch
    must hold every pixel that the samples inside the frame read.
    """
    patch_width, channels = image.shape[1], image.shape[2]
    flat = image.reshape(-1)
    one, two = np.uint64(1), np.uint64(2)
    for j in range(len(first)):
        radius, dx, dy, taken_from, taken_to = expected[j], cos[j], sin[j], first[j], last[j]
        if taken_from <= lo[j] and hi[j] <= taken_to:
            continue                         # all taken already (most rays on a second centroid step)
        for s in range(lo[j], hi[j] + 1):
            if taken_from <= s <= taken_to:
                continue
            r = max(radius + (s - half) * step, 0.0)
            x, y = cx + r * dx, cy + r * dy
            ok = interior or ((x >= 0) and (x <= width - 1) and (y >= 0) and (y <= height - 1))
            inside[j, s] = ok
            if not ok:
                profile[j, s] = 0.0
                continue
            x0, y0 = int(x), int(y)          # floor: x, y >= 0
            fx, fy = x - x0, y - y0
            # Offsets of the four neighbours in the flat image (unsigned: no negative-index checks), and
            # their grey values.
            p00 = np.uint64(((y0 - oy) * patch_width + x0 - ox) * channels)
            p01 = p00 + np.uint64(channels if interior or x0 + 1 < width else 0)
            p10 = p00 + np.uint64(patch_width * channels if interior or y0 + 1 < height else 0)
            p11 = p10 + (p01 - p00)
            if lut is None:
                v00 = v01 = v10 = v11 = 0.0
                for c in range(channels):
                    k = np.uint64(c)
                    v00 += weights[c] * flat[p00 + k]
                    v01 += weights[c] * flat[p01 + k]
                    v10 += weights[c] * flat[p10 + k]
                    v11 += weights[c] * flat[p11 + k]
            else:
                v00 = lut[0, flat[p00]] + lut[1, flat[p00 + one]] + lut[2, flat[p00 + two]]
                v01 = lut[0, flat[p01]] + lut[1, flat[p01 + one]] + lut[2, flat[p01 + two]]
                v10 = lut[0, flat[p10]] + lut[1, flat[p10 + one]] + lut[2, flat[p10 + two]]
                v11 = lut[0, flat[p11]] + lut[1, flat[p11 + one]] + lut[2, flat[p11 + two]]
            top = v00 + fx * (v01 - v00)
            bottom = v10 + fx * (v11 - v10)
            profile[j, s] = top + fy * (bottom - top)
        first[j], last[j] = min(first[j], lo[j]), max(last[j], hi[j])


@numba.njit(cache=True, nogil=True)
def _sample_interior(flat, map_width, ox, oy, cx, cy, cos, sin, expected, half, step, lo, hi, first, last, profile,
                     inside):
    """_sample_rays for a one-channel map, row-major in ``flat`` with ``map_width`` columns (a grey patch
    of the frame whose pixel (0, 0) is the frame's (ox, oy), or the probability map itself), around an
    interior hole, every sample and its far neighbours inside it: the same samples and values, written
    for that case alone (no bounds, border rule or channel weights; unsigned offsets; a flat array,
    not a view made per call: each view costs atomic reference counting), which is most of the
    kernels' sampling."""
    patch_width = np.uint64(map_width)
    one = np.uint64(1)
    for j in range(len(first)):
        radius, dx, dy, taken_from, taken_to = expected[j], cos[j], sin[j], first[j], last[j]
        if taken_from <= lo[j] and hi[j] <= taken_to:
            continue
        for s in range(lo[j], hi[j] + 1):
            if taken_from <= s <= taken_to:
                continue
            r = max(radius + (s - half) * step, 0.0)
            x, y = cx + r * dx, cy + r * dy
            x0, y0 = int(x), int(y)
            fx, fy = x - x0, y - y0
            p00 = np.uint64(y0 - oy) * patch_width + np.uint64(x0 - ox)
            p10 = p00 + patch_width
            # float64 before any arithmetic, as _sample_rays forms them (the map may be float32)
            v00, v01 = np.float64(flat[p00]), np.float64(flat[p00 + one])
            v10, v11 = np.float64(flat[p10]), np.float64(flat[p10 + one])
            top = v00 + fx * (v01 - v00)
            bottom = v10 + fx * (v11 - v10)
            profile[j, s] = top + fy * (bottom - top)
            inside[j, s] = True
        first[j], last[j] = min(first[j], lo[j]), max(last[j], hi[j])


@numba.njit(cache=True, nogil=True)
def _grey_patch(image_flat, width, lut, x0, y0, x1, y1, buffer):
    """Grey values of the 8-bit BGR image's pixels x0..x1 - 1, y0..y1 - 1 (inside the image; its bytes
    row-major in ``image_flat``, ``width`` pixels a row), each the sum of ``lut`` entries exactly as
    _sample_rays forms it, row-major into ``buffer`` (grown when too small) -> buffer."""
    h, w = y1 - y0, x1 - x0
    if h * w > buffer.size:
        buffer = np.empty(2 * h * w)
    for r in range(h):
        source = ((y0 + r) * width + x0) * 3
        for c in range(w):
            buffer[r * w + c] = (lut[0, image_flat[source + 3 * c]] + lut[1, image_flat[source + 3 * c + 1]]
                                 + lut[2, image_flat[source + 3 * c + 2]])
    return buffer


@numba.njit(cache=True, nogil=True)
def _median_of_finite(values, scratch):
    """Median of the finite entries of ``values`` (mean of the two middle ones for an even count);
    NaN when there are none."""
    keys = scratch.view(np.int64)
    count = 0
    for v in values:
        if np.isfinite(v):
            keys[count] = _order_key(v)
            count += 1
    if count == 0:
        return np.nan
    # The middle one(s) by rank (ellipse_fit._kth_smallest; np.median copies and partitions, and cost
    # several times more on a hole's 64 rays).
    keys = keys[:count]
    high = _from_order_key(_kth_smallest(keys, count // 2))
    low = _from_order_key(_kth_smallest(keys, (count - 1) // 2)) if count % 2 == 0 else high
    return (low + high) / 2


@numba.njit(cache=True, nogil=True)
def _order_key(value):
    """An int64 that orders as the float ``value`` does (IEEE-754 bits, negatives' magnitude bits
    flipped so that larger magnitudes sort lower)."""
    bits = np.float64(value).view(np.int64)
    return bits ^ ((bits >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))


@numba.njit(cache=True, nogil=True)
def _from_order_key(key):
    """The float whose `_order_key` is ``key``."""
    return np.int64(key ^ ((key >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))).view(np.float64)


@numba.njit(cache=True, nogil=True)
def _reach(expected, half_width):
    """How far from its center the edge kernel samples a hole: the largest expected radius plus the
    samples beyond it (see _edge_kernel's ``half``)."""
    half = min(HALF_SAMPLES, int(np.ceil(max(half_width, 0.0) / STEP_PX)) + CENTROID_HALF_SAMPLES + 2)
    return np.max(expected) + half * STEP_PX


@numba.njit(cache=True, nogil=True)
def _edge_kernel(image, weights, lut, centers, expected, half_widths, cos, sin, polarity_given, polarity,
                 curvature_correction, points, valid):
    """radial_edge_points for N holes x K rays; fills points (N, K, 2), valid (N, K) and, unless
    given, polarity (N,)."""
    n, k = expected.shape
    height, width = image.shape[0], image.shape[1]
    profile = np.zeros((k, _MAX_SAMPLES))
    inside = np.zeros((k, _MAX_SAMPLES), dtype=np.bool_)
    grad = np.zeros((k, _MAX_SAMPLES))            # in the search window; -inf where there is none
    first = np.empty(k, dtype=np.int64)           # each ray's sampled range
    last = np.empty(k, dtype=np.int64)
    lo = np.empty(k, dtype=np.int64)              # the range a step needs
    hi = np.empty(k, dtype=np.int64)
    index = np.empty(k, dtype=np.int64)           # each ray's peak (-1: none)
    position = np.empty(k)                        # its centroid, samples
    variance = np.empty(k)                        # the centroid's variance, px^2
    centre = np.empty(k, dtype=np.int64)          # the sample a centroid window is centred on (-1: none)
    centred = np.empty(k, dtype=np.int64)         # the one the last centroid was taken around
    per_ray = np.empty(k)
    scratch = np.empty(k)
    pad = CENTROID_HALF_SAMPLES
    scale = 1.0 / (2 * STEP_PX)                   # central difference over 2 samples, per px
    grey_buffer = np.empty(0)                     # each hole's grey patch (8-bit BGR images, _grey_patch)
    image_flat = image.reshape(-1)
    x0 = y0 = patch_width = 0
    if n > 0:
        prefetch_box(image, centers[0, 0], centers[0, 1], _reach(expected[0], half_widths[0]))
    for i in range(n):
        cx, cy = centers[i, 0], centers[i, 1]
        if i + 1 < n:       # the next hole's pixels, fetched while this one is measured
            prefetch_box(image, centers[i + 1, 0], centers[i + 1, 1], _reach(expected[i + 1], half_widths[i + 1]))
        # Sample s of a ray lies at expected + (s - half) * STEP_PX: enough samples for the search
        # window plus the centroid window around a peak at its end.
        hw = max(half_widths[i], 0.0)
        half = min(HALF_SAMPLES, int(np.ceil(hw / STEP_PX)) + pad + 2)
        samples = 2 * half + 1
        w = min(half, int(np.floor((hw + WINDOW_SLACK_PX) / STEP_PX)))   # the window: |s - half| <= w
        # No sample reaches further than _reach from the center: a hole that far (and 1 px more) from
        # every side of the image, as most are, is sampled without per-sample bounds checks.
        reach = max(_reach(expected[i], half_widths[i]), 0.0)
        interior = cx - reach >= 1 and cy - reach >= 1 and cx + reach <= width - 2 and cy + reach <= height - 2
        # 1. The search window and one sample beyond it on each side (for its gradient).
        first[:], last[:] = half, half - 1
        lo[:], hi[:] = max(half - w - 1, 0), min(half + w + 1, samples - 1)
        use_patch = False
        if lut is not None:          # (written so: numba compiles this only for 8-bit BGR images)
            if interior:
                # Grey values of the hole's box, once: a small hole's rays read each pixel many times.
                use_patch = True
                x0, y0 = int(np.floor(cx - reach)), int(np.floor(cy - reach))
                x1 = int(np.floor(cx + reach)) + 2
                grey_buffer = _grey_patch(image_flat, width, lut, x0, y0, x1, int(np.floor(cy + reach)) + 2,
                                          grey_buffer)
                patch_width = x1 - x0
        if use_patch:
            _sample_interior(grey_buffer, patch_width, x0, y0, cx, cy, cos, sin, expected[i], half, STEP_PX, lo, hi,
                             first, last, profile, inside)
        else:
            _sample_rays(image, 0, 0, width, height, weights, lut, cx, cy, cos, sin, expected[i], half, STEP_PX, lo,
                         hi, first, last, profile, inside, interior)

        # 2. Polarity: mean grey inside vs outside the expected edge (at least 1 px off it) over the
        # window on each ray; the median over rays decides.
        if not polarity_given:
            for j in range(k):
                inner = outer = 0.0
                n_inner = n_outer = 0
                for s in range(half - w, half + w + 1):
                    if (interior or inside[j, s]) and s <= half - 2:
                        inner += profile[j, s]
                        n_inner += 1
                    elif (interior or inside[j, s]) and s >= half + 2:
                        outer += profile[j, s]
                        n_outer += 1
                per_ray[j] = outer / n_outer - inner / n_inner if n_inner > 0 and n_outer > 0 else np.nan
            difference = _median_of_finite(per_ray, scratch)
            polarity[i] = 1.0 if np.isnan(difference) or difference >= 0 else -1.0
        sign = polarity[i] * scale

        # 3. The signed gradient in the window (-inf at a ray end or where a sample or neighbour lies
        # outside the image, and just outside the window); its maximum on each ray and their median.
        for j in range(k):
            best = -np.inf
            for s in range(max(half - w - 1, 0), min(half + w + 1, samples - 1) + 1):
                grad[j, s] = -np.inf
                if abs(s - half) <= w and 0 < s < samples - 1 \
                        and (interior or inside[j, s - 1] & inside[j, s] & inside[j, s + 1]):
                    grad[j, s] = (profile[j, s + 1] - profile[j, s - 1]) * sign
                    best = max(best, grad[j, s])
            per_ray[j] = best
        hole_level = _median_of_finite(per_ray, scratch)
        if np.isnan(hole_level):
            hole_level = 0.0

        # 4. On each ray, the peak nearest the expected radius (the inner one of two equally near):
        # above the floor and above both neighbours (>= the outer one), not within 2 samples of a ray
        # end.
        for j in range(k):
            floor = max(0.35 * per_ray[j], 0.3 * hole_level)
            index[j] = -1
            for d in range(w + 1):
                for s in (half - d, half + d):
                    if index[j] < 0 and 2 <= s <= samples - 3 and grad[j, s] > floor \
                            and grad[j, s] > grad[j, s - 1] and grad[j, s] >= grad[j, s + 1]:
                        index[j] = s
                if index[j] >= 0:
                    break
            position[j] = index[j]
            variance[j] = np.nan
            centred[j] = -1

        # 5. The peak's centroid: the positive gradient over +-pad samples around it (at a ray end
        # or where a sample or neighbour lies outside the image there is none), the window re-centred
        # once on the first estimate (which changes nothing when it rounds to the same sample). The
        # samples a window needs beyond those taken are taken first.
        for _ in range(2):
            for j in range(k):
                lo[j], hi[j] = first[j], last[j]
                centre[j] = min(max(int(np.rint(position[j])), 0), samples - 1) if np.isfinite(position[j]) else -1
                if index[j] < 0 or centre[j] == centred[j]:
                    centre[j] = -1
                elif centre[j] >= 0:
                    lo[j], hi[j] = max(centre[j] - pad - 1, 0), min(centre[j] + pad + 1, samples - 1)
            if use_patch:
                _sample_interior(grey_buffer, patch_width, x0, y0, cx, cy, cos, sin, expected[i], half, STEP_PX, lo,
                                 hi, first, last, profile, inside)
            else:
                _sample_rays(image, 0, 0, width, height, weights, lut, cx, cy, cos, sin, expected[i], half, STEP_PX,
                             lo, hi, first, last, profile, inside, interior)
            for j in range(k):
                c = centre[j]
                if c < 0:
                    continue
                total = moment1 = moment2 = 0.0
                for t in range(max(c - pad, 1), min(c + pad, samples - 2) + 1):
                    weight = max((profile[j, t + 1] - profile[j, t - 1]) * sign, 0.0) \
                        * (interior or inside[j, t - 1] & inside[j, t] & inside[j, t + 1])
                    total += weight
                    moment1 += weight * (t - c)
                    moment2 += weight * (t - c) * (t - c)
                if total > 0:
                    mean = moment1 / total
                    variance[j] = (moment2 / total - mean * mean) * STEP_PX ** 2
                    position[j] = c + mean
                else:
                    position[j] = np.nan
                centred[j] = c

        # 6. The edge radius; the curvature bias from the peak's width (less what sampling adds).
        for j in range(k):
            found = index[j] >= 0 and np.isfinite(position[j])
            at = position[j] if found else float(index[j] if index[j] >= 0 else half)   # invalid: where looked
            rounded = np.rint(at)
            r = max(expected[i, j] + (rounded - half) * STEP_PX, 0.0) + (at - rounded) * STEP_PX
            if curvature_correction and found:
                blur2 = variance[j] - PROFILE_VARIANCE_PX2
                blur2 = min(max(blur2, 0.0), 9.0) if not np.isnan(blur2) else 0.0
                r += blur2 / (2.0 * max(r, 1.0))
            u, v = cx + r * cos[j], cy + r * sin[j]
            points[i, j, 0], points[i, j, 1] = u, v
            valid[i, j] = found and np.isfinite(r) and r > 0.5


def _ray_arguments(centers, expected_radii, half_widths, angles):
    """The kernels' ray arguments, checked and contiguous: centers (N, 2), expected radii (N, K),
    half-widths (N,) (not finite: 0) and angles (K,), all float64."""
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    angles = np.asarray(angles, dtype=np.float64).reshape(-1)
    n, k = len(centers), len(angles)
    if centers.shape != (n, 2):
        raise ValueError(f"centers must be (N, 2), got shape {centers.shape}")
    expected = np.asarray(expected_radii, dtype=np.float64).reshape(n, -1)
    expected = np.ascontiguousarray(np.broadcast_to(expected, (n, k)))
    half_widths = np.broadcast_to(np.asarray(half_widths, dtype=np.float64), (n,))
    half_widths = np.ascontiguousarray(np.where(np.isfinite(half_widths), half_widths, 0.0))
    return centers, expected, half_widths, angles


def edge_kernel_image(image: np.ndarray):
    """The image as the edge kernel takes it: (H, W, C) C-contiguous, the weights that make grey of
    its C channels, and for 8-bit BGR the lookup table of weighted values (else None)."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"image must be (H, W) grey or (H, W, 3) BGR, got shape {image.shape}")
    height, width = image.shape[:2]
    if image.ndim == 2 or image.shape[2] == 1:
        image, weights = image.reshape(height, width, 1), _ONE_CHANNEL_WEIGHTS
    else:
        weights = _BGR_WEIGHTS
    image = np.ascontiguousarray(image)
    lut = _BGR_LUT if image.dtype == np.uint8 and image.shape[2] == 3 else None
    return image, weights, lut


def radial_edge_points(image: np.ndarray, centers: np.ndarray, expected_radii: np.ndarray,
                       half_widths: np.ndarray, angles: np.ndarray, *, polarity: np.ndarray | None = None,
                       curvature_correction: bool = True) -> EdgePoints:
    """Edge points for N holes along K rays each.

    image: (H, W) or (H, W, 3) uint8/uint16/float; centers: (N, 2); expected_radii: (N, K) or (N,) px;
    half_widths: (N,) search half-width around the expected radius, px (not finite: 0); angles: (K,)
    radians; polarity: (N,) or None to measure it. (Points on another hole's pixels are the caller's
    to drop: `Instances.foreign`.)
    A ray's samples cover its hole's window (+- half-width) and, around the chosen peak, the
    centroid's reach (at most HALF_SAMPLES samples each side). Invalid points are finite but
    meaningless (a ray without an edge keeps its expected radius).
    """
    n, k = len(centers), len(angles)
    if n == 0:
        return EdgePoints(np.zeros((0, k, 2)), np.zeros((0, k), bool), np.zeros(0))
    image, weights, lut = edge_kernel_image(image)
    centers, expected, half_widths, angles = _ray_arguments(centers, expected_radii, half_widths, angles)
    polarity_given = polarity is not None
    polarity = (np.array(np.broadcast_to(np.asarray(polarity, dtype=np.float64), (n,))) if polarity_given
                else np.ones(n))
    points = np.empty((n, k, 2))
    valid = np.empty((n, k), dtype=bool)
    _edge_kernel(image, weights, lut, centers, expected, half_widths, np.cos(angles), np.sin(angles), polarity_given,
                 polarity, bool(curvature_correction), points, valid)
    return EdgePoints(points=points, valid=valid, polarity=polarity)


@numba.njit(cache=True, nogil=True)
def _outline_kernel(prob, threshold, centers, expected, half_widths, cos, sin, points, valid):
    """probability_outline_points for N holes x K rays; fills points (N, K, 2) and valid (N, K)."""
    n, k = expected.shape
    height, width = prob.shape[0], prob.shape[1]
    prob_flat = prob.reshape(-1)
    weights = np.ones(1)
    profile = np.zeros((k, _MAX_SAMPLES))
    inside = np.zeros((k, _MAX_SAMPLES), dtype=np.bool_)
    first = np.empty(k, dtype=np.int64)           # each ray's sampled range
    last = np.empty(k, dtype=np.int64)
    lo = np.empty(k, dtype=np.int64)              # the range a step needs
    hi = np.empty(k, dtype=np.int64)
    index = np.empty(k, dtype=np.int64)           # each ray's crossing, between samples index and index + 1
    # The map's pixels near each hole's expected outline (where most crossings are), fetched while the
    # hole before is searched.
    near = OUTLINE_PREFETCH_PX
    if n > 0:
        prefetch_box(prob, centers[0, 0], centers[0, 1], np.max(expected[0]) + near)
    for i in range(n):
        cx, cy = centers[i, 0], centers[i, 1]
        if i + 1 < n:
            prefetch_box(prob, centers[i + 1, 0], centers[i + 1, 1], np.max(expected[i + 1]) + near)
        # Sample s of a ray lies at expected + (s - half) * OUTLINE_STEP_PX.
        hw = max(half_widths[i], 0.0)
        half = min(HALF_SAMPLES, int(np.ceil(hw / OUTLINE_STEP_PX)) + 1)
        w = min(half, int(np.floor((hw + WINDOW_SLACK_PX) / OUTLINE_STEP_PX)))   # the window: |s - half| <= w
        # Samples lie within max(expected) + half steps of the center (see _edge_kernel's ``interior``).
        reach = max(np.max(expected[i]) + half * OUTLINE_STEP_PX, 0.0)
        interior = cx - reach >= 1 and cy - reach >= 1 and cx + reach <= width - 2 and cy + reach <= height - 2
        # A crossing: from at or above the threshold to below it between samples s and s + 1, both in
        # the window and in the image. Step d looks at the two at a distance of 2 d + 1 half samples
        # from the expected radius (the inner one first); a ray stops at its first crossing.
        first[:], last[:] = half, half - 1
        index[:] = -1
        searching = k
        for d in range(w):
            if searching == 0:
                break
            for j in range(k):
                lo[j], hi[j] = (half - 1 - d, half + d + 1) if index[j] < 0 else (first[j], last[j])
            if interior:
                _sample_interior(prob_flat, width, 0, 0, cx, cy, cos, sin, expected[i], half, OUTLINE_STEP_PX, lo,
                                 hi, first, last, profile, inside)
            else:
                _sample_rays(prob, 0, 0, width, height, weights, None, cx, cy, cos, sin, expected[i], half,
                             OUTLINE_STEP_PX, lo, hi, first, last, profile, inside, False)
            for j in range(k):
                for s in (half - 1 - d, half + d):
                    if index[j] < 0 and (interior or inside[j, s] and inside[j, s + 1]) and profile[j, s] >= threshold \
                            and not profile[j, s + 1] >= threshold:
                        index[j] = s
                        searching -= 1
        for j in range(k):
            # The crossing, linearly interpolated between its two samples; without one the point stays
            # at the expected radius (invalid).
            fraction = 0.0
            at = index[j] if index[j] >= 0 else half
            if index[j] >= 0:
                p0, p1 = profile[j, at], profile[j, at + 1]
                fraction = (p0 - threshold) / (p0 - p1)
                fraction = min(max(fraction, 0.0), 1.0) if not np.isnan(fraction) else 0.0
            r = max(expected[i, j] + (at - half) * OUTLINE_STEP_PX, 0.0) + fraction * OUTLINE_STEP_PX
            points[i, j, 0], points[i, j, 1] = cx + r * cos[j], cy + r * sin[j]
            valid[i, j] = index[j] >= 0 and r > 0.5


def probability_outline_points(prob: np.ndarray, threshold: float, centers: np.ndarray, expected_radii: np.ndarray,
                               half_widths: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each ray leaves the hole according to the model: the ``threshold`` crossing (from at or
    above to below, going outward) of the probability map nearest the expected radius, within
    +-half_widths, linearly interpolated. Returns points (N, K, 2) and a validity mask (N, K); a
    crossing needs both its samples inside the image (a ray that leaves the image before crossing is
    invalid). Invalid points are finite but meaningless (at the expected radius).
    """
    n, k = len(centers), len(angles)
    if n == 0:
        return np.zeros((0, k, 2)), np.zeros((0, k), bool)
    prob = np.asarray(prob)
    height, width = prob.shape
    prob = np.ascontiguousarray(prob).reshape(height, width, 1)
    centers, expected, half_widths, angles = _ray_arguments(centers, expected_radii, half_widths, angles)
    points = np.empty((n, k, 2))
    valid = np.empty((n, k), dtype=bool)
    _outline_kernel(prob, float(threshold), centers, expected, half_widths, np.cos(angles), np.sin(angles), points,
                    valid)
    return points, valid
