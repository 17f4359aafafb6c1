"""YOLO segmentation labels: ``images/`` + ``labels/`` (optionally with split sub-folders, or Roboflow's
``train/images`` + ``train/labels``), one ``class x1 y1 x2 y2 ...`` line per instance, coordinates
normalized to [0, 1]; class names from ``data.yaml`` (``names:``) or ``classes.txt``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cv2
import numpy as np

from holevision.export.datasets.model import Dataset, DatasetError, Instance, Sample

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def parse_names_yaml(path: Path) -> list[str]:
    """Class names from a YOLO data.yaml without PyYAML: ``names: [a, b]``, ``names: {0: a}`` or a block
    of ``- a`` / ``0: a`` lines."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^names\s*:\s*(.*)$", line)
        if not m:
            continue
        rest = m.group(1).split(" #")[0].strip()
        if rest:
            try:
                value = ast.literal_eval(rest) if rest[0] in "[{" else None
            except (ValueError, SyntaxError):
                value = _flow_list(rest)
            if isinstance(value, dict):
                return [str(value[k]) for k in sorted(value)]
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            raise DatasetError(f"{path.name}: names: cannot parse {rest!r}")
        names: dict[int, str] = {}
        for j, block in enumerate(lines[i + 1:]):
            if not block.strip() or block.strip().startswith("#"):
                continue
            if not block.startswith((" ", "\t", "-")):
                break
            item = block.strip()
            if item.startswith("-"):
                names[len(names)] = item[1:].strip().strip("'\"")
            elif ":" in item:
                key, value = item.split(":", 1)
                try:
                    names[int(key.strip())] = value.strip().strip("'\"")
                except ValueError:
                    raise DatasetError(f"{path.name}: names: line {i + j + 2}: expected 'N: name', got {item!r}") from None
        return [names[k] for k in sorted(names)]
    raise DatasetError(f"{path.name}: names: missing (YOLO data.yaml must list class names)")


def _flow_list(text: str) -> list[str] | dict[int, str]:
    """An unquoted YAML flow sequence ``[a, b]`` or mapping ``{0: a, 1: b}``."""
    text = text.strip()
    parts = [part.strip() for part in text.strip("[]{}").split(",") if part.strip()]
    if text.startswith("{"):
        out = {}
        for part in parts:
            key, _, value = part.partition(":")
            out[int(key.strip())] = value.strip().strip("'\"")
        return out
    return [part.strip("'\"") for part in parts]


def find_yolo_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, label) pairs: every image under an ``images`` folder whose twin ``labels`` folder exists."""
    pairs = []
    for images_dir in sorted(p for p in root.rglob("images") if p.is_dir()):
        labels_dir = images_dir.parent / "labels"
        if not labels_dir.is_dir():
            continue
        for image in sorted(images_dir.rglob("*")):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                rel = image.relative_to(images_dir).with_suffix(".txt")
                pairs.append((image, labels_dir / rel))
    return pairs


def _class_names(root: Path) -> list[str] | None:
    for candidate in [*sorted(root.glob("*.yaml")), *sorted(root.glob("*.yml"))]:
        try:
            return parse_names_yaml(candidate)
        except DatasetError:
            if candidate.name in ("data.yaml", "dataset.yaml"):
                raise
    for candidate in (root / "classes.txt", root / "labels" / "classes.txt", root / "obj.names"):
        if candidate.exists():
            return [line.strip() for line in candidate.read_text(encoding="utf-8").splitlines() if line.strip()]
    return None


def read_yolo_seg(root: str | Path) -> Dataset:
    """Read a YOLO-seg dataset. Unparsable lines raise ``DatasetError`` naming ``file:line``; unknown
    class ids and points outside [0, 1] are listed in ``Dataset.problems``."""
    root = Path(root)
    names = _class_names(root)
    pairs = find_yolo_pairs(root)
    if not pairs:
        raise DatasetError(f"{root}: no images/ folder with a labels/ twin (YOLO layout)")
    problems: list[str] = []
    samples = []
    max_class = -1
    for image_path, label_path in pairs:
        size = _image_size(image_path)
        if size is None:
            problems.append(f"{image_path.name}: unreadable image")
            continue
        width, height = size
        sample = Sample(image_path=image_path, width=width, height=height)
        if label_path.exists():
            for lineno, line in enumerate(label_path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"{label_path.name}:{lineno}"
                fields = line.split()
                try:
                    cls = int(fields[0])
                    coords = [float(x) for x in fields[1:]]
                except ValueError:
                    raise DatasetError(f"{where}: expected 'class x1 y1 x2 y2 ...' numbers, got {line.strip()[:60]!r}") from None
                if len(coords) == 4:
                    raise DatasetError(f"{where}: a box (4 numbers), not a polygon: this is YOLO detection, not -seg")
                if len(coords) % 2 or len(coords) < 6:
                    raise DatasetError(f"{where}: a polygon needs an even number >= 6 of coordinates, got {len(coords)}")
                pts = np.asarray(coords).reshape(-1, 2)
                if names is not None and not 0 <= cls < len(names):
                    problems.append(f"{label_path.name}: unknown class: id {cls} on line {lineno} "
                                    f"(names has {len(names)})")
                    continue
                if (pts < -0.002).any() or (pts > 1.002).any():
                    problems.append(f"{label_path.name}: polygon outside the image: line {lineno} has "
                                    f"coordinates outside [0, 1]")
                max_class = max(max_class, cls)
                pixel = pts * np.array([width, height]) - 0.5
                sample.instances.append(Instance(class_name=names[cls] if names else str(cls), polygon=pixel))
        samples.append(sample)
    classes = names if names is not None else [str(k) for k in range(max_class + 1)]
    return Dataset(root=root, classes=classes, samples=samples, problems=problems, format="yolo-seg")


def _image_size(path: Path) -> tuple[int, int] | None:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    return image.shape[1], image.shape[0]
