"""A subset of a labelled dataset chosen by where a model fails: the images of an `eval --per-image`
report with a missed hole, plus some others drawn at random so a fine-tune still sees ordinary scenes.

Pure selection (``choose_images``) is separate from the file reading and writing (``read_per_image``,
``write_subset``). The subset is a COCO file whose ``file_name`` entries point back at the original
images, so nothing is copied.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from holevision.export.datasets.model import Dataset, DatasetError

PER_IMAGE_FIELDS = ("image", "missed")


def read_per_image(path: str | Path) -> list[dict]:
    """The ``images`` rows of an `eval --per-image` file; errors name the file and the field."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file (write it with `holevision eval ... --per-image {path}`)") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not JSON ({exc})") from None
    rows = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise DatasetError(f"{path}: images: expected the list `holevision eval --per-image` writes")
    for k, row in enumerate(rows):
        missing = [name for name in PER_IMAGE_FIELDS if not isinstance(row, dict) or name not in row]
        if missing:
            raise DatasetError(f"{path}: images[{k}]: missing {', '.join(missing)}")
        if not isinstance(row["missed"], int) or row["missed"] < 0:
            raise DatasetError(f"{path}: images[{k}].missed: expected a count >= 0, got {row['missed']!r}")
    return rows


def choose_images(rows: list[dict], *, min_missed: int = 1, others: int = 0, seed: int = 0) -> tuple[list[str], list[str]]:
    """(images with at least ``min_missed`` missed holes, ``others`` of the rest drawn at random with
    ``seed``), each in the rows' order. ``others`` larger than the rest takes all of them."""
    if min_missed < 1:
        raise ValueError(f"min_missed must be >= 1, got {min_missed}")
    if others < 0:
        raise ValueError(f"others must be >= 0, got {others}")
    hard = [row["image"] for row in rows if row["missed"] >= min_missed]
    rest = [row["image"] for row in rows if row["missed"] < min_missed]
    picked = np.random.default_rng(seed).permutation(len(rest))[:others] if rest else []
    return hard, [rest[k] for k in sorted(picked)]


def _key(path: str | Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def select_samples(dataset: Dataset, images: list[str], source: str | Path = "the report") -> Dataset:
    """The samples of ``dataset`` whose image is one of ``images`` (paths), in the dataset's order.
    An image the dataset does not hold is an error naming it: the report came from another set."""
    wanted = {_key(image) for image in images}
    samples = [sample for sample in dataset.samples if _key(sample.image_path) in wanted]
    if len(samples) != len(wanted):
        held = {_key(sample.image_path) for sample in dataset.samples}
        strangers = sorted(image for image in images if _key(image) not in held)
        raise DatasetError(f"{source}: {len(strangers)} image(s) are not in {dataset.root}, e.g. {strangers[0]}: "
                           f"was the report written for another dataset?")
    return Dataset(root=dataset.root, classes=list(dataset.classes), samples=samples, format=dataset.format)


def write_subset(subset: Dataset, out: str | Path, info: dict | None = None) -> Path:
    """``out/annotations.json`` (COCO) for ``subset``; its images stay where they are. A synthetic
    set's ``mask_file`` is re-pointed at the original instance mask."""
    from holevision.export.datasets.coco import write_coco

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for sample in subset.samples:
        mask_file = sample.meta.get("mask_file")
        if mask_file:
            original = Path(subset.root) / mask_file
            sample = replace(sample, meta={**sample.meta, "mask_file": Path(os.path.relpath(original, out)).as_posix()})
        samples.append(sample)
    return write_coco(replace(subset, samples=samples), out / "annotations.json", info=info)
