"""Labeled images for training and evaluation: a semantic mask and the ground-truth holes per image.

Reads any dataset that ``holevision.export.datasets.load_dataset`` understands (COCO, YOLO-seg, mask
folders, synthetic parts). When that reader is not installed it falls back to the plain layout
``images/NAME.png`` + ``masks/NAME.png`` (instance ids, 0 = background, every id a hole).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class LabeledDataError(ValueError):
    """A dataset folder cannot be read for training or evaluation."""


@dataclass
class GroundTruthHoles:
    """Ground-truth holes of one image; ``exact`` rows have a subpixel center from the labels.

    A hole cut by the image border or hidden in part has two fair centers: the middle of what is seen
    (``centers``: what a mask's centroid finds) and the labelled center of the whole hole
    (``whole_centers``: what an outline fit that completes the circle finds, and what a robot needs).
    ``whole_centers`` is None where the labels give no center; otherwise it equals ``centers`` on exact rows.
    """

    centers: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))   # (N, 2) u, v px
    diameters: np.ndarray = field(default_factory=lambda: np.zeros(0))      # (N,) mean full axis, px
    exact: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))    # (N,) center from labels, not cut
    areas: np.ndarray | None = None                                         # (N,) visible pixels (None: unknown)
    whole_centers: np.ndarray | None = None                                 # (N, 2) labelled centers, or None

    def __len__(self) -> int:
        return len(self.centers)


@dataclass
class LabeledImage:
    image_path: Path
    classes: tuple[str, ...]
    _mask_fn: object = None          # callable -> (H, W) uint8 class indices
    _holes_fn: object = None         # callable -> GroundTruthHoles

    def read_image(self) -> np.ndarray:
        image = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise LabeledDataError(f"{self.image_path}: unreadable image")
        return image

    def semantic_mask(self) -> np.ndarray:
        return self._mask_fn()

    def holes(self) -> GroundTruthHoles:
        return self._holes_fn()


def holes_from_instance_map(instance_map: np.ndarray, min_area_px: float = 1.0) -> GroundTruthHoles:
    """Centroid and equal-area diameter of every instance id > 0 (not exact: centers from pixels)."""
    ids = np.unique(instance_map)
    ids = ids[ids > 0]
    centers, diameters, areas = [], [], []
    for instance_id in ids:
        vs, us = np.nonzero(instance_map == instance_id)
        if len(us) < min_area_px:
            continue
        centers.append((us.mean(), vs.mean()))
        diameters.append(2.0 * np.sqrt(len(us) / np.pi))
        areas.append(len(us))
    return GroundTruthHoles(np.asarray(centers, float).reshape(-1, 2), np.asarray(diameters, float),
                            np.zeros(len(centers), bool), np.asarray(areas, float))


def _from_mask_folder(root: Path) -> list[LabeledImage]:
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise LabeledDataError(f"{root}: expected images/ and masks/ folders (or a dataset holevision can read)")
    items = []
    classes = ("background", "hole")
    for image_path in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        mask_path = masks_dir / (image_path.stem + ".png")
        if not mask_path.is_file():
            raise LabeledDataError(f"{mask_path}: missing mask for {image_path.name}")

        def read_instances(mask_path=mask_path):
            instance_map = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
            if instance_map is None:
                raise LabeledDataError(f"{mask_path}: unreadable mask")
            return instance_map if instance_map.ndim == 2 else instance_map[..., 0]

        items.append(LabeledImage(
            image_path, classes,
            _mask_fn=lambda f=read_instances: (f() > 0).astype(np.uint8),
            _holes_fn=lambda f=read_instances: holes_from_instance_map(f()),
        ))
    return items


def _instance_pixels(instance, height: int, width: int) -> np.ndarray:
    if getattr(instance, "mask", None) is not None:
        return np.asarray(instance.mask, bool)
    canvas = np.zeros((height, width), np.uint8)
    polygon = getattr(instance, "polygon", None)
    if polygon is not None and len(polygon) >= 3:
        cv2.fillPoly(canvas, [np.round(np.asarray(polygon) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def _holes_from_sample(sample, hole_class: str = "hole") -> GroundTruthHoles:
    centers, diameters, exact, areas, whole_centers = [], [], [], [], []
    for instance in sample.instances:
        if instance.class_name != hole_class:
            continue
        attributes = getattr(instance, "attributes", None) or {}
        pixels = _instance_pixels(instance, sample.height, sample.width)
        area = int(pixels.sum())
        if area == 0:
            continue
        on_border = bool(attributes.get("on_border", False))
        occluded = bool(attributes.get("occluded", False))
        if instance.center is not None and not on_border and not occluded:
            center = (float(instance.center[0]), float(instance.center[1]))
            is_exact = True
        else:
            vs, us = np.nonzero(pixels)
            center, is_exact = (us.mean(), vs.mean()), False
        if instance.axes is not None:
            diameter = float(np.mean(instance.axes))
        else:
            diameter = 2.0 * np.sqrt(area / np.pi)
        centers.append(center)
        diameters.append(diameter)
        exact.append(is_exact)
        areas.append(area)
        whole_centers.append(center if instance.center is None else tuple(map(float, instance.center[:2])))
    return GroundTruthHoles(np.asarray(centers, float).reshape(-1, 2), np.asarray(diameters, float),
                            np.asarray(exact, bool), np.asarray(areas, float),
                            np.asarray(whole_centers, float).reshape(-1, 2))


def load_labeled_images(path: str | Path, classes: tuple[str, ...] | None = None) -> list[LabeledImage]:
    """Every labeled image under ``path``; ``classes`` defaults to the dataset's own list."""
    root = Path(path)
    if not root.exists():
        raise LabeledDataError(f"{root}: dataset not found")
    try:
        from holevision.export.datasets import load_dataset
    except ImportError:
        load_dataset = None
    dataset = None
    if load_dataset is not None:
        try:
            dataset = load_dataset(root)
        except ValueError as exc:
            if not ((root / "images").is_dir() and (root / "masks").is_dir()):
                raise
            # The instance masks still say where every hole is; keep going on them, loudly.
            logging.getLogger(__name__).warning(
                "%s; reading ground truth from %s/masks instead (centroids, not the labelled subpixel centers)",
                exc, root)
    if dataset is None:
        items = _from_mask_folder(root)
    else:
        names = tuple(classes or dataset.classes)
        if names[0] != "background":
            names = ("background", *[c for c in names if c != "background"])
        items = [LabeledImage(Path(s.image_path), names,
                              _mask_fn=lambda s=s, n=names: s.semantic_mask(list(n)),
                              _holes_fn=lambda s=s: _holes_from_sample(s))
                 for s in dataset.samples]
    if not items:
        raise LabeledDataError(f"{root}: no labeled images found")
    return items


def list_images(path: str | Path) -> list[Path]:
    """Unlabeled images: every image file in ``path`` or in ``path/images``."""
    root = Path(path)
    folder = root / "images" if (root / "images").is_dir() else root
    if not folder.is_dir():
        raise LabeledDataError(f"{root}: image folder not found")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise LabeledDataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return images
