"""One in-memory form for labelled hole datasets, whatever format they came from.

Pixel convention: (u, v) with pixel centers at integer coordinates (OpenCV's). COCO files use the
pixel-corner convention; the COCO reader and writer convert (+/- 0.5 px).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


class DatasetError(ValueError):
    """A dataset file is malformed; the message names the file and the field (``file: field: problem``)."""


@dataclass
class Instance:
    """One labelled object (a hole). Either ``polygon`` or ``mask`` is set (or both)."""

    class_name: str
    polygon: np.ndarray | None = None          # (K, 2) float px, pixel-center convention
    mask: np.ndarray | None = None             # (H, W) bool
    center: tuple[float, float] | None = None  # exact (u, v) when known (synthetic data)
    axes: tuple[float, float] | None = None    # full (major, minor) px when known
    angle_deg: float | None = None             # major-axis angle when known
    attributes: dict = field(default_factory=dict)
    extra_polygons: list[np.ndarray] = field(default_factory=list)  # further parts of a split instance

    def polygons(self) -> list[np.ndarray]:
        return ([self.polygon] if self.polygon is not None else []) + list(self.extra_polygons)

    def area_px(self) -> float:
        """Area in pixels (mask pixel count, else polygon area)."""
        if self.mask is not None:
            return float(self.mask.sum())
        return float(sum(abs(cv2.contourArea(p.astype(np.float32))) for p in self.polygons()))

    def rasterize(self, height: int, width: int) -> np.ndarray:
        """(H, W) bool mask of this instance (mask if given, else polygons filled)."""
        if self.mask is not None:
            return self.mask.astype(bool)
        canvas = np.zeros((height, width), np.uint8)
        polys = [np.round(p * 16).astype(np.int32) for p in self.polygons() if len(p) >= 1]
        if polys:
            cv2.fillPoly(canvas, polys, 1, cv2.LINE_8, 4)
        return canvas.astype(bool)


@dataclass
class Sample:
    """One image and its instances."""

    image_path: Path
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def semantic_mask(self, classes: list[str]) -> np.ndarray:
        """(H, W) uint8: index in ``classes`` of the instance covering each pixel, 0 where none.

        Pass ``classes`` with the background first, e.g. ``["background", "hole"]``.
        """
        out = np.zeros((self.height, self.width), np.uint8)
        for inst in self.instances:
            if inst.class_name not in classes:
                raise ValueError(f"{self.image_path}: class {inst.class_name!r} is not in {classes}")
            out[inst.rasterize(self.height, self.width)] = classes.index(inst.class_name)
        return out


@dataclass
class Dataset:
    """Samples and the object class names (background not included). ``problems`` are ``file: problem``
    lines found while reading (unknown class, polygon outside the image ...); readers keep going."""

    root: Path
    classes: list[str]
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)
    format: str = ""

    def __len__(self) -> int:
        return len(self.samples)


def polygons_from_mask(mask: np.ndarray) -> list[np.ndarray]:
    """Outer boundaries of a bool mask as (K, 2) float polygons through boundary pixel centers,
    largest first. A polygon filled with ``Instance.rasterize`` gives back the same pixels."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [c.reshape(-1, 2).astype(np.float64) for c in contours]
    polys.sort(key=lambda p: (-len(p) if len(p) < 3 else -abs(cv2.contourArea(p.astype(np.float32))) - len(p)))
    return polys
