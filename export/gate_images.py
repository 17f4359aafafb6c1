"""Images for the export gates: read a folder, fit each image to the fixed export size, keep its labels.

Labeled datasets (anything ``holevision.export.labeled_images`` reads) give ground-truth holes, so the
INT8 gate can compare both precisions with the truth; a plain image folder gives images only, and the
gates then use the fp32 model's holes as the reference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from holevision.export.labeled_images import GroundTruthHoles, LabeledDataError, list_images, load_labeled_images

log = logging.getLogger(__name__)


@dataclass
class GateImages:
    """uint8 BGR images of exactly the export size, with optional ground-truth holes per image."""

    source: str
    images: list[np.ndarray]
    truth: list[GroundTruthHoles] | None = None   # per image, the labelled holes inside the export size

    @property
    def labeled(self) -> bool:
        return self.truth is not None

    def __len__(self) -> int:
        return len(self.images)


def fit_to_size(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop (bottom/right) or zero-pad (bottom/right) to ``height x width``; pixels never move or scale."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    out = np.zeros((height, width, 3), np.uint8)
    h, w = min(height, image.shape[0]), min(width, image.shape[1])
    out[:h, :w] = image[:h, :w, :3]
    return out


def _inside(centers: np.ndarray, height: int, width: int) -> np.ndarray:
    centers = np.asarray(centers, float).reshape(-1, 2)
    return (centers[:, 0] >= 0) & (centers[:, 1] >= 0) & (centers[:, 0] <= width - 1) & (centers[:, 1] <= height - 1)


def truth_inside(truth: GroundTruthHoles, height: int, width: int) -> GroundTruthHoles:
    """The labelled holes whose center lies inside the top-left ``height x width`` window (what
    ``fit_to_size`` keeps). A hole the window's edge cuts keeps its labels but loses its exact center:
    a mask sees only the part inside."""
    centers = np.asarray(truth.centers, float).reshape(-1, 2)
    keep = _inside(centers, height, width)
    centers = centers[keep]
    diameters = np.asarray(truth.diameters, float).reshape(-1)[keep]
    radius = diameters[:, None] / 2.0
    whole = np.all((centers - radius >= -0.5) & (centers + radius <= np.array([width, height]) - 0.5), axis=1)
    return GroundTruthHoles(
        centers=centers, diameters=diameters, exact=np.asarray(truth.exact, bool).reshape(-1)[keep] & whole,
        areas=None if truth.areas is None else np.asarray(truth.areas, float).reshape(-1)[keep],
        whole_centers=None if truth.whole_centers is None
        else np.asarray(truth.whole_centers, float).reshape(-1, 2)[keep])


def load_gate_images(path: str | Path, height: int, width: int, limit: int | None = None) -> GateImages:
    """Up to ``limit`` images from ``path`` (labeled dataset or image folder), fitted to the export size."""
    path = Path(path)
    try:
        items = load_labeled_images(path)
    except (LabeledDataError, ValueError, OSError) as exc:
        log.info("%s: no labels usable for the gates (%s); using images only", path, exc)
        items = None
    if items is not None:
        items = items[:limit] if limit else items
        images = [fit_to_size(item.read_image(), height, width) for item in items]
        return GateImages(str(path), images, [truth_inside(item.holes(), height, width) for item in items])
    files = list_images(path)
    files = files[:limit] if limit else files
    images = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{file}: unreadable image")
        images.append(fit_to_size(image, height, width))
    return GateImages(str(path), images)
