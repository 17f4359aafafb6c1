"""Load any supported dataset by looking at what is there."""

from __future__ import annotations

from pathlib import Path

from holevision.export.datasets.coco import find_coco_json, read_coco
from holevision.export.datasets.maskfolder import find_mask_dir, read_mask_folder
from holevision.export.datasets.model import Dataset, DatasetError
from holevision.export.datasets.yolo import find_yolo_pairs, read_yolo_seg


def detect_format(path: str | Path) -> str:
    """``coco`` (a .json file, or a folder with one), ``yolo-seg`` (images/ + labels/) or ``mask-folder``
    (images/ + masks/)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        raise DatasetError(f"{path}: a dataset file must be COCO .json; pass a folder for YOLO or mask PNGs")
    if find_coco_json(path) is not None:
        return "coco"
    if find_yolo_pairs(path):
        return "yolo-seg"
    if find_mask_dir(path) is not None:
        return "mask-folder"
    raise DatasetError(f"{path}: no dataset found: expected a COCO annotations.json / instances*.json, "
                       f"images/ + labels/ (YOLO-seg), or images/ + masks/ (mask PNGs)")


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset into the one in-memory form, detecting its format (see ``detect_format``)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "coco":
        return read_coco(path if path.is_file() else find_coco_json(path))
    if fmt == "yolo-seg":
        return read_yolo_seg(path)
    return read_mask_folder(path)
