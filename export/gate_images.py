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

log = logging.getLogger(__name__)


@dataclass
class GateImages:
    """uint8 BGR images of exactly the export size, with optional ground-truth holes per image."""

    source: str
    images: list[np.ndarray]
    truth_centers: list[np.ndarray] | None = None     # per image (K, 2) u, v px
    truth_diameters: list[np.ndarray] | None = None   # per image (K,) px

    @property
    def labeled(self) -> bool:
        return self.truth_centers is not None

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


def load_gate_images(path: str | Path, height: int, width: int, limit: int | None = None) -> GateImages:
    """Up to ``limit`` images from ``path`` (labeled dataset or image folder), fitted to the export size."""
    from holevision.export.labeled_images import LabeledDataError, list_images, load_labeled_images

    path = Path(path)
    try:
        items = load_labeled_images(path)
    except (LabeledDataError, ValueError, OSError) as exc:
        log.info("%s: no labels usable for the gates (%s); using images only", path, exc)
        items = None
    if items is not None:
        items = items[:limit] if limit else items
        images, centers, diameters = [], [], []
        for item in items:
            image = item.read_image()
            truth = item.holes()
            keep = _inside(truth.centers, height, width)
            images.append(fit_to_size(image, height, width))
            centers.append(np.asarray(truth.centers, float).reshape(-1, 2)[keep])
            diameters.append(np.asarray(truth.diameters, float).reshape(-1)[keep])
        return GateImages(str(path), images, centers, diameters)
    files = list_images(path)
    files = files[:limit] if limit else files
    images = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{file}: unreadable image")
        images.append(fit_to_size(image, height, width))
    return GateImages(str(path), images)
