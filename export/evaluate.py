"""Hole-level evaluation, as the line sees it.

A predicted hole matches a ground-truth hole when their centers are within max(2 px, 0.25 x GT radius),
one to one (Hungarian assignment on center distance). A hole cut by the image border or partly hidden
has two fair centers, the middle of its seen part (a mask centroid) and the labelled center of the whole
hole (an outline fit that completes the circle); a prediction near either matches. Figures: hole
precision / recall / F1, hole-class mask IoU, center error of matched holes (RMS and p95, px; only
ground truth with exact subpixel centers), diameter error (mean absolute and RMS, px).

Holes are extracted from the probability map by the runtime's own post-processing
(``holevision.runtime.holes.extract_holes``) when it is installed, otherwise by plain connected
components, so numbers match what the runtime reports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .labeled_images import GroundTruthHoles, LabeledImage


@dataclass
class PredictedHoles:
    centers: np.ndarray   # (N, 2) u, v px
    diameters: np.ndarray  # (N,) px

    def __len__(self) -> int:
        return len(self.centers)


def connected_component_holes(prob_hole: np.ndarray, threshold: float = 0.5, min_area_px: float = 6.0) -> PredictedHoles:
    """Fallback extraction: components of prob > threshold; centroid and equal-area diameter."""
    binary = (prob_hole > threshold).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_area_px]
    areas = stats[keep, cv2.CC_STAT_AREA].astype(float)
    return PredictedHoles(centroids[keep].reshape(-1, 2).astype(float), 2.0 * np.sqrt(areas / np.pi))


def extract_predicted_holes(prob_hole: np.ndarray, image_bgr: np.ndarray | None = None, threshold: float = 0.5,
                            min_area_px: float = 6.0, refine: bool = True,
                            verify: Callable | None = None) -> PredictedHoles:
    """The runtime's hole extraction when available, else connected components.

    ``refine`` (with an image) runs the runtime's subpixel edge fit; off, centers come from the mask.
    ``verify``: a bundle's hole verifier, ``verify(holes, prob_hole, image_bgr) -> Holes`` (runtime
    ``HoleVerifier``), run on the extracted candidates as the runtime's Detector runs it.
    """
    try:
        from holevision.runtime.holes import extract_holes
    except ImportError:
        return connected_component_holes(prob_hole, threshold, min_area_px)
    prob_hole = prob_hole.astype(np.float32)
    holes = extract_holes(prob_hole, image_bgr if refine else None, threshold=threshold,
                          min_area_px=min_area_px, refine=refine)
    if verify is not None and image_bgr is not None:
        holes = verify(holes, prob_hole, image_bgr)
    return PredictedHoles(np.asarray(holes.centers, float).reshape(-1, 2), np.asarray(holes.axes, float).mean(axis=1)
                          if len(holes) else np.zeros(0))


def match_holes(predicted: np.ndarray, truth: np.ndarray, truth_diameters: np.ndarray,
                min_tolerance_px: float = 2.0, radius_fraction: float = 0.25,
                truth_whole: np.ndarray | None = None) -> list[tuple[int, int]]:
    """One-to-one (pred index, truth index) pairs within max(2 px, 0.25 x GT radius).

    ``truth_whole``: a second center per truth hole (the labelled center of a partly seen hole, where
    ``truth`` holds the middle of its seen part); a prediction near either one matches.
    """
    if len(predicted) == 0 or len(truth) == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    distance = np.linalg.norm(predicted[:, None, :] - truth[None, :, :], axis=2)
    if truth_whole is not None:
        distance = np.minimum(distance, np.linalg.norm(predicted[:, None, :] - truth_whole[None, :, :], axis=2))
    tolerance = np.maximum(min_tolerance_px, radius_fraction * truth_diameters / 2.0)[None, :]
    cost = np.where(distance <= tolerance, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < 1e6]


# Diameter bins (px) of the per-size breakdown: tiny, small, medium, large, very large.
SIZE_BIN_EDGES_PX = (8.0, 16.0, 32.0, 64.0)


@dataclass
class HoleScore:
    """Accumulates per-image results; ``summary()`` gives the figures."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    intersection: float = 0.0
    union: float = 0.0
    images: int = 0
    ignored: int = 0
    center_errors: list = field(default_factory=list)
    diameter_errors: list = field(default_factory=list)
    truth_sizes: list = field(default_factory=list)       # (GT diameter px, matched) per counted GT hole
    predicted_sizes: list = field(default_factory=list)   # (predicted diameter px, matched) per counted prediction
    exact_sizes: list = field(default_factory=list)       # GT diameter px of each center_errors entry
    image_rows: list = field(default_factory=list)        # per image: name and its counts (``per_image()``)

    def add(self, predicted: PredictedHoles, truth: GroundTruthHoles, pred_mask: np.ndarray | None = None,
            truth_mask: np.ndarray | None = None, min_area_px: float = 0.0, image: str | None = None) -> None:
        """Count one image. ``image``: its path, recorded with its counts for ``per_image()``."""
        all_pairs = match_holes(predicted.centers, truth.centers, truth.diameters, truth_whole=truth.whole_centers)
        ignore = np.zeros(len(truth), bool)
        if truth.areas is not None and min_area_px > 0:
            ignore = np.asarray(truth.areas) < min_area_px
        ignored_pred = {p for p, t in all_pairs if ignore[t]}
        ignored_predictions = len(ignored_pred)
        pairs = [(p, t) for p, t in all_pairs if not ignore[t]]
        self.images += 1
        self.ignored += int(ignore.sum())
        self.true_positives += len(pairs)
        self.false_positives += len(predicted) - len(pairs) - ignored_predictions
        self.false_negatives += int((~ignore).sum()) - len(pairs)
        self.image_rows.append({"image": image, "holes_true": int((~ignore).sum()), "found": len(pairs),
                                "missed": int((~ignore).sum()) - len(pairs),
                                "false_positives": len(predicted) - len(pairs) - ignored_predictions})
        matched_truth = {t for _, t in pairs}
        matched_pred = {p for p, _ in pairs}
        self.truth_sizes += [(float(truth.diameters[t]), t in matched_truth) for t in range(len(truth)) if not ignore[t]]
        self.predicted_sizes += [(float(predicted.diameters[p]), p in matched_pred) for p in range(len(predicted))
                                 if p not in ignored_pred]
        for p, t in pairs:
            if truth.exact[t]:
                self.center_errors.append(float(np.linalg.norm(predicted.centers[p] - truth.centers[t])))
                self.diameter_errors.append(float(predicted.diameters[p] - truth.diameters[t]))
                self.exact_sizes.append(float(truth.diameters[t]))
        if pred_mask is not None and truth_mask is not None:
            self.intersection += float(np.logical_and(pred_mask, truth_mask).sum())
            self.union += float(np.logical_or(pred_mask, truth_mask).sum())

    def summary(self) -> dict:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        centers = np.asarray(self.center_errors)
        diameters = np.asarray(self.diameter_errors)
        return {
            "images": self.images,
            "holes_true": tp + fn,
            "holes_predicted": tp + fp,
            "holes_ignored_tiny": self.ignored,
            "true_positives": tp, "false_positives": fp, "false_negatives": fn,
            "precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5),
            "mask_iou": round(self.intersection / self.union, 5) if self.union else None,
            "center_error_rms_px": round(float(np.sqrt(np.mean(centers ** 2))), 4) if len(centers) else None,
            "center_error_p95_px": round(float(np.percentile(centers, 95)), 4) if len(centers) else None,
            "diameter_error_mean_abs_px": round(float(np.mean(np.abs(diameters))), 4) if len(diameters) else None,
            "diameter_error_rms_px": round(float(np.sqrt(np.mean(diameters ** 2))), 4) if len(diameters) else None,
            "matched_with_exact_center": int(len(centers)),
            "by_size": self.by_size(),
        }

    def per_image(self) -> list[dict]:
        """One row per image in the order added: image, holes_true, found, missed, false_positives
        (tiny ignored holes counted nowhere). Lists where a model fails: `data subset --missed-in`."""
        return [dict(row) for row in self.image_rows]

    def by_size(self, edges: Sequence[float] = SIZE_BIN_EDGES_PX) -> list[dict]:
        """The figures per hole diameter bin: recall, center and diameter error by the true diameter,
        precision by the predicted one (a false hole has no true size). Shows where a model fails: a
        few big holes can dominate the center RMS, tiny ones the misses."""
        bounds = [0.0, *edges, float("inf")]
        truth = np.asarray(self.truth_sizes, float).reshape(-1, 2)
        predicted = np.asarray(self.predicted_sizes, float).reshape(-1, 2)
        exact = np.asarray(self.exact_sizes)
        centers, diameters = np.asarray(self.center_errors), np.asarray(self.diameter_errors)
        rows = []
        for low, high in zip(bounds[:-1], bounds[1:]):
            t = (truth[:, 0] >= low) & (truth[:, 0] < high)
            p = (predicted[:, 0] >= low) & (predicted[:, 0] < high)
            e = (exact >= low) & (exact < high)
            if not (t.any() or p.any()):
                continue
            rows.append({
                "diameter_px": f"{low:g}-{high:g}" if np.isfinite(high) else f">={low:g}",
                "holes_true": int(t.sum()), "holes_predicted": int(p.sum()),
                "recall": round(float(truth[t, 1].mean()), 5) if t.any() else None,
                "precision": round(float(predicted[p, 1].mean()), 5) if p.any() else None,
                "center_error_rms_px": round(float(np.sqrt(np.mean(centers[e] ** 2))), 4) if e.any() else None,
                "diameter_error_mean_px": round(float(np.mean(diameters[e])), 4) if e.any() else None,
            })
        return rows


def evaluate_probabilities(items: Iterable[LabeledImage], predict: Callable[[np.ndarray], np.ndarray],
                           threshold: float = 0.5, min_area_px: float = 6.0, hole_index: int = 1,
                           progress: bool = False, refine: bool = True) -> dict:
    """Evaluate any model given as ``predict(image_bgr) -> (C, H, W) probabilities``."""
    return evaluate_thresholds(items, predict, [threshold], min_area_px, hole_index, progress, refine)[threshold]


def evaluate_thresholds(items: Iterable[LabeledImage], predict: Callable[[np.ndarray], np.ndarray],
                        thresholds: Sequence[float], min_area_px: float = 6.0, hole_index: int = 1,
                        progress: bool = False, refine: bool = True,
                        verify: Callable | None = None, per_image: bool = False) -> dict[float, dict]:
    """The figures at each threshold, running the model once per image: {threshold: summary}.
    ``verify``: a hole verifier run on each threshold's candidates (see extract_predicted_holes).
    ``per_image``: each summary also holds ``"per_image"`` (HoleScore.per_image)."""
    scores = {threshold: HoleScore() for threshold in thresholds}
    items = list(items)
    iterator = items
    if progress:
        from tqdm import tqdm

        iterator = tqdm(items, desc="eval", unit="img")
    for item in iterator:
        image = item.read_image()
        prob_hole = predict(image)[hole_index]
        truth, truth_mask = item.holes(), item.semantic_mask() == hole_index
        for threshold, score in scores.items():
            predicted = extract_predicted_holes(prob_hole, image, threshold, min_area_px, refine, verify)
            score.add(predicted, truth, prob_hole > threshold, truth_mask, min_area_px,
                      image=os.path.abspath(item.image_path))   # `data subset` may run elsewhere
    summaries = {threshold: score.summary() for threshold, score in scores.items()}
    if per_image:
        for threshold, score in scores.items():
            summaries[threshold]["per_image"] = score.per_image()
    return summaries


def torch_predictor(model, device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
    """``predict(image_bgr) -> (C, H, W)`` softmax probabilities for a torch segmenter."""
    import torch

    mean = torch.tensor(model.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(model.std, device=device).view(1, 3, 1, 1)
    model.eval().to(device)

    def predict(image_bgr: np.ndarray) -> np.ndarray:
        rgb = torch.from_numpy(np.ascontiguousarray(image_bgr[..., ::-1])).to(device)
        pixels = (rgb.permute(2, 0, 1)[None].float() / 255.0 - mean) / std
        with torch.no_grad():
            return model(pixels).logits.softmax(dim=1)[0].float().cpu().numpy()

    return predict


def bundle_predictor(bundle_path: str | Path, flips: int = 1, *, verify: bool = True,
                     min_score: float | None = None) -> tuple[Callable[[np.ndarray], np.ndarray], Callable | None]:
    """(``predict``, ``verifier``) through the runtime's Detector, exactly as on the line:
    ``predict(image_bgr) -> (2, H, W)`` (background, hole) with onnxruntime and the bundle's tiling and
    stitching (``flips``: mirror views averaged); ``verifier``: the bundle's hole verifier (None when it
    has none or ``verify`` is False; ``min_score`` None: the bundle's own)."""
    from holevision.runtime.detector import Detector

    detector = Detector(bundle_path, flips=flips, verify=verify, min_score=min_score)

    def predict(image_bgr: np.ndarray) -> np.ndarray:
        prob_hole = detector.probability(image_bgr)
        return np.stack([1.0 - prob_hole, prob_hole])

    return predict, detector.verifier


def evaluate_path(model_path: str | Path, data: str | Path, device: str = "cpu", threshold: float | None = None,
                  min_area_px: float | None = None, progress: bool = True, refine: bool = True,
                  sweep: Sequence[float] = (), checkpoint: str = "best.pt", flips: int = 1,
                  verify: bool = True, min_score: float | None = None, per_image: bool = False) -> dict:
    """Evaluate a training run folder (``config.json`` + ``best.pt``) or a model bundle on a dataset.

    ``threshold`` / ``min_area_px`` None: a bundle's own post-processing settings (what the runtime
    uses with it), 0.5 / 6 px for a run. ``sweep``: also these thresholds (same model pass), reported
    under ``"sweep"`` as {threshold: summary}. ``flips``: a bundle's mirror views averaged (Detector).
    ``verify`` / ``min_score``: a bundle's hole verifier on or off, and its cut (None: the bundle's).
    ``per_image``: also ``"per_image"``, one row per image at ``threshold`` (HoleScore.per_image).
    """
    from .labeled_images import load_labeled_images

    if str(model_path) == "default":           # the packaged bundle, as `holevision detect` uses it
        from holevision.runtime.bundle import DEFAULT_BUNDLE_DIR

        model_path = DEFAULT_BUNDLE_DIR
    model_path = Path(model_path)
    if (model_path / "manifest.json").is_file():
        from holevision.runtime.bundle import read_manifest

        post = read_manifest(model_path).postprocess
        threshold = post.threshold if threshold is None else threshold
        min_area_px = post.min_area_px if min_area_px is None else min_area_px
        predict, verifier = bundle_predictor(model_path, flips, verify=verify, min_score=min_score)
        classes = None
        kind = "bundle"
    else:
        if flips != 1:
            raise ValueError(f"--flips averages a bundle's mirror views as the runtime does; {model_path} is a "
                             f"training run: export it first (holevision export)")
        if min_score is not None:
            raise ValueError(f"--min-score is the cut of a bundle's hole verifier; {model_path} is a training run")
        verifier = None
        threshold = 0.5 if threshold is None else threshold
        min_area_px = 6.0 if min_area_px is None else min_area_px
        from .train import load_run, resolve_device

        device = resolve_device(device)
        model, run_config = load_run(model_path, device=device, checkpoint=checkpoint)
        predict = torch_predictor(model, device)
        classes = tuple(model.classes)
        kind = "run"
    items = load_labeled_images(data, classes)
    by_threshold = evaluate_thresholds(items, predict, sorted({threshold, *sweep}), min_area_px, progress=progress,
                                       refine=refine, verify=verifier, per_image=per_image)
    metrics = dict(by_threshold[threshold])
    if sweep:
        metrics["sweep"] = {str(t): {k: v for k, v in by_threshold[t].items() if k != "per_image"}
                            for t in sorted(sweep)}
    metrics.update({"model": str(model_path), "model_kind": kind, "checkpoint": checkpoint if kind == "run" else None, "data": str(data), "threshold": threshold,
                    "min_area_px": min_area_px, "refine": refine, "flips": flips,
                    "verifier": None if verifier is None else {"file": str(verifier.path), "min_score": verifier.min_score}})
    return metrics


def write_metrics(metrics: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(metrics, indent=2) + "\n")
