"""Probability map -> hole instances: threshold, connected components, split touching holes.

Pure computation on numpy arrays. A compiled (numba) kernel does the pixel work in one call per
frame: thresholding, labelling (coarse-to-fine on large frames), filling each region's gaps, its
moments, outline solidity and mean probability, the shape filter; it reproduces what OpenCV gave
before (cv2.connectedComponents' numbering, cv2.findContours/drawContours/moments/convexHull/mean).
OpenCV's distance transform still splits touching holes, which few regions need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numba
import numpy as np
from numba.typed import List

from holevision.runtime.holes.prefetch import prefetch_rect

# A component whose area is below this fraction of its convex hull is a candidate for splitting
# (two touching discs have solidity ~0.89; a rasterised disc ~0.95-1.0). A disc still needs two
# distance-transform peaks to be split, so a low-solidity single hole is not cut in two.
SPLIT_SOLIDITY = 0.95
# Shape plausibility: a hole's mask is a filled ellipse (or a ring around one). Regions thinner than
# MIN_ASPECT (minor / major; 0.35 is a circle seen 70 degrees off-axis) or less solid than MIN_SOLIDITY
# (outer contour area / convex hull area: arcs, streaks along part edges) are not holes.
MIN_ASPECT = 0.35
MIN_SOLIDITY = 0.75
# Frames at least this large are labelled coarse-to-fine (see _candidates), on a map max-pooled by
# COARSE_FACTOR (_coarse_any is written for 4).
COARSE_MIN_PIXELS = 512 * 512
COARSE_FACTOR = 4
# Distance-transform peaks must reach this fraction of the component's maximum to seed a hole.
SPLIT_PEAK_FRACTION = 0.6


@dataclass
class Instances:
    """Hole instances found in a probability map, one row per instance (label i+1 in ``labels``).

    Each instance's pixels are kept as a mask over its own box, all of them in one flat buffer
    (``mask_buffer``; instance i's (h, w) mask is ``mask_buffer[mask_offsets[i]:mask_offsets[i + 1]]``,
    row by row; ``masks`` gives them as arrays). The full-frame label map is built only when asked for
    (``labels``): a fresh (H, W) int32 map per frame cost more (page faults, zeroing) than everything
    that reads it, which is one lookup per edge point (`foreign`).
    """

    label_ids: np.ndarray     # (N,) each instance's value in ``labels``
    centroids: np.ndarray     # (N, 2) mask centroid (u, v), px
    areas: np.ndarray         # (N,) mask area, px
    boxes: np.ndarray         # (N, 4) x, y, w, h of the instance's bounding box
    scores: np.ndarray        # (N,) mean hole probability inside the instance
    mask_axes: np.ndarray     # (N, 2) full axes (major, minor) of the ellipse with the mask's second moments, px
    mask_angles: np.ndarray   # (N,) its major-axis angle, degrees from +u toward +v
    solidity: np.ndarray      # (N,) area inside the outer contour / area of its convex hull (1 = convex)
    mask_buffer: np.ndarray   # (sum of w * h,) bool: every instance's mask over its box, one after another
    mask_offsets: np.ndarray  # (N + 1,) int64: where each instance's mask starts in ``mask_buffer``
    shape: tuple              # (H, W) of the probability map

    def __len__(self) -> int:
        return len(self.areas)

    @property
    def masks(self) -> list:
        """N bool (h, w) masks (views into ``mask_buffer``), each over its row of ``boxes``."""
        return [self.mask_buffer[start:end].reshape(h, w) for start, end, w, h in
                zip(self.mask_offsets[:-1].tolist(), self.mask_offsets[1:].tolist(), self.boxes[:, 2].tolist(),
                    self.boxes[:, 3].tolist())]

    @property
    def labels(self) -> np.ndarray:
        """(H, W) int32 label map, 0 = background; where filled shapes overlap, the later instance's."""
        labels = np.zeros(self.shape, dtype=np.int32)
        for label, (x, y, w, h), mask in zip(self.label_ids, self.boxes, self.masks):
            labels[y:y + h, x:x + w][mask] = label
        return labels

    def foreign(self, points: np.ndarray) -> np.ndarray:
        """(N, K) bool: point k of instance n lands on another instance's pixels, i.e. the label map at
        the point's pixel (rounded, clipped to the frame) is neither 0 nor n's label."""
        result = np.zeros(points.shape[:2], dtype=bool)
        foreign_points(np.ascontiguousarray(points, dtype=np.float64), self.boxes, self.mask_buffer,
                       self.mask_offsets, self.shape[0], self.shape[1], result)
        return result


@numba.njit(cache=True, nogil=True)
def foreign_points(points, boxes, mask_buffer, mask_offsets, height, width, result):
    """Marks in ``result`` (N, K) the points (N, K, 2) of instance n that land on another instance's
    pixels: the label map at the point's pixel (rounded, clipped to the frame) is neither 0 nor n + 1.
    The label map shows the highest label among the instances covering a pixel. Only instances whose
    box meets the box of n's points are looked at (usually none but n)."""
    n, k = result.shape
    for i in range(n):
        c0, c1, r0, r1 = width, -1, height, -1          # the box of instance i's points
        for j in range(k):
            col = min(max(int(np.rint(points[i, j, 0])), 0), width - 1)
            row = min(max(int(np.rint(points[i, j, 1])), 0), height - 1)
            c0, c1, r0, r1 = min(c0, col), max(c1, col), min(r0, row), max(r1, row)
        for other in range(n):
            x, y, w, h = boxes[other, 0], boxes[other, 1], boxes[other, 2], boxes[other, 3]
            if other == i or not (c0 < x + w and c1 >= x and r0 < y + h and r1 >= y):
                continue
            for j in range(k):
                col = min(max(int(np.rint(points[i, j, 0])), 0), width - 1)
                row = min(max(int(np.rint(points[i, j, 1])), 0), height - 1)
                if x <= col < x + w and y <= row < y + h \
                        and mask_buffer[mask_offsets[other] + (row - y) * w + (col - x)]:
                    # The pixel shows ``other`` unless a higher label covers it too: i itself (a higher
                    # label than other) or a third instance (itself foreign to i either way).
                    result[i, j] |= other > i or not _covers(i, col, row, boxes, mask_buffer, mask_offsets)


@numba.njit(cache=True, nogil=True)
def _covers(index, col, row, boxes, mask_buffer, mask_offsets):
    x, y, w, h = boxes[index, 0], boxes[index, 1], boxes[index, 2], boxes[index, 3]
    return x <= col < x + w and y <= row < y + h and mask_buffer[mask_offsets[index] + (row - y) * w + (col - x)]


_MASK = numba.types.Array(numba.types.bool_, 2, "C")
_ROW = numba.types.UniTuple(numba.types.float64, 13)
# Columns of a candidate row (see _candidates).
_X, _Y, _W, _H, _AREA, _CX, _CY, _MU20, _MU11, _MU02, _SOLIDITY, _SCORE, _SPLIT = range(13)
# Chain codes as OpenCV numbers them: 0 = +x (east), then counterclockwise on screen (y down): NE, N, ...
_DX = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)
_DY = np.array([0, -1, -1, -1, 0, 1, 1, 1], dtype=np.int64)


def find_instances(prob_hole: np.ndarray, *, threshold: float = 0.5, min_area_px: float = 6.0,
                   split_touching: bool = True, low_threshold: float | None = None,
                   shape_filter: bool = False) -> Instances:
    """Threshold ``prob_hole`` (H, W) and return one instance per hole.

    Hysteresis: regions above ``low_threshold`` that reach ``threshold`` somewhere are one instance,
    so a hole the model marks as a broken ring (a thin drawn circle, a chamfer) is not several
    fragments. With ``shape_filter``, a region that cannot be a hole (thinner than MIN_ASPECT, less
    solid than MIN_SOLIDITY: a streak along a part's edge, an arc) falls back to its parts above
    ``threshold``, and those that cannot be holes either are dropped. Touching holes are split at
    distance-transform peaks (nearest-seed assignment) when the shape is not convex enough to be one.

    The compiled kernel (_candidates) finds and measures the candidates; only the split of touching
    holes (rare) runs here, in OpenCV.
    """
    height, width = prob_hole.shape
    hysteresis = low_threshold is not None and low_threshold < threshold
    # Compare as numpy compares the map with a Python float: in the map's own precision.
    high = _comparable(prob_hole, threshold)
    low = _comparable(prob_hole, low_threshold) if hysteresis else high
    table, flat, offsets = _candidates(prob_hole, low, high, hysteresis, shape_filter, split_touching,
                                       float(min_area_px), height * width >= COARSE_MIN_PIXELS)
    if table[:, _SPLIT].any():
        sizes = zip(offsets[:-1].tolist(), offsets[1:].tolist(), table[:, _W].astype(np.int64).tolist(),
                    table[:, _H].astype(np.int64).tolist())
        masks = [flat[start:end].reshape(h, w) for start, end, w, h in sizes]
        table, masks = _split_rows(prob_hole, table, masks, min_area_px)
        flat = np.concatenate([m.ravel() for m in masks]) if masks else np.zeros(0, dtype=bool)
        offsets = np.concatenate([[0], np.cumsum([m.size for m in masks], dtype=np.int64)]).astype(np.int64)
    n = len(table)
    centroids, areas, boxes, scores, mask_axes, mask_angles, solidity = _columns(table)
    return Instances(label_ids=np.arange(1, n + 1, dtype=np.int32), centroids=centroids, areas=areas, boxes=boxes,
                     scores=scores, mask_axes=mask_axes, mask_angles=mask_angles, solidity=solidity,
                     mask_buffer=flat, mask_offsets=offsets, shape=prob_hole.shape)


def _comparable(prob: np.ndarray, value: float):
    """``value`` in the type numpy compares ``prob`` with it in (``prob >= value``): a Python float
    takes the map's precision (float32(0.9) < 0.9, so this matters for pixels at the threshold)."""
    return np.result_type(prob.dtype, value).type(value)


def _split_rows(prob_hole, table, masks, min_area_px):
    """Rows flagged _SPLIT: try to split each at distance-transform peaks; an unsplit one stays as it
    is, the parts of a split one are measured with OpenCV (a part need not be one component)."""
    rows, kept = [], []
    for row, mask in zip(table, masks):
        pieces = _split_touching(mask) if row[_SPLIT] else [mask]
        if len(pieces) == 1:
            if row[_AREA] >= min_area_px and row[_AREA] > 0:
                rows.append(row)
                kept.append(mask)
            continue
        ox, oy = int(row[_X]), int(row[_Y])
        crop_prob = prob_hole[oy:oy + mask.shape[0], ox:ox + mask.shape[1]]
        for part in pieces:
            part_u8 = part.view(np.uint8)
            m = cv2.moments(part_u8, binaryImage=True)
            if m["m00"] < min_area_px or m["m00"] <= 0:
                continue
            bx, by, bw, bh = cv2.boundingRect(part_u8)
            rows.append(np.array([bx + ox, by + oy, bw, bh, m["m00"], m["m10"] / m["m00"] + ox,
                                  m["m01"] / m["m00"] + oy, m["mu20"], m["mu11"], m["mu02"],
                                  _part_solidity(part_u8), cv2.mean(crop_prob, mask=part_u8)[0], 0.0]))
            kept.append(part[by:by + bh, bx:bx + bw])
    return np.array(rows, dtype=np.float64).reshape(len(rows), 13), kept


def _split_touching(mask: np.ndarray) -> list[np.ndarray]:
    """Split one (filled) region into holes when its distance transform has several strong peaks.

    Each peak region seeds a hole; every pixel of the region goes to its nearest seed, which cuts
    two touching discs along the line between them. Only regions that fail _one_hole's quick tests
    come here.
    """
    padded = cv2.copyMakeBorder(mask.view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    seeds = (distance >= SPLIT_PEAK_FRACTION * distance.max()).astype(np.uint8)
    seed_count, _ = cv2.connectedComponents(seeds, connectivity=8)
    if seed_count <= 2:
        return [mask]
    _, nearest = cv2.distanceTransformWithLabels(1 - seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
    owners = np.unique(nearest[seeds > 0])
    return [p for p in (mask & (nearest == k) for k in owners) if p.any()]


def _part_solidity(part_u8: np.ndarray) -> float:
    """Solidity of a split part (which may be more than one component): that of its longest outer
    contour, measured by OpenCV."""
    contours, _ = cv2.findContours(part_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 0.0
    outline = max(contours, key=len)
    hull = cv2.contourArea(cv2.convexHull(outline))
    if hull <= 0:
        return 1.0  # one or two pixels, or a straight line: the aspect test decides
    return float(min(cv2.contourArea(outline) / hull, 1.0))


@numba.njit(cache=True, nogil=True)
def _columns(table):
    """The candidate table's columns as Instances keeps them: centroids (N, 2), areas, boxes (N, 4)
    int64, scores clipped to [0, 1], the full axes (N, 2: major, minor) and angles (N,) of the uniform
    ellipses with the masks' second moments, solidity."""
    n = len(table)
    centroids, areas, boxes = np.empty((n, 2)), np.empty(n), np.empty((n, 4), dtype=np.int64)
    scores, axes, angles, solidity = np.empty(n), np.empty((n, 2)), np.empty(n), np.empty(n)
    for i in range(n):
        centroids[i, 0], centroids[i, 1] = table[i, _CX], table[i, _CY]
        area = areas[i] = table[i, _AREA]
        for c in range(4):
            boxes[i, c] = np.int64(table[i, _X + c])
        scores[i] = min(max(table[i, _SCORE], 0.0), 1.0)
        solidity[i] = table[i, _SOLIDITY]
        # + 1/12: each pixel is a unit square, not a point.
        xx, xy, yy = table[i, _MU20] / area + 1 / 12, table[i, _MU11] / area, table[i, _MU02] / area + 1 / 12
        root = np.sqrt(((xx - yy) / 2) ** 2 + xy ** 2)
        lam_major = (xx + yy) / 2 + root
        lam_minor = max((xx + yy) / 2 - root, 0.0)
        # A uniform ellipse with semi-axis a has variance a^2 / 4 along that axis.
        axes[i, 0], axes[i, 1] = 4 * np.sqrt(lam_major), 4 * np.sqrt(lam_minor)
        angles[i] = np.degrees(0.5 * np.arctan2(2 * xy, xx - yy)) % 180.0
    return centroids, areas, boxes, scores, axes, angles, solidity


# --- compiled kernels -------------------------------------------------------------------------------
# Binary maps are 0/1 uint8 arrays whose width is padded with zeros to a multiple of 8, so that a row
# can be read as 64-bit words and empty stretches skipped 8 pixels at a time.


@numba.njit(cache=True, nogil=True)
def _candidates(prob, low, high, hysteresis, shape_filter, split_touching, min_area_px, coarse):
    """All candidate holes of ``prob``, in the order OpenCV's labelling listed them before.

    Returns (table (N, 13) float64, one row per candidate, columns _X.._SPLIT; a flat bool buffer of
    their filled masks, each (h, w) over its box; offsets (N + 1) of the masks in the buffer).

    Regions are the 8-connected components of ``prob >= low``. Small frames are labelled whole.
    Holes cover a small part of a large frame: its components are first found on a 4x max-pooled
    copy (_coarse_any), then labelled at full resolution inside each coarse component's box only. A
    full-resolution component always lies inside exactly one coarse component, which owns it (no
    duplicates where boxes overlap). Small frames drop regions below ``min_area_px`` pixels before
    they are filled, large ones after (as the two labellings did before).
    """
    height, width = prob.shape
    rows = List.empty_list(_ROW)
    masks = List.empty_list(_MASK)
    if coarse:
        f = COARSE_FACTOR
        coarse_map = _coarse_any(prob, low)
        coarse_runs, coarse_row_runs, coarse_roots, coarse_stats = _label(coarse_map)
        for k in range(len(coarse_roots)):
            x0, y0 = coarse_stats[k, 0] * f, coarse_stats[k, 1] * f
            x1 = min((coarse_stats[k, 0] + coarse_stats[k, 2]) * f, width)
            y1 = min((coarse_stats[k, 1] + coarse_stats[k, 3]) * f, height)
            if k + 1 < len(coarse_roots):    # the next window, fetched while this one is labelled
                prefetch_rect(prob, coarse_stats[k + 1, 0] * f, coarse_stats[k + 1, 1] * f,
                              (coarse_stats[k + 1, 0] + coarse_stats[k + 1, 2]) * f,
                              (coarse_stats[k + 1, 1] + coarse_stats[k + 1, 3]) * f)
            binary = _threshold(prob[y0:y1, x0:x1], low)
            runs, row_runs, roots, stats = _label(binary)
            for j in range(len(roots)):
                x, y, w, h, area, px, py = stats[j]
                # Any pixel of the component tells which coarse component owns it.
                if _root_at(coarse_runs, coarse_row_runs, (y0 + py) // f, (x0 + px) // f) != coarse_roots[k]:
                    continue  # another coarse component's, cut by this window
                _add_region(prob, _region(runs, row_runs, roots[j], x, y, w, h), area, x0 + x, y0 + y, high,
                            hysteresis, shape_filter, split_touching, min_area_px, rows, masks)
    else:
        binary = _threshold(prob, low)
        runs, row_runs, roots, stats = _label(binary)
        for j in range(len(roots)):
            x, y, w, h, area, _, _ = stats[j]
            if area >= min_area_px:
                _add_region(prob, _region(runs, row_runs, roots[j], x, y, w, h), area, x, y, high,
                            hysteresis, shape_filter, split_touching, min_area_px, rows, masks)
    n = len(rows)
    table = np.empty((n, 13), dtype=np.float64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        for c in range(13):
            table[i, c] = rows[i][c]
        offsets[i + 1] = offsets[i] + masks[i].size
    flat = np.empty(offsets[n], dtype=np.bool_)
    for i in range(n):
        flat[offsets[i]:offsets[i + 1]] = masks[i].ravel()
    return table, flat, offsets


@numba.njit(cache=True, nogil=True)
def _add_region(prob, region, area, x, y, high, hysteresis, shape_filter, split_touching, min_area_px, rows,
                masks):
    """One region (``region``: its ``area`` pixels over its box, whose corner is (x, y) in the frame): it is a
    candidate if it reaches ``high`` somewhere and, with ``shape_filter``, could be a hole; if it
    cannot, its parts above ``high`` (hysteresis only) that could be holes are candidates instead."""
    h, w = region.shape
    height, width = prob.shape
    crop = prob[y:y + h, x:x + w]
    reaches = False
    for r in range(h):
        for c in range(w):
            if region[r, c] and crop[r, c] >= high:
                reaches = True
                break
        if reaches:
            break
    if not reaches:
        return  # never reaches the threshold
    touches_border = x <= 0 or y <= 0 or x + w >= width or y + h >= height
    filled, measures = _shape(region, crop, area)
    if not shape_filter or _hole_like(measures, touches_border):
        _add_candidate(filled, x, y, measures, split_touching, min_area_px, rows, masks)
        return
    if not hysteresis:
        return
    core = np.zeros((h, (w + 7) // 8 * 8), dtype=np.uint8)
    for r in range(h):
        for c in range(w):
            core[r, c] = region[r, c] and crop[r, c] >= high
    runs, row_runs, roots, stats = _label(core)
    for k in range(len(roots)):
        px, py, pw, ph, piece_area, _, _ = stats[k]
        at_border = touches_border and (x + px <= 0 or y + py <= 0 or x + px + pw >= width or y + py + ph >= height)
        if piece_area >= min_area_px:
            piece_filled, piece_measures = _shape(_region(runs, row_runs, roots[k], px, py, pw, ph),
                                                  crop[py:py + ph, px:px + pw], piece_area)
            if _hole_like(piece_measures, at_border):
                _add_candidate(piece_filled, x + px, y + py, piece_measures, split_touching, min_area_px, rows,
                               masks)


@numba.njit(cache=True, nogil=True)
def _add_candidate(filled, x, y, measures, split_touching, min_area_px, rows, masks):
    """Append a candidate's row (see _X.._SPLIT) and filled mask; _SPLIT = 1 when it may be touching
    holes (large enough, and not _one_hole), to be tried by _split_touching."""
    m00, m10, m01, mu20, mu11, mu02, solidity, score = measures
    split = split_touching and m00 >= 4 * max(min_area_px, 6.0) and not _one_hole(measures)
    if not split and (m00 < min_area_px or m00 <= 0):
        return
    h, w = filled.shape
    rows.append((float(x), float(y), float(w), float(h), m00, m10 / m00 + x, m01 / m00 + y, mu20, mu11, mu02,
                 solidity, score, 1.0 if split else 0.0))
    masks.append(filled)


@numba.njit(cache=True, nogil=True)
def _hole_like(measures, touches_border):
    """Could this region be one hole (or a few touching ones)? Holes cut by the border skip the aspect test."""
    m00, _, _, mu20, mu11, mu02, solidity, _ = measures
    if solidity < MIN_SOLIDITY:
        return False
    if touches_border:
        return True
    if m00 <= 0:
        return False
    xx, xy, yy = mu20 / m00 + 1 / 12, mu11 / m00, mu02 / m00 + 1 / 12
    root = math.sqrt(((xx - yy) / 2) ** 2 + xy * xy)
    major, minor = (xx + yy) / 2 + root, max((xx + yy) / 2 - root, 0.0)   # variances along the axes
    return math.sqrt(minor) >= MIN_ASPECT * math.sqrt(major)


@numba.njit(cache=True, nogil=True)
def _one_hole(measures):
    """Quick tests that a region is one hole, not touching ones: one elliptical hole fills the ellipse
    of its second moments (ratio ~1), two touching discs fill ~0.89 of theirs; and the outer
    contour's solidity (~0.89 for two touching discs too)."""
    m00, _, _, mu20, mu11, mu02, solidity, _ = measures
    if m00 <= 0:
        return True
    xx, xy, yy = mu20 / m00 + 1 / 12, mu11 / m00, mu02 / m00 + 1 / 12
    moment_ellipse_area = 4 * np.pi * math.sqrt(max(xx * yy - xy * xy, 1e-12))
    return m00 / moment_ellipse_area >= SPLIT_SOLIDITY or solidity >= SPLIT_SOLIDITY


@numba.njit(cache=True, nogil=True)
def _coarse_any(prob, low):
    """Binary map (ceil(H / 4) rows, ceil(W / 4) columns, padded): 1 where any pixel of the 4x4 block
    is >= ``low`` (the thresholded map max-pooled by COARSE_FACTOR; the full-resolution mask is never
    stored). One pass over the map, row by row: the four comparisons of a block's row are OR-ed
    without a branch into the block's byte."""
    height, width = prob.shape
    out = np.zeros(((height + 3) // 4, ((width + 3) // 4 + 7) // 8 * 8), dtype=np.uint8)
    whole = width // 4
    for r in range(height):
        row = out[r // 4]
        p = prob[r]
        for b in range(whole):
            c = 4 * b
            row[b] |= (p[c] >= low) | (p[c + 1] >= low) | (p[c + 2] >= low) | (p[c + 3] >= low)
        for c in range(4 * whole, width):
            if p[c] >= low:
                row[c // 4] = 1
    return out


@numba.njit(cache=True, nogil=True)
def _threshold(prob, low):
    """Binary map of ``prob >= low`` (padded)."""
    h, w = prob.shape
    out = np.zeros((h, (w + 7) // 8 * 8), dtype=np.uint8)
    for r in range(h):
        for c in range(w):
            out[r, c] = prob[r, c] >= low
    return out


@numba.njit(cache=True, nogil=True)
def _find(parent, i):
    """Root label of label ``i``."""
    while parent[i] != i:
        i = parent[i]
    return i


@numba.njit(cache=True, nogil=True)
def _label(binary):
    """8-connected components of a binary map -> (runs, row_runs, roots, stats).

    The map is read as runs (horizontal stretches of set pixels): ``runs`` (m, 4) holds each run's
    row, first and last column and its component's root label, row by row, left to right; the runs
    of row r are runs[row_runs[r]:row_runs[r + 1]]. ``roots`` (count,) lists the components' root
    labels and ``stats`` (count, 7) their x, y, w, h (box), area and one pixel's x, y, in OpenCV's
    order (cv2.connectedComponents, a block-based algorithm, numbers components by their first 2x2
    block, blocks scanned row pair by row pair, left to right).

    First pass, row by row (zero 64-bit words, 8 pixels, are skipped at once): union-find over runs,
    a run joins the components of the runs above that touch it (8-connected: columns first - 1 to
    last + 1), the smaller root becomes the root. Second pass, run by run: each component's box,
    area and first block.
    """
    h, wp = binary.shape
    words = binary.view(np.uint64)
    capacity = h * (wp // 2 + 1)         # at most wp // 2 + 1 runs in a row
    runs = np.empty((capacity, 4), dtype=np.int32)
    parent = np.empty(capacity + 1, dtype=np.int32)
    row_runs = np.empty(h + 1, dtype=np.int64)
    m = 0
    n = 0
    for r in range(h):
        row_runs[r] = m
        above = row_runs[r - 1] if r > 0 else m     # the row above's runs: runs[above:above_end]
        above_end = m
        c = 0
        while c < wp:
            if c % 8 == 0 and words[r, c // 8] == 0:
                c += 8
                continue
            if not binary[r, c]:
                c += 1
                continue
            first = c
            while c < wp and binary[r, c]:
                c += 1
            last = c - 1
            while above < above_end and runs[above, 2] < first - 1:
                above += 1      # ends left of this run: it cannot touch this one or later ones
            label = 0
            i = above
            while i < above_end and runs[i, 1] <= last + 1:
                other = _find(parent, runs[i, 3])
                if label == 0:
                    label = other
                elif other != label:
                    parent[max(label, other)] = min(label, other)
                    label = min(label, other)
                i += 1
            if label == 0:
                n += 1
                parent[n] = n
                label = n
            runs[m, 0], runs[m, 1], runs[m, 2], runs[m, 3] = r, first, last, label
            m += 1
    row_runs[h] = m
    runs = runs[:m]
    for i in range(1, n + 1):
        parent[i] = parent[parent[i]]   # parent[i] <= i: every label now points at its root
    blocks_per_row = (wp + 1) // 2
    slot = np.full(n + 1, -1, dtype=np.int64)
    roots = np.empty(n, dtype=np.int64)
    first_block = np.empty(n, dtype=np.int64)
    stats = np.empty((n, 7), dtype=np.int64)
    count = 0
    for i in range(m):
        r, first, last = np.int64(runs[i, 0]), np.int64(runs[i, 1]), np.int64(runs[i, 2])
        root = runs[i, 3] = parent[runs[i, 3]]
        block = (r // 2) * blocks_per_row + first // 2
        k = slot[root]
        if k < 0:
            k = slot[root] = count
            count += 1
            roots[k], first_block[k] = root, block
            stats[k, 0], stats[k, 1], stats[k, 2], stats[k, 4], stats[k, 5], stats[k, 6] = first, r, last, 0, first, r
        first_block[k] = min(first_block[k], block)
        stats[k, 0] = min(stats[k, 0], first)
        stats[k, 2] = max(stats[k, 2], last)
        stats[k, 3] = r
        stats[k, 4] += last - first + 1
    if count > 1:
        order = np.argsort(first_block[:count])
        stats, roots = stats[order], roots[order]
    else:                                # one component (a window around one hole, usually): in order
        stats, roots = stats[:count], roots[:count]
    stats[:, 2] -= stats[:, 0] - 1       # last column -> width
    stats[:, 3] -= stats[:, 1] - 1       # last row -> height
    return runs, row_runs, roots, stats


@numba.njit(cache=True, nogil=True)
def _root_at(runs, row_runs, r, c):
    """Root label of the run holding pixel (r, c), which is set."""
    for i in range(row_runs[r], row_runs[r + 1]):
        if runs[i, 1] <= c <= runs[i, 2]:
            return runs[i, 3]
    return -1


@numba.njit(cache=True, nogil=True)
def _region(runs, row_runs, root, x, y, w, h):
    """The component with root label ``root``: its pixels over its box (x, y, w, h), bool (h, w)."""
    out = np.zeros((h, w), dtype=np.bool_)
    for i in range(row_runs[y], row_runs[y + h]):
        if runs[i, 3] == root:
            out[runs[i, 0] - y, runs[i, 1] - x:runs[i, 2] - x + 1] = True
    return out


@numba.njit(cache=True, nogil=True)
def _shape(region, crop, area):
    """Fill the region's gaps (a hole is solid: glare, texture or a ring-only mark leave gaps) and
    measure it -> (filled bool (h, w), (m00, m10, m01, mu20, mu11, mu02, solidity, score)). ``area``:
    the region's pixel count.

    Moments of the filled region as cv2.moments(binaryImage=True) gives them: the raw sums are
    integers (exact in float64), then mu20 = m20 - m10 * cx etc. with cx = m10 * (1 / m00). The
    score is the mean of ``crop`` (the probability over the box) over it, as cv2.mean: a sum in
    float64, times 1 / count. Solidity: area inside the outer contour over its convex hull's area,
    ~1 for a hole (even one marked only as a ring), low for an arc or a curved streak along a part's
    edge; both polygons run through pixel centres, as OpenCV's did (cv2.findContours, cv2.convexHull,
    cv2.contourArea), and both areas are exact (integer coordinates).
    """
    h, w = region.shape
    outline2, steps = _outline(region)
    # The pixels on and inside the outer contour number area + steps / 2 + 1 (Pick's theorem; where
    # the path touches itself, a part walked out and back adds two steps a pixel and no area): when
    # that is the region's own size, it has no gaps to fill.
    filled = region if (outline2 + steps) // 2 + 1 == area else _fill_gaps(region)
    m00 = m10 = m01 = m20 = m11 = m02 = 0
    total = 0.0
    xs = np.empty(2 * h, dtype=np.int64)   # each row's first and last pixel: the convex hull's candidates
    ys = np.empty(2 * h, dtype=np.int64)
    n = 0
    for r in range(h):
        row_count = row_x = row_xx = 0
        first = last = -1
        for c in range(w):
            if filled[r, c]:
                row_count += 1
                row_x += c
                row_xx += c * c
                total += crop[r, c]
                if first < 0:
                    first = c
                last = c
        if row_count == 0:
            continue
        m00 += row_count
        m10 += row_x
        m01 += r * row_count
        m20 += row_xx
        m11 += r * row_x
        m02 += r * r * row_count
        xs[n], ys[n] = first, r
        n += 1
        if last != first:
            xs[n], ys[n] = last, r
            n += 1
    inv_m00 = 1.0 / m00
    cx, cy = m10 * inv_m00, m01 * inv_m00
    hull2 = _hull_area2(xs[:n], ys[:n])
    solidity = 1.0  # one or two pixels, or a straight line: the aspect test decides
    if hull2 > 0:
        solidity = min((0.5 * outline2) / (0.5 * hull2), 1.0)
    measures = (float(m00), float(m10), float(m01), m20 - m10 * cx, m11 - m10 * cy, m02 - m01 * cy, solidity,
                total * inv_m00)
    return filled, measures


@numba.njit(cache=True, nogil=True)
def _fill_gaps(region):
    """The region with its gaps filled: everything but the background 4-connected to the box's border
    (an 8-connected region's outer border encloses exactly the rest; cv2.drawContours of the outer
    contour, used before, filled the same pixels). Flood fill from the border's background."""
    h, w = region.shape
    filled = np.ones((h, w), dtype=np.bool_)
    stack_r = np.empty(h * w, dtype=np.int32)
    stack_c = np.empty(h * w, dtype=np.int32)
    top = 0
    for r in range(h):
        for c in range(w):
            if (r == 0 or c == 0 or r == h - 1 or c == w - 1) and not region[r, c]:
                filled[r, c] = False
                stack_r[top], stack_c[top] = r, c
                top += 1
    while top > 0:
        top -= 1
        r, c = np.int64(stack_r[top]), np.int64(stack_c[top])
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and filled[rr, cc] and not region[rr, cc]:
                filled[rr, cc] = False
                stack_r[top], stack_c[top] = rr, cc
                top += 1
    return filled


@numba.njit(cache=True, nogil=True)
def _on(region, r, c):
    h, w = region.shape
    return 0 <= r < h and 0 <= c < w and region[r, c]


@numba.njit(cache=True, nogil=True)
def _outline(region):
    """(Twice the area, number of steps) of the region's outer contour: the closed path through the
    pixel centres of its outer border, traced as cv2.findContours traces it (Suzuki & Abe's border
    following, 8-connected). From the first pixel in raster order, the first neighbour clockwise from
    the west is the last step; then at each border pixel, the next one is the first neighbour
    counterclockwise after the one the trace came from; the trace ends on coming back to the start
    from that last pixel. Shoelace formula on the way (the path may touch itself: a spur is walked out
    and back, adding no area)."""
    c0 = 0
    while not region[0, c0]:
        c0 += 1
    s = 4
    for _ in range(8):
        s = (s - 1) & 7
        if _on(region, _DY[s], c0 + _DX[s]):
            break
    if s == 4:
        return 0, 0  # a single pixel (the west neighbour, the last one looked at, is background)
    r1, c1 = _DY[s], c0 + _DX[s]
    r3, c3 = 0, c0
    twice = 0
    steps = 0
    while True:
        for _ in range(8):
            s = (s + 1) & 7
            if _on(region, r3 + _DY[s], c3 + _DX[s]):
                break
        r4, c4 = r3 + _DY[s], c3 + _DX[s]
        twice += c3 * r4 - r3 * c4
        steps += 1
        if r4 == 0 and c4 == c0 and r3 == r1 and c3 == c1:
            break
        r3, c3 = r4, c4
        s = (s + 4) & 7
    return abs(twice), steps


@numba.njit(cache=True, nogil=True)
def _hull_area2(xs, ys):
    """Twice the area of the convex hull of integer points sorted by (y, x) (Andrew's monotone chain,
    the roles of x and y swapped)."""
    n = len(xs)
    hx = np.empty(2 * n + 1, dtype=np.int64)
    hy = np.empty(2 * n + 1, dtype=np.int64)
    k = 0
    for i in range(n):
        while k >= 2 and _turn(hx[k - 2], hy[k - 2], hx[k - 1], hy[k - 1], xs[i], ys[i]) <= 0:
            k -= 1
        hx[k], hy[k] = xs[i], ys[i]
        k += 1
    lower = k + 1
    for i in range(n - 2, -1, -1):
        while k >= lower and _turn(hx[k - 2], hy[k - 2], hx[k - 1], hy[k - 1], xs[i], ys[i]) <= 0:
            k -= 1
        hx[k], hy[k] = xs[i], ys[i]
        k += 1
    twice = 0
    for i in range(k - 1):
        twice += hx[i] * hy[i + 1] - hx[i + 1] * hy[i]
    return abs(twice)


@numba.njit(cache=True, nogil=True)
def _turn(ax, ay, bx, by, cx, cy):
    """Cross product (b - a) x (c - a): its sign says which way a -> b -> c turns."""
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
