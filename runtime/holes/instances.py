"""Probability map -> hole instances: threshold, connected components, split touching holes.

Pure computation on numpy arrays; OpenCV does the pixel work.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A component whose area is below this fraction of its convex hull is a candidate for splitting
# (two touching discs have solidity ~0.89; a rasterised disc ~0.95-1.0). A disc still needs two
# distance-transform peaks to be split, so a low-solidity single hole is not cut in two.
SPLIT_SOLIDITY = 0.95
# Distance-transform peaks must reach this fraction of the component's maximum to seed a hole.
SPLIT_PEAK_FRACTION = 0.6


@dataclass
class Instances:
    """Hole instances found in a probability map, one row per instance (label i+1 in ``labels``)."""

    labels: np.ndarray        # (H, W) int32 label map, 0 = background, i + 1 = instance i
    centroids: np.ndarray     # (N, 2) mask centroid (u, v), px
    areas: np.ndarray         # (N,) mask area, px
    boxes: np.ndarray         # (N, 4) x, y, w, h of the instance's bounding box
    scores: np.ndarray        # (N,) mean hole probability inside the instance
    mask_axes: np.ndarray     # (N, 2) full axes (major, minor) of the ellipse with the mask's second moments, px
    mask_angles: np.ndarray   # (N,) its major-axis angle, degrees from +u toward +v

    def __len__(self) -> int:
        return len(self.areas)


def find_instances(prob_hole: np.ndarray, *, threshold: float = 0.5, min_area_px: float = 6.0,
                   split_touching: bool = True) -> Instances:
    """Threshold ``prob_hole`` (H, W) and return one instance per hole; touching holes are split.

    Touching holes are split at distance-transform peaks (nearest-seed assignment) on the components whose shape
    is not convex enough to be one hole (solidity below ``SPLIT_SOLIDITY``).
    """
    mask = np.ascontiguousarray(prob_hole >= threshold).view(np.uint8)
    count, component_labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    labels = np.zeros(prob_hole.shape, dtype=np.int32)
    centroids, areas, boxes, scores, moments = [], [], [], [], []
    for component in range(1, count):
        x, y, w, h, area = (int(s) for s in stats[component])
        if area < min_area_px:
            continue
        crop_mask = component_labels[y:y + h, x:x + w] == component
        parts = [crop_mask]
        if split_touching and area >= 4 * max(min_area_px, 6.0):
            parts = _split_touching(crop_mask)
        crop_prob = prob_hole[y:y + h, x:x + w]
        crop_labels = labels[y:y + h, x:x + w]
        for part in parts:
            part_area = int(np.count_nonzero(part))
            if part_area < min_area_px:
                continue
            ys, xs = np.nonzero(part)
            centroids.append((xs.mean() + x, ys.mean() + y))
            areas.append(part_area)
            px, py = xs.min(), ys.min()
            boxes.append((px + x, py + y, xs.max() - px + 1, ys.max() - py + 1))
            scores.append(float(crop_prob[part].mean()))
            dx, dy = xs - xs.mean(), ys - ys.mean()
            # + 1/12: each pixel is a unit square, not a point.
            moments.append(((dx * dx).mean() + 1 / 12, (dx * dy).mean(), (dy * dy).mean() + 1 / 12))
            crop_labels[part] = len(areas)
    n = len(areas)
    mask_axes, mask_angles = _moment_ellipses(np.asarray(moments, dtype=np.float64).reshape(n, 3))
    return Instances(
        labels=labels,
        centroids=np.asarray(centroids, dtype=np.float64).reshape(n, 2),
        areas=np.asarray(areas, dtype=np.float64),
        boxes=np.asarray(boxes, dtype=np.int64).reshape(n, 4),
        scores=np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0),
        mask_axes=mask_axes,
        mask_angles=mask_angles,
    )


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


def _split_touching(mask: np.ndarray) -> list[np.ndarray]:
    """Split one component into holes when its distance transform has several strong peaks.

    Each peak region seeds a hole; every pixel of the component goes to its nearest seed, which cuts
    two touching discs along the line between them.
    """
    mask_u8 = mask.astype(np.uint8)
    contours, _ = cv2.findContours(mask_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return [mask]
    hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
    if hull_area <= 0 or mask.sum() / hull_area >= SPLIT_SOLIDITY:
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
