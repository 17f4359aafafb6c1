"""Probability map -> hole instances: threshold, connected components, split touching holes.

Pure computation on numpy arrays; OpenCV does the pixel work.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

# A component whose area is below this fraction of its convex hull is a candidate for splitting
# (two touching discs have solidity ~0.89; a rasterised disc ~0.95-1.0). A disc still needs two
# distance-transform peaks to be split, so a low-solidity single hole is not cut in two.
SPLIT_SOLIDITY = 0.95
# Shape plausibility: a hole's mask is a filled ellipse (or a ring around one). Regions thinner than
# MIN_ASPECT (minor / major; 0.35 is a circle seen 70 degrees off-axis) or less solid than MIN_SOLIDITY
# (outer contour area / convex hull area: arcs, streaks along part edges) are not holes.
MIN_ASPECT = 0.35
MIN_SOLIDITY = 0.75
# Frames at least this large are labelled coarse-to-fine (see _components).
COARSE_MIN_PIXELS = 512 * 512
COARSE_FACTOR = 4
# Distance-transform peaks must reach this fraction of the component's maximum to seed a hole.
SPLIT_PEAK_FRACTION = 0.6


@dataclass
class Instances:
    """Hole instances found in a probability map, one row per instance (label i+1 in ``labels``).

    Each instance's pixels are kept as a mask over its own box (``masks``); the full-frame label map
    is built only when asked for (``labels``): a fresh (H, W) int32 map per frame cost more (page
    faults, zeroing) than everything that reads it, which is one lookup per edge point (`foreign`).
    """

    label_ids: np.ndarray     # (N,) each instance's value in ``labels``
    centroids: np.ndarray     # (N, 2) mask centroid (u, v), px
    areas: np.ndarray         # (N,) mask area, px
    boxes: np.ndarray         # (N, 4) x, y, w, h of the instance's bounding box
    scores: np.ndarray        # (N,) mean hole probability inside the instance
    mask_axes: np.ndarray     # (N, 2) full axes (major, minor) of the ellipse with the mask's second moments, px
    mask_angles: np.ndarray   # (N,) its major-axis angle, degrees from +u toward +v
    solidity: np.ndarray      # (N,) area inside the outer contour / area of its convex hull (1 = convex)
    masks: list               # N bool (h, w) masks, each over its row of ``boxes``
    shape: tuple              # (H, W) of the probability map

    def __len__(self) -> int:
        return len(self.areas)

    @property
    def labels(self) -> np.ndarray:
        """(H, W) int32 label map, 0 = background; where filled shapes overlap, the later instance's."""
        labels = np.zeros(self.shape, dtype=np.int32)
        for label, (x, y, w, h), mask in zip(self.label_ids, self.boxes, self.masks):
            labels[y:y + h, x:x + w][mask] = label
        return labels

    def foreign(self, points: np.ndarray) -> np.ndarray:
        """(N, K) bool: point k of instance n lands on another instance's pixels, i.e. the label map at
        the point's pixel (rounded, clipped to the frame) is neither 0 nor n's label.

        Only instances whose box meets the box of n's points are looked at (usually none but n).
        """
        n = len(self)
        height, width = self.shape
        col = np.clip(np.rint(points[..., 0]), 0, width - 1).astype(np.int64)
        row = np.clip(np.rint(points[..., 1]), 0, height - 1).astype(np.int64)
        result = np.zeros(col.shape, dtype=bool)
        if n < 2:
            return result
        x, y, w, h = self.boxes.T
        c0, c1, r0, r1 = col.min(axis=1), col.max(axis=1), row.min(axis=1), row.max(axis=1)
        meets = ((c0[:, None] < (x + w)[None, :]) & (c1[:, None] >= x[None, :])
                 & (r0[:, None] < (y + h)[None, :]) & (r1[:, None] >= y[None, :]))
        np.fill_diagonal(meets, False)
        for i in np.flatnonzero(meets.any(axis=1)):
            # The label map shows the highest label among the instances covering a pixel.
            top_other = np.zeros(col.shape[1], dtype=np.int64)
            for j in np.flatnonzero(meets[i]):
                top_other = np.where(self._covers(j, col[i], row[i]), j + 1, top_other)  # j ascending
            own = self._covers(i, col[i], row[i])
            result[i] = (top_other > i + 1) | ((top_other > 0) & ~own)
        return result

    def _covers(self, index: int, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        x, y, w, h = (int(v) for v in self.boxes[index])
        inside = (col >= x) & (col < x + w) & (row >= y) & (row < y + h)
        covered = np.zeros(col.shape, dtype=bool)
        covered[inside] = self.masks[index][row[inside] - y, col[inside] - x]
        return covered


_workspace = threading.local()


def _mask_buffer(shape: tuple) -> np.ndarray:
    """This thread's reusable (H, W) bool buffer for the grown mask: a fresh full-frame array every
    frame costs page faults whenever the allocator has handed the memory back to the system."""
    buffer = getattr(_workspace, "mask", None)
    if buffer is None or buffer.shape != shape:
        buffer = _workspace.mask = np.empty(shape, dtype=bool)
    return buffer


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
    """
    height, width = prob_hole.shape
    hysteresis = low_threshold is not None and low_threshold < threshold
    # The grown mask is the only full-frame array (in a reused buffer); the strict one is taken per
    # region, inside its box.
    grow = np.greater_equal(prob_hole, low_threshold if hysteresis else threshold,
                            out=_mask_buffer(prob_hole.shape)).view(np.uint8)
    centroids, areas, boxes, scores, moments, solidity, masks = [], [], [], [], [], [], []
    for x, y, region, contours, offset in _components(grow, min_area_px):
        h, w = region.shape
        core = (prob_hole[y:y + h, x:x + w] >= threshold) & region
        if not core.any():
            continue  # never reaches the threshold
        touches_border = x <= 0 or y <= 0 or x + w >= width or y + h >= height
        shape = _shape(region, contours, offset)
        candidates = [(0, 0, shape)]
        if shape_filter and not _hole_like(shape, touches_border):
            candidates = []
            if hysteresis:
                count, sub = cv2.connectedComponents(core.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
                for k in range(1, count):
                    piece = sub == k
                    bx, by, bw, bh = cv2.boundingRect(piece.view(np.uint8))
                    piece = piece[by:by + bh, bx:bx + bw]
                    at_border = touches_border and (x + bx <= 0 or y + by <= 0 or x + bx + bw >= width
                                                    or y + by + bh >= height)
                    if piece.sum() >= min_area_px:
                        piece_shape = _shape(piece)
                        if _hole_like(piece_shape, at_border):
                            candidates.append((bx, by, piece_shape))
        for cx, cy, candidate in candidates:
            ox, oy = x + cx, y + cy
            ch, cw = candidate.filled.shape
            parts = [(candidate.filled, candidate.moments, candidate.solidity)]
            if split_touching and candidate.moments["m00"] >= 4 * max(min_area_px, 6.0):
                pieces = _split_touching(candidate)
                if len(pieces) > 1:
                    parts = [(p, cv2.moments(p.view(np.uint8), binaryImage=True), _solidity(p.view(np.uint8)))
                             for p in pieces]
            crop_prob = prob_hole[oy:oy + ch, ox:ox + cw]
            for part, m, part_solidity in parts:
                part_u8 = part.view(np.uint8)
                part_area = m["m00"]
                if part_area < min_area_px or part_area <= 0:
                    continue
                centroids.append((m["m10"] / part_area + ox, m["m01"] / part_area + oy))
                areas.append(part_area)
                # An unsplit candidate fills its own box (it is cropped to the region it was filled from).
                bx, by, bw, bh = (0, 0, cw, ch) if len(parts) == 1 else cv2.boundingRect(part_u8)
                boxes.append((bx + ox, by + oy, bw, bh))
                scores.append(cv2.mean(crop_prob, mask=part_u8)[0])
                # + 1/12: each pixel is a unit square, not a point.
                moments.append((m["mu20"] / part_area + 1 / 12, m["mu11"] / part_area, m["mu02"] / part_area + 1 / 12))
                solidity.append(part_solidity)
                masks.append(part[by:by + bh, bx:bx + bw])
    n = len(areas)
    mask_axes, mask_angles = _moment_ellipses(np.asarray(moments, dtype=np.float64).reshape(n, 3))
    return Instances(
        label_ids=np.arange(1, n + 1, dtype=np.int32),
        centroids=np.asarray(centroids, dtype=np.float64).reshape(n, 2),
        areas=np.asarray(areas, dtype=np.float64),
        boxes=np.asarray(boxes, dtype=np.int64).reshape(n, 4),
        scores=np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0),
        mask_axes=mask_axes,
        mask_angles=mask_angles,
        solidity=np.asarray(solidity, dtype=np.float64),
        masks=masks,
        shape=prob_hole.shape,
    )


@dataclass
class _Shape:
    """A region with the gaps inside it filled (a hole is solid: glare, texture or a ring-only mark
    leave gaps), its moments and the solidity of its outer contour."""

    filled: np.ndarray     # bool
    moments: dict
    solidity: float


def _shape(mask: np.ndarray, contours=None, offset=(0, 0)) -> _Shape:
    """Fill ``mask``'s gaps and measure it. ``contours``: its external contours when the caller has
    them already, in coordinates ``offset`` away from the mask's (a window's contours, say)."""
    if contours is None:
        contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = mask.view(np.uint8).copy()          # drawing the filled contours onto the mask: mask | fill
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED, offset=offset)
    return _Shape(filled.view(bool), cv2.moments(filled, binaryImage=True), _contour_solidity(contours))


def _hole_like(shape: _Shape, touches_border: bool) -> bool:
    """Could this region be one hole (or a few touching ones)? Holes cut by the border skip the aspect test."""
    if shape.solidity < MIN_SOLIDITY:
        return False
    if touches_border:
        return True
    m = shape.moments
    if m["m00"] <= 0:
        return False
    xx, xy, yy = m["mu20"] / m["m00"] + 1 / 12, m["mu11"] / m["m00"], m["mu02"] / m["m00"] + 1 / 12
    root = math.sqrt(((xx - yy) / 2) ** 2 + xy * xy)
    major, minor = (xx + yy) / 2 + root, max((xx + yy) / 2 - root, 0.0)   # variances along the axes
    return math.sqrt(minor) >= MIN_ASPECT * math.sqrt(major)


def _solidity(part_u8: np.ndarray) -> float:
    """Filled area of the outer contour over its convex hull's area: ~1 for a hole (even one marked
    only as a ring), low for an arc or a curved streak along a part's edge."""
    contours, _ = cv2.findContours(part_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return _contour_solidity(contours)


def _contour_solidity(contours) -> float:
    if not contours:
        return 0.0
    outline = max(contours, key=len)
    hull = cv2.contourArea(cv2.convexHull(outline))
    if hull <= 0:
        return 1.0  # one or two pixels, or a straight line: the aspect test decides
    return float(min(cv2.contourArea(outline) / hull, 1.0))


def _moment_ellipses(moments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Second moments (N, 3: xx, xy, yy) -> full axes (N, 2) and angles (N,) of the uniform ellipse."""
    xx, xy, yy = moments.T
    root = np.sqrt(((xx - yy) / 2) ** 2 + xy ** 2)
    lam_major = (xx + yy) / 2 + root
    lam_minor = np.maximum((xx + yy) / 2 - root, 0.0)
    # A uniform ellipse with semi-axis a has variance a^2 / 4 along that axis.
    axes = np.stack([4 * np.sqrt(lam_major), 4 * np.sqrt(lam_minor)], axis=1)
    angles = np.degrees(0.5 * np.arctan2(2 * xy, xx - yy)) % 180.0
    return axes, angles


def _coarse_any(mask: np.ndarray) -> np.ndarray:
    """A 0/1 uint8 mask max-pooled by COARSE_FACTOR (= 4) in both directions: 1 where any pixel of
    the 4x4 block is set.

    Four mask bytes in a row are one uint32 (non-zero iff any byte is), and four rows are OR-ed: a
    few passes over 1/4 of the frame instead of a full-frame multiply and an area resize.
    """
    height, width = mask.shape
    padded = mask
    if height % 4 or width % 4 or not mask.flags.c_contiguous:
        padded = cv2.copyMakeBorder(mask, 0, -height % 4, 0, -width % 4, cv2.BORDER_CONSTANT, value=0)
    words = padded.view(np.uint32).reshape(padded.shape[0] // 4, 4, padded.shape[1] // 4)
    return ((words[:, 0] | words[:, 1] | words[:, 2] | words[:, 3]) != 0).view(np.uint8)


def _components(mask: np.ndarray, min_area_px: float):
    """Yield (x, y, crop, contours, offset) for each 8-connected component of a 0/1 mask: crop = its
    bounding box; contours = its external contour (``offset`` away from the crop's coordinates) when
    it came for free, else None.

    Labelling a full frame is the costliest step of extraction, and holes cover a small part of it:
    components are first found on a 4x max-pooled copy (an ``any`` per 4x4 block), then labelled at
    full resolution inside each coarse component's box only. A full-resolution component always lies
    inside exactly one coarse component, which owns it (no duplicates where boxes overlap).

    Coarse boxes come from the coarse mask's outer contours (OpenCV's component statistics cost ten
    times the labelling). A window is first traced (RETR_CCOMP: one top-level contour per component);
    with one component (the usual case) that contour is its shape's outline too, and no full-resolution
    labelling is needed.
    """
    height, width = mask.shape
    f = COARSE_FACTOR
    if height * width < COARSE_MIN_PIXELS:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
        for k in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area >= min_area_px:
                yield x, y, labels[y:y + h, x:x + w] == k, None, (0, 0)
        return
    coarse = _coarse_any(mask)
    _, coarse_labels = cv2.connectedComponents(coarse, connectivity=8, ltype=cv2.CV_32S)
    outlines, hierarchy = cv2.findContours(coarse, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for outline, (_, _, _, parent) in zip(outlines, hierarchy[0] if outlines else ()):
        if parent < 0:       # top level: a component's outer boundary (the second level are its holes)
            col, row = outline[0, 0]
            boxes.append((int(coarse_labels[row, col]), cv2.boundingRect(outline)))
    for k, (cx, cy, cw, ch) in sorted(boxes):           # in label order, as labelling would list them
        x0, y0 = cx * f, cy * f
        x1, y1 = min((cx + cw) * f, width), min((cy + ch) * f, height)
        window = mask[y0:y1, x0:x1]
        contours, hierarchy = cv2.findContours(window, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        top = [c for c, (_, _, _, parent) in zip(contours, hierarchy[0]) if parent < 0]
        if len(top) == 1:
            # The window's only component is this coarse component's own (its pixels are all here).
            x, y, w, h = cv2.boundingRect(top[0])
            yield x0 + x, y0 + y, window.view(bool)[y:y + h, x:x + w], top, (-x, -y)
            continue
        sub_count, sub_labels = cv2.connectedComponents(window, connectivity=8, ltype=cv2.CV_32S)
        for j in range(1, sub_count):
            whole = sub_labels == j
            x, y, w, h = cv2.boundingRect(whole.view(np.uint8))
            part = whole[y:y + h, x:x + w]
            # The component's first pixel (in its top row) tells which coarse component owns it.
            col = int(np.argmax(part[0]))
            if coarse_labels[(y0 + y) // f, (x0 + x + col) // f] != k:
                continue
            yield x0 + x, y0 + y, part, None, (0, 0)


def _split_touching(shape: _Shape) -> list[np.ndarray]:
    """Split one (filled) region into holes when its distance transform has several strong peaks.

    Each peak region seeds a hole; every pixel of the region goes to its nearest seed, which cuts
    two touching discs along the line between them.
    """
    mask = shape.filled
    mask_u8 = mask.view(np.uint8)
    m = shape.moments
    if m["m00"] <= 0:
        return [mask]
    # Quick test first: one elliptical hole fills the ellipse of its second moments (ratio ~1);
    # two touching discs fill ~0.89 of theirs. Then the outer contour's solidity (~0.89 too).
    xx, xy, yy = (m["mu20"] / m["m00"] + 1 / 12, m["mu11"] / m["m00"], m["mu02"] / m["m00"] + 1 / 12)
    moment_ellipse_area = 4 * np.pi * np.sqrt(max(xx * yy - xy * xy, 1e-12))
    if m["m00"] / moment_ellipse_area >= SPLIT_SOLIDITY or shape.solidity >= SPLIT_SOLIDITY:
        return [mask]
    padded = cv2.copyMakeBorder(mask_u8, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    seeds = (distance >= SPLIT_PEAK_FRACTION * distance.max()).astype(np.uint8)
    seed_count, _ = cv2.connectedComponents(seeds, connectivity=8)
    if seed_count <= 2:
        return [mask]
    _, nearest = cv2.distanceTransformWithLabels(1 - seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
    owners = np.unique(nearest[seeds > 0])
    return [p for p in (mask & (nearest == k) for k in owners) if p.any()]
