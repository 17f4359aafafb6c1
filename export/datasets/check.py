"""`holevision data check`: counts, histograms and every problem of a dataset, as ``file: problem`` lines."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from holevision.export.datasets.load import load_dataset
from holevision.export.datasets.model import DatasetError

SIZE_BINS_PX = (0, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class CheckReport:
    path: str
    dataset_format: str = ""
    images: int = 0
    instances: int = 0
    images_without_instances: int = 0
    classes: list[str] = field(default_factory=list)
    class_histogram: dict[str, int] = field(default_factory=dict)
    size_histogram: dict[str, int] = field(default_factory=dict)   # equivalent diameter, px
    problems: list[str] = field(default_factory=list)

    def format(self, max_problems: int = 200) -> str:
        """Human-readable report; problems last, one ``file: problem`` per line."""
        lines = [f"{self.path}: {self.dataset_format or 'unknown format'}",
                 f"  images: {self.images} ({self.images_without_instances} without instances)",
                 f"  instances: {self.instances}",
                 f"  classes: {', '.join(self.classes) if self.classes else '-'}"]
        lines.append("  class histogram:")
        for name, count in self.class_histogram.items():
            lines.append(f"    {name:<20} {count}")
        lines.append("  hole size (equivalent diameter, px):")
        peak = max(self.size_histogram.values(), default=0)
        for label, count in self.size_histogram.items():
            bar = "#" * (round(30 * count / peak) if peak else 0)
            lines.append(f"    {label:>10} {count:>7} {bar}")
        lines.append(f"  problems: {len(self.problems)}")
        out = "\n".join(lines)
        if self.problems:
            shown = self.problems[:max_problems]
            out += "\n" + "\n".join(shown)
            if len(self.problems) > len(shown):
                out += f"\n... {len(self.problems) - len(shown)} more problems"
        return out


def _size_label(lo, hi):
    return f"{lo}-{hi}" if hi is not None else f">={lo}"


def check_dataset(path: str | Path) -> CheckReport:
    """Read ``path`` and collect every problem: malformed files, unreadable images, image size different
    from the label's, polygons outside the image, mask size mismatches, unknown classes."""
    report = CheckReport(path=str(path))
    try:
        dataset = load_dataset(path)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    report.dataset_format = dataset.format
    report.classes = list(dataset.classes)
    report.problems.extend(dataset.problems)
    classes = Counter()
    bins = [_size_label(lo, hi) for lo, hi in zip(SIZE_BINS_PX, list(SIZE_BINS_PX[1:]) + [None])]
    sizes = Counter({label: 0 for label in bins})
    for sample in dataset.samples:
        report.images += 1
        if not sample.instances:
            report.images_without_instances += 1
        if dataset.format != "mask-folder":
            image = cv2.imread(str(sample.image_path), cv2.IMREAD_UNCHANGED)
            if image is None:
                state = "missing" if not Path(sample.image_path).exists() else "unreadable"
                report.problems.append(f"{sample.image_path.name}: {state} image ({sample.image_path})")
            elif image.shape[:2] != (sample.height, sample.width):
                report.problems.append(f"{sample.image_path.name}: image is {image.shape[1]}x{image.shape[0]}, "
                                       f"labels say {sample.width}x{sample.height}")
        mask_path = _synth_mask_path(dataset.root, sample)
        if mask_path is not None:
            mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
            if mask is None:
                report.problems.append(f"{mask_path.name}: unreadable mask")
            elif mask.shape[:2] != (sample.height, sample.width):
                report.problems.append(f"{mask_path.name}: mask size mismatch: {mask.shape[1]}x{mask.shape[0]}, "
                                       f"image is {sample.width}x{sample.height}")
        for inst in sample.instances:
            report.instances += 1
            classes[inst.class_name] += 1
            diameter = 2.0 * math.sqrt(max(inst.area_px(), 0.0) / math.pi)
            for (lo, hi), label in zip(zip(SIZE_BINS_PX, list(SIZE_BINS_PX[1:]) + [None]), bins):
                if hi is None or diameter < hi:
                    sizes[label] += 1
                    break
            if inst.class_name not in dataset.classes:
                report.problems.append(f"{sample.image_path.name}: unknown class {inst.class_name!r}")
    report.class_histogram = dict(sorted(classes.items()))
    report.size_histogram = dict(sizes)
    return report


def _synth_mask_path(root: Path, sample) -> Path | None:
    """The instance-mask PNG of a sample written by ``holevision synth`` (its image entry names it)."""
    rel = sample.meta.get("mask_file")
    if not rel:
        return None
    return Path(root) / rel
