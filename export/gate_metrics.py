"""Hole-level agreement figures for the export gates (pure computation).

A predicted hole matches a reference hole when their centers are within ``max(2 px, 0.25 x radius)`` of
the reference radius, one to one (the same rule as ``holevision eval``). The gates compare torch with
ONNX Runtime, and INT8 with fp32, on these figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_MATCH_PX = 2.0
MATCH_RADIUS_FRACTION = 0.25


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


def match_centers(pred_centers: np.ndarray, ref_centers: np.ndarray,
                  ref_diameters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches ``(pred_index, ref_index)`` within the tolerance, minimising total distance."""
    from scipy.optimize import linear_sum_assignment

    pred = np.asarray(pred_centers, float).reshape(-1, 2)
    ref = np.asarray(ref_centers, float).reshape(-1, 2)
    diam = np.asarray(ref_diameters, float).reshape(-1)
    if len(diam) != len(ref):
        raise ValueError(f"ref_diameters has {len(diam)} rows, ref_centers {len(ref)}")
    if not len(pred) or not len(ref):
        return np.zeros(0, int), np.zeros(0, int)
    distance = np.linalg.norm(pred[:, None, :] - ref[None, :, :], axis=2)
    tolerance = np.maximum(MIN_MATCH_PX, MATCH_RADIUS_FRACTION * diam / 2.0)[None, :]
    cost = np.where(distance <= tolerance, distance, 1e9)
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] < 1e9
    return rows[keep], cols[keep]


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
        rows, cols = match_centers(pred, ref, diam)
        tp += len(rows)
        fp += len(pred) - len(rows)
        fn += len(ref) - len(rows)
        errors.append(np.linalg.norm(pred[rows] - ref[cols], axis=1))
    return HoleAgreement(tp, fp, fn, np.concatenate(errors) if errors else np.zeros(0))
