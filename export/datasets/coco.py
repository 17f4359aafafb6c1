"""COCO instance segmentation: reader (CVAT, Labelme->COCO, Roboflow variants; polygons and RLE) and writer.

COCO coordinates use the pixel-corner convention; ours put pixel centers at integers, so polygons are
shifted by 0.5 px on the way in and out. Extra per-instance fields written by ``holevision synth``
(``center_uv``, ``axes``, ``angle_deg``) are read back into ``Instance``; any other non-standard field
and CVAT's ``attributes`` end up in ``Instance.attributes``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from holevision.export.datasets.model import Dataset, DatasetError, Instance, Sample
from holevision.export.datasets.rle import counts_to_rle_string, rle_decode, rle_encode

_STANDARD_KEYS = {"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd", "attributes",
                  "center_uv", "axes", "angle_deg"}
_OUTSIDE_TOLERANCE_PX = 1.0


def find_coco_json(folder: Path) -> Path | None:
    """The COCO file of a folder: annotations.json, instances*.json, _annotations.coco.json, or
    annotations/instances*.json."""
    for pattern in ("annotations.json", "_annotations.coco.json", "instances*.json", "*.coco.json",
                    "annotations/instances*.json", "annotations/*.json"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    return None


def _resolve_image(json_path: Path, file_name: str) -> Path:
    root = json_path.parent
    candidates = [root / file_name, root / "images" / file_name, root.parent / "images" / file_name,
                  root / "images" / Path(file_name).name, root / Path(file_name).name, root.parent / file_name]
    for candidate in candidates:
        if candidate.exists():
            return Path(os.path.normpath(candidate))   # no `hard/../pool/` left in paths reported later
    return root / file_name


def _number_list(value, where: str) -> list[float]:
    if not isinstance(value, (list, tuple)):
        raise DatasetError(f"{where}: expected a list of numbers, got {type(value).__name__}")
    out = []
    for k, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise DatasetError(f"{where}[{k}]: expected a finite number, got {x!r}")
        out.append(float(x))
    return out


def read_coco(json_path: str | Path) -> Dataset:
    """Read a COCO instance-segmentation JSON file. Malformed structure raises ``DatasetError``
    (``annotations.json: annotations[12].segmentation: ...``); content problems (unknown category,
    polygon outside the image) are collected in ``Dataset.problems``."""
    json_path = Path(json_path)
    name = json_path.name
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{json_path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{name}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{name}: expected a JSON object with images, annotations, categories")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{name}: {key}: missing or not a list (is this a COCO instances file?)")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise DatasetError(f"{name}: annotations: expected a list")
    categories: dict[int, str] = {}
    supercategories = set()
    for k, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DatasetError(f"{name}: categories[{k}]: needs 'id' and 'name'")
        categories[int(cat["id"])] = str(cat["name"])
        if cat.get("supercategory") not in (None, "", "none", cat["name"]):
            supercategories.add(str(cat["supercategory"]))
    used = {a.get("category_id") for a in annotations if isinstance(a, dict)}
    # Roboflow adds an entry for the super-category itself (id 0) that no annotation uses: not a class.
    classes = [n for i, n in sorted(categories.items()) if i in used or n not in supercategories]
    problems: list[str] = []
    samples: dict[int, Sample] = {}
    for k, img in enumerate(data["images"]):
        where = f"{name}: images[{k}]"
        if not isinstance(img, dict):
            raise DatasetError(f"{where}: expected an object")
        for key in ("id", "file_name", "width", "height"):
            if key not in img:
                raise DatasetError(f"{where}.{key}: missing")
        try:
            width, height = int(img["width"]), int(img["height"])
        except (TypeError, ValueError):
            raise DatasetError(f"{where}.width/height: expected integers, got {img['width']!r}, {img['height']!r}") from None
        if width <= 0 or height <= 0:
            raise DatasetError(f"{where}.width/height: must be positive, got {width}x{height}")
        meta = {key: value for key, value in img.items() if key not in ("id", "file_name", "width", "height")}
        samples[img["id"]] = Sample(image_path=_resolve_image(json_path, str(img["file_name"])), width=width,
                                    height=height, instances=[], meta=meta)
    for k, ann in enumerate(annotations):
        where = f"{name}: annotations[{k}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{where}: expected an object")
        if ann.get("image_id") not in samples:
            problems.append(f"{where}.image_id: no image with id {ann.get('image_id')!r}")
            continue
        sample = samples[ann["image_id"]]
        category = ann.get("category_id")
        if category not in categories:
            problems.append(f"{sample.image_path.name}: unknown class: category_id {category!r} "
                            f"(annotations[{k}]) is not in categories")
            continue
        instance = _instance(ann, where, sample, categories[category], problems)
        if instance is not None:
            sample.instances.append(instance)
    return Dataset(root=json_path.parent, classes=classes, samples=list(samples.values()), problems=problems,
                   format="coco")


def _instance(ann: dict, where: str, sample: Sample, class_name: str, problems: list[str]) -> Instance | None:
    seg = ann.get("segmentation")
    polygons: list[np.ndarray] = []
    mask = None
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            raise DatasetError(f"{where}.segmentation: RLE needs 'counts' and 'size'")
        size = _number_list(seg["size"], f"{where}.segmentation.size")
        if len(size) != 2:
            raise DatasetError(f"{where}.segmentation.size: expected [height, width], got {seg['size']}")
        h, w = int(size[0]), int(size[1])
        try:
            mask = rle_decode(seg["counts"], h, w)
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{where}.segmentation.counts: {exc}") from exc
        if (h, w) != (sample.height, sample.width):
            problems.append(f"{sample.image_path.name}: mask size mismatch: annotation RLE is {w}x{h}, "
                            f"image is {sample.width}x{sample.height} ({where.split(': ', 1)[1]})")
            return None
    elif isinstance(seg, list):
        if seg and not isinstance(seg[0], (list, tuple)):
            seg = [seg]  # a single flat polygon, as some exporters write it
        for j, poly in enumerate(seg):
            coords = _number_list(poly, f"{where}.segmentation[{j}]")
            if len(coords) % 2:
                raise DatasetError(f"{where}.segmentation[{j}]: odd number of coordinates ({len(coords)})")
            if len(coords) < 6:
                raise DatasetError(f"{where}.segmentation[{j}]: a polygon needs at least 3 points, "
                                   f"got {len(coords) // 2}")
            pts = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
            _check_inside(pts, sample, where, problems)
            polygons.append(pts - 0.5)
        if not polygons:
            raise DatasetError(f"{where}.segmentation: empty")
    else:
        raise DatasetError(f"{where}.segmentation: expected a polygon list or an RLE object, "
                           f"got {type(seg).__name__}")
    attributes = dict(ann.get("attributes") or {}) if isinstance(ann.get("attributes"), dict) else {}
    attributes.update({key: value for key, value in ann.items() if key not in _STANDARD_KEYS})
    if "iscrowd" in ann:
        attributes.setdefault("iscrowd", ann["iscrowd"])
    center = axes = angle = None
    if "center_uv" in ann:
        c = _number_list(ann["center_uv"], f"{where}.center_uv")
        if len(c) != 2:
            raise DatasetError(f"{where}.center_uv: expected [u, v]")
        center = (c[0], c[1])
    if "axes" in ann:
        a = _number_list(ann["axes"], f"{where}.axes")
        if len(a) != 2:
            raise DatasetError(f"{where}.axes: expected [major, minor]")
        axes = (a[0], a[1])
    if "angle_deg" in ann:
        angle = _number_list([ann["angle_deg"]], f"{where}.angle_deg")[0]
    polygons.sort(key=lambda p: -abs(_area(p)))
    return Instance(class_name=class_name, polygon=polygons[0] if polygons else None, mask=mask, center=center,
                    axes=axes, angle_deg=angle, attributes=attributes, extra_polygons=polygons[1:])


def _area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def _check_inside(pts_corner: np.ndarray, sample: Sample, where: str, problems: list[str]) -> None:
    tol = _OUTSIDE_TOLERANCE_PX
    bad = ((pts_corner[:, 0] < -tol) | (pts_corner[:, 1] < -tol) | (pts_corner[:, 0] > sample.width + tol)
           | (pts_corner[:, 1] > sample.height + tol))
    if bad.any():
        x, y = pts_corner[bad][0]
        problems.append(f"{sample.image_path.name}: polygon outside the image: point ({x:.1f}, {y:.1f}) "
                        f"not in {sample.width}x{sample.height} ({where.split(': ', 1)[1]})")


def _at_least_triangle(polygon: np.ndarray) -> np.ndarray:
    """COCO needs >= 3 points. A 1-pixel piece (1 point) or a 1-pixel-wide run (2 points) becomes a thin
    triangle that fills the same pixel centers."""
    if len(polygon) >= 3:
        return polygon
    if len(polygon) == 1:
        return np.vstack([polygon, polygon + [0.25, 0.0], polygon + [0.0, 0.25]])
    return np.vstack([polygon, polygon[1:] + [0.0625, 0.0625]])


def _r(x: float, nd: int = 3) -> float:
    value = round(float(x), nd)
    return 0.0 if value == 0 else value


def write_coco(dataset: Dataset, path: str | Path, *, info: dict | None = None) -> Path:
    """Write ``dataset`` as COCO instance segmentation JSON (polygons; RLE for mask-only instances).

    Image ``file_name`` is relative to the JSON's folder. Output is deterministic (same dataset ->
    same bytes). Known geometry (center, axes, angle) is written as ``center_uv``/``axes``/``angle_deg``
    in our pixel-center convention; ``Instance.attributes`` as ``attributes``; ``Sample.meta`` as
    extra image fields.
    """
    path = Path(path)
    classes = list(dataset.classes)
    categories = [{"id": k + 1, "name": name, "supercategory": "object"} for k, name in enumerate(classes)]
    images, annotations = [], []
    for image_id, sample in enumerate(dataset.samples, start=1):
        try:
            file_name = os.path.relpath(sample.image_path, path.parent)
        except ValueError:
            file_name = str(sample.image_path)
        entry = {"id": image_id, "file_name": Path(file_name).as_posix(), "width": int(sample.width),
                 "height": int(sample.height)}
        entry.update(sample.meta)
        images.append(entry)
        for inst in sample.instances:
            if inst.class_name not in classes:
                raise ValueError(f"{sample.image_path}: instance class {inst.class_name!r} not in dataset classes {classes}")
            ann: dict = {"id": len(annotations) + 1, "image_id": image_id,
                         "category_id": classes.index(inst.class_name) + 1, "iscrowd": 0}
            polys = inst.polygons()
            if polys:
                ann["segmentation"] = [[_r(v + 0.5) for v in _at_least_triangle(p).reshape(-1)] for p in polys]
                pts = np.vstack(polys)
                x0, y0 = pts.min(0) + 0.5
                x1, y1 = pts.max(0) + 0.5
                area = sum(abs(_area(p)) for p in polys)
            elif inst.mask is not None:
                counts = rle_encode(inst.mask)
                ann["segmentation"] = {"size": [int(sample.height), int(sample.width)],
                                       "counts": counts_to_rle_string(counts)}
                ys, xs = np.nonzero(inst.mask)
                x0, y0, x1, y1 = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else (0, 0, 0, 0)
                area = float(inst.mask.sum())
            else:
                raise ValueError(f"{sample.image_path}: an instance has neither polygon nor mask")
            ann["area"] = _r(area, 2)
            ann["bbox"] = [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)]
            if inst.center is not None:
                ann["center_uv"] = [_r(inst.center[0], 5), _r(inst.center[1], 5)]
            if inst.axes is not None:
                ann["axes"] = [_r(inst.axes[0], 5), _r(inst.axes[1], 5)]
            if inst.angle_deg is not None:
                ann["angle_deg"] = _r(inst.angle_deg, 4)
            if inst.attributes:
                ann["attributes"] = inst.attributes
            annotations.append(ann)
    doc = {"info": {"description": "holevision dataset", "pixel_convention":
                    "segmentation and bbox: COCO (pixel corners at integers); center_uv: pixel centers at integers",
                    **(info or {})},
           "images": images, "annotations": annotations, "categories": categories}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
