"""Image + mask PNG folders: ``images/NAME.png`` and ``masks/NAME.png`` (same stem).

Masks hold instance ids (0 = background, every other value one instance; uint8 or uint16), of class
``hole`` or of the single name in ``classes.txt``. When ``classes.txt`` lists several names (the
first being the background), masks are class-index masks and each connected component of a class is
one instance.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from holevision.export.datasets.model import Dataset, DatasetError, Instance, Sample
from holevision.export.datasets.yolo import IMAGE_SUFFIXES

MASK_DIRS = ("masks", "mask", "labels_png", "annotations")


def find_mask_dir(root: Path) -> Path | None:
    for name in MASK_DIRS:
        if (root / name).is_dir() and (root / "images").is_dir():
            return root / name
    return None


def read_mask_folder(root: str | Path) -> Dataset:
    root = Path(root)
    mask_dir = find_mask_dir(root)
    if mask_dir is None:
        raise DatasetError(f"{root}: expected images/ and masks/ folders")
    names_file = root / "classes.txt"
    names = ([line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
             if names_file.exists() else [])
    semantic = len(names) >= 2
    classes = names[1:] if semantic else (names or ["hole"])
    problems: list[str] = []
    samples = []
    for image_path in sorted((root / "images").iterdir()):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        mask_path = next((p for p in (mask_dir / (image_path.stem + ".png"), mask_dir / (image_path.stem + "_mask.png"))
                          if p.exists()), None)
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
        if image is None:
            problems.append(f"{image_path.name}: unreadable image")
            continue
        height, width = image.shape[:2]
        sample = Sample(image_path=image_path, width=width, height=height, meta={})
        samples.append(sample)
        if mask_path is None:
            problems.append(f"{image_path.name}: no mask (expected {mask_dir.name}/{image_path.stem}.png)")
            continue
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            problems.append(f"{mask_path.name}: unreadable mask")
            continue
        if mask.ndim == 3:
            problems.append(f"{mask_path.name}: mask has {mask.shape[2]} channels, expected a single-channel PNG")
            mask = mask[:, :, 0]
        if mask.shape != (height, width):
            problems.append(f"{mask_path.name}: mask size mismatch: {mask.shape[1]}x{mask.shape[0]}, "
                            f"image {image_path.name} is {width}x{height}")
            continue
        sample.meta["mask_path"] = str(mask_path)
        values = np.unique(mask)
        values = values[values != 0]
        for value in values.tolist():
            if semantic:
                if value >= len(names):
                    problems.append(f"{mask_path.name}: unknown class: value {value} (classes.txt has {len(names)})")
                    continue
                n, labels = cv2.connectedComponents((mask == value).astype(np.uint8), connectivity=8)
                for k in range(1, n):
                    sample.instances.append(Instance(class_name=names[value], mask=labels == k))
            else:
                sample.instances.append(Instance(class_name=classes[0], mask=mask == value,
                                                 attributes={"instance_id": int(value)}))
    return Dataset(root=root, classes=classes, samples=samples, problems=problems, format="mask-folder")
