"""Hole-level agreement figures for the export gates (pure computation).

A predicted hole matches a reference hole when their centers are within ``max(2 px, 0.25 x radius)`` of
the reference radius, one to one: ``holevision eval``'s own matching (``evaluate.match_holes``). The
gates compare torch with ONNX Runtime, and INT8 with fp32, on these figures; against ground truth they
score exactly as ``holevision eval`` does (``truth_agreement``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from holevision.export.evaluate import HoleScore, PredictedHoles, match_holes
from holevision.export.labeled_images import GroundTruthHoles


@dataclass(frozen=True)
class HoleAgreement:
    """Counts and center errors of matching predictions to references over a set of images."""

    true_positives: int
    false_positives: int
    false_negatives: int
    center_errors: np.ndarray      # (TP,) px, distance between matched centers

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        total = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / total if total else 1.0

    @property
    def center_rms_px(self) -> float:
        return float(np.sqrt(np.mean(self.center_errors ** 2))) if len(self.center_errors) else 0.0

    def as_dict(self) -> dict:
        return {"f1": round(self.f1, 6), "precision": round(self.precision, 6), "recall": round(self.recall, 6),
                "center_rms_px": round(self.center_rms_px, 6), "matched": self.true_positives,
                "false_positives": self.false_positives, "false_negatives": self.false_negatives}


def hole_agreement(preds: Sequence[np.ndarray], refs: Sequence[np.ndarray],
                   ref_diameters: Sequence[np.ndarray]) -> HoleAgreement:
    """Agreement of per-image predicted centers with per-image reference centers (+ their diameters)."""
    if not (len(preds) == len(refs) == len(ref_diameters)):
        raise ValueError(f"need one entry per image: {len(preds)} predictions, {len(refs)} references, "
                         f"{len(ref_diameters)} diameter lists")
    tp = fp = fn = 0
    errors = []
    for pred, ref, diam in zip(preds, refs, ref_diameters):
        pred = np.asarray(pred, float).reshape(-1, 2)
        ref = np.asarray(ref, float).reshape(-1, 2)
        pairs = np.asarray(match_holes(pred, ref, np.asarray(diam, float).reshape(-1)), int).reshape(-1, 2)
        rows, cols = pairs[:, 0], pairs[:, 1]
        tp += len(rows)
        fp += len(pred) - len(rows)
        fn += len(ref) - len(rows)
        errors.append(np.linalg.norm(pred[rows] - ref[cols], axis=1))
    return HoleAgreement(tp, fp, fn, np.concatenate(errors) if errors else np.zeros(0))


def truth_agreement(pred_centers: Sequence[np.ndarray], pred_diameters: Sequence[np.ndarray],
                    truths: Sequence[GroundTruthHoles], min_area_px: float = 0.0) -> HoleAgreement:
    """Predicted holes vs the labels, scored as ``holevision eval`` scores them (``evaluate.HoleScore``):
    labelled holes under ``min_area_px`` visible pixels are neither missed nor found, a partly hidden hole
    matches at either of its centers, and center errors count only holes with an exact labelled center."""
    if not (len(pred_centers) == len(pred_diameters) == len(truths)):
        raise ValueError(f"need one entry per image: {len(pred_centers)} center lists, {len(pred_diameters)} "
                         f"diameter lists, {len(truths)} ground truths")
    score = HoleScore()
    for centers, diameters, truth in zip(pred_centers, pred_diameters, truths):
        score.add(PredictedHoles(np.asarray(centers, float).reshape(-1, 2), np.asarray(diameters, float).reshape(-1)),
                  truth, min_area_px=min_area_px)
    return HoleAgreement(score.true_positives, score.false_positives, score.false_negatives,
                         np.asarray(score.center_errors, float))
