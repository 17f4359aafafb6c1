"""Robust 2D registration of a recipe's holes (part frame) to detected holes (image px or plane mm).

Pure numpy/scipy. Parts are not fixtured precisely, holes may be missing and the detector may report
extra or clutter holes, so the fit is RANSAC over correspondences:

1. Hypotheses: take a pair of recipe holes (i, j) (long baselines preferred) and every pair of
   detections (k, l) whose distance matches |p_i - p_j| (rigid) or whose ratio stays within the allowed
   scale change (similarity), and whose diameters are compatible. Two point pairs fix a rotation,
   translation (and scale).
2. Score: recipe holes that land within twice their inlier radius of a compatible detection.
3. Refine the best hypothesis: one-to-one assignment (Hungarian) within the radius, then a least-squares
   fit (Umeyama) on the assigned pairs; repeated with the radius itself until the assignment is stable.

The result names its frames: ``T_det_part`` maps part-frame points to the detection frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

Transform = Literal["rigid", "similarity", "fixed"]
_FAR = 1e12


@dataclass
class Registration:
    """Where the recipe landed among the detections."""

    found: bool                     # a pose with enough support was found
    T_det_part: np.ndarray          # (3, 3) homogeneous 2D similarity: part frame -> detection frame
    matches: np.ndarray             # (M,) detection index matched to each recipe hole, -1 = none
    inliers: int                    # recipe holes matched within the inlier radius
    fit_residual: float             # RMS distance of matched holes after the fit (detection units); NaN if none
    hypotheses: int = 0             # pose hypotheses scored
    reason: str = ""                # why not found

    @property
    def rotation_deg(self) -> float:
        return math.degrees(math.atan2(self.T_det_part[1, 0], self.T_det_part[0, 0]))

    @property
    def scale(self) -> float:
        return float(np.hypot(self.T_det_part[0, 0], self.T_det_part[1, 0]))

    @property
    def translation(self) -> np.ndarray:
        return self.T_det_part[:2, 2].copy()

    def to_dict(self) -> dict:
        def num(x):
            return None if not np.isfinite(x) else round(float(x), 4)
        return {"found": self.found, "rotation_deg": num(self.rotation_deg), "scale": num(self.scale),
                "translation": [num(v) for v in self.translation], "inliers": self.inliers,
                "fit_residual": num(self.fit_residual), "hypotheses": self.hypotheses,
                "reason": self.reason}


def transform_points(T_dst_src: np.ndarray, points_src: np.ndarray) -> np.ndarray:
    """Apply a (3, 3) homogeneous 2D transform to (N, 2) points."""
    T = np.asarray(T_dst_src, dtype=np.float64)
    if T.shape != (3, 3):
        raise ValueError(f"transform_points: T must be (3, 3), got {T.shape}")
    points_src = np.asarray(points_src, dtype=np.float64).reshape(-1, 2)
    return points_src @ T[:2, :2].T + T[:2, 2]


def fit_transform(points_src: np.ndarray, points_dst: np.ndarray, transform: Transform = "rigid") -> np.ndarray:
    """Least-squares ``T_dst_src`` (3, 3) with dst ~ s R src + t (Umeyama 1991); no reflections.

    ``rigid`` fixes s = 1; ``fixed`` returns the identity. Needs at least 2 points (1 for fixed).
    """
    src = np.asarray(points_src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(points_dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape:
        raise ValueError(f"fit_transform: src {src.shape} and dst {dst.shape} must have the same shape")
    T = np.eye(3)
    if transform == "fixed":
        return T
    if len(src) < 2:
        raise ValueError(f"fit_transform: a {transform} fit needs at least 2 point pairs, got {len(src)}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.diag([1.0, np.sign(np.linalg.det(U) * np.linalg.det(Vt)) or 1.0])
    R = U @ D @ Vt
    scale = 1.0
    if transform == "similarity":
        var_s = float((a ** 2).sum() / len(src))
        scale = float(np.trace(np.diag(S) @ D) / var_s) if var_s > 0 else 1.0
    T[:2, :2] = scale * R
    T[:2, 2] = mu_d - scale * R @ mu_s
    return T


def register(points_part: np.ndarray, points_det: np.ndarray, *, inlier_radius: float | np.ndarray,
             transform: Transform = "rigid", diameters_part: np.ndarray | None = None,
             diameters_det: np.ndarray | None = None, diameter_ratio_gate: float = 0.5,
             max_scale_change: float = 0.1, min_inliers: int = 2, max_anchors: int = 200,
             confidence: float = 0.99999, seed: int = 0) -> Registration:
    """Fit recipe holes ``points_part`` (M, 2) to detections ``points_det`` (N, 2).

    ``inlier_radius``: scalar or (M,) per recipe hole (typically its position tolerance).
    ``diameter_ratio_gate``: a detection can only match a recipe hole whose (scaled) nominal diameter is
    within a factor ``1 + gate`` of its own; pass no diameters to match on position alone.
    Deterministic for a given ``seed``.
    """
    P = np.asarray(points_part, dtype=np.float64).reshape(-1, 2)
    Q = np.asarray(points_det, dtype=np.float64).reshape(-1, 2)
    M, N = len(P), len(Q)
    radius = np.broadcast_to(np.asarray(inlier_radius, dtype=np.float64), (M,)).copy()
    if np.any(~np.isfinite(radius)) or np.any(radius <= 0):
        raise ValueError("register: inlier_radius must be positive and finite")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(Q))):
        raise ValueError("register: points must be finite")
    scale_range = (1.0, 1.0) if transform != "similarity" else (1 - max_scale_change, 1 + max_scale_change)
    compat = _diameter_compatibility(diameters_part, diameters_det, M, N, diameter_ratio_gate, scale_range)
    empty = Registration(False, np.eye(3), np.full(M, -1, dtype=np.int64), 0, float("nan"))

    if M == 0 or N == 0:
        empty.reason = "no detections" if N == 0 else "empty recipe"
        return empty
    if transform == "fixed":
        best_T, hypotheses = np.eye(3), 1
    else:
        if M < 2 or N < 2:
            empty.reason = "too few holes to fit a pose"
            return empty
        best_T, best_score, hypotheses = _ransac(P, Q, radius, compat, transform, scale_range,
                                                 min_inliers, max_anchors, confidence, seed)
        if best_T is None:
            empty.reason = "no pair of detections matches the recipe's hole spacing"
            empty.hypotheses = hypotheses
            return empty

    T, matches = _refine(P, Q, best_T, radius, compat, transform)
    matched = matches >= 0
    inliers = int(matched.sum())
    residual = float("nan")
    if inliers:
        err = np.linalg.norm(transform_points(T, P[matched]) - Q[matches[matched]], axis=1)
        residual = float(np.sqrt(np.mean(err ** 2)))
    found = inliers >= min(min_inliers, M)
    reason = "" if found else f"only {inliers} of {M} holes matched (need {min(min_inliers, M)})"
    return Registration(found, T, matches, inliers, residual, hypotheses, reason)


def _diameter_compatibility(d_part, d_det, M, N, gate, scale_range) -> np.ndarray:
    if d_part is None or d_det is None:
        return np.ones((M, N), dtype=bool)
    d_part = np.asarray(d_part, dtype=np.float64).reshape(-1)
    d_det = np.asarray(d_det, dtype=np.float64).reshape(-1)
    if len(d_part) != M or len(d_det) != N:
        raise ValueError(f"register: {len(d_part)} part diameters for {M} points, "
                         f"{len(d_det)} detected diameters for {N} points")
    ratio = d_det[None, :] / d_part[:, None]
    low, high = scale_range[0] / (1 + gate), scale_range[1] * (1 + gate)
    return (ratio >= low) & (ratio <= high) & np.isfinite(ratio)


def _anchor_pairs(P: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Recipe hole pairs to try, long baselines first in probability (better conditioned poses)."""
    M = len(P)
    i, j = np.triu_indices(M, k=1)
    lengths = np.linalg.norm(P[j] - P[i], axis=1)
    weights = lengths / lengths.sum() if lengths.sum() > 0 else None
    count = min(count, len(i))
    picks = rng.choice(len(i), size=count, replace=False, p=weights)
    return np.stack([i[picks], j[picks]], axis=1)


def _ransac(P, Q, radius, compat, transform, scale_range, min_inliers, max_anchors, confidence, seed):
    rng = np.random.default_rng(seed)
    M = len(P)
    dist_Q = np.linalg.norm(Q[:, None] - Q[None], axis=-1)
    tree = cKDTree(Q)
    score_radius = 2.0 * radius
    best_T, best_score, hypotheses = None, (-1, 0.0), 0
    anchors = _anchor_pairs(P, rng, max_anchors)
    needed = len(anchors)
    for tried, (i, j) in enumerate(anchors, start=1):
        if tried > needed:
            break
        d_p = np.linalg.norm(P[j] - P[i])
        if d_p <= 0:
            continue
        slack = radius[i] + radius[j]
        low = scale_range[0] * d_p - slack
        high = scale_range[1] * d_p + slack
        ok = (dist_Q >= low) & (dist_Q <= high) & compat[i][:, None] & compat[j][None, :]
        np.fill_diagonal(ok, False)
        k, l = np.nonzero(ok)
        if len(k) == 0:
            continue
        Ts = _two_point_transforms(P[i], P[j], Q[k], Q[l], transform)
        hypotheses += len(Ts)
        counts, spread = _score(Ts, P, Q, score_radius, compat, tree)
        h = int(np.lexsort((spread, -counts))[0])
        score = (int(counts[h]), -float(spread[h]))
        if score > best_score:
            best_T, best_score = Ts[h], score
            # Adaptive stop: anchors needed so that one with both holes present is tried.
            w = best_score[0] / M
            if w >= 1.0:
                break
            if w > 0 and best_score[0] >= min_inliers:
                needed = min(len(anchors), max(8, math.ceil(math.log(1 - confidence) / math.log(1 - w * w))))
    return best_T, best_score, hypotheses


def _two_point_transforms(p_i, p_j, q_k, q_l, transform) -> np.ndarray:
    """(H, 3, 3) transforms taking p_i -> q_k and p_j -> q_l (midpoint-exact, rotation by the baseline)."""
    dp = p_j - p_i
    dq = q_l - q_k
    angle = np.arctan2(dq[:, 1], dq[:, 0]) - math.atan2(dp[1], dp[0])
    scale = np.ones(len(dq))
    if transform == "similarity":
        scale = np.linalg.norm(dq, axis=1) / np.linalg.norm(dp)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    Ts = np.zeros((len(dq), 3, 3))
    Ts[:, 0, 0], Ts[:, 0, 1], Ts[:, 1, 0], Ts[:, 1, 1] = c, -s, s, c
    Ts[:, 2, 2] = 1.0
    mid_p = 0.5 * (p_i + p_j)
    mid_q = 0.5 * (q_k + q_l)
    Ts[:, :2, 2] = mid_q - np.einsum("hab,b->ha", Ts[:, :2, :2], mid_p)
    return Ts


def _score(Ts, P, Q, radius, compat, tree=None, neighbours: int = 4):
    """Per hypothesis: recipe holes with a compatible detection within radius, and their mean distance.

    A k-d tree over the detections keeps this O(H M log N) for big recipes with clutter.
    """
    H, M, N = len(Ts), len(P), len(Q)
    pred = np.einsum("hab,mb->hma", Ts[:, :2, :2], P) + Ts[:, None, :2, 2]          # (H, M, 2)
    tree = cKDTree(Q) if tree is None else tree
    k = min(neighbours, N)
    d, idx = tree.query(pred.reshape(-1, 2), k=k, distance_upper_bound=float(radius.max()))
    d, idx = d.reshape(H, M, k), idx.reshape(H, M, k)
    found = idx < N
    m_index = np.broadcast_to(np.arange(M)[None, :, None], idx.shape)
    ok = found & compat[m_index, np.minimum(idx, N - 1)] & (d <= radius[None, :, None])
    d = np.where(ok, d, np.inf).min(axis=2)                                            # (H, M)
    hit = np.isfinite(d)
    counts = hit.sum(axis=1)
    spread = np.where(hit, d, 0.0).sum(axis=1) / np.maximum(counts, 1)
    return counts, spread


def assign(pred: np.ndarray, Q: np.ndarray, radius: np.ndarray, compat: np.ndarray) -> np.ndarray:
    """One-to-one assignment of predicted recipe holes to detections within ``radius``; (M,) index or -1."""
    M = len(pred)
    matches = np.full(M, -1, dtype=np.int64)
    if M == 0 or len(Q) == 0:
        return matches
    d = np.linalg.norm(pred[:, None] - Q[None], axis=-1)
    valid = compat & (d <= radius[:, None])
    if not valid.any():
        return matches
    cost = np.where(valid, d, _FAR)
    rows, cols = linear_sum_assignment(cost)
    keep = valid[rows, cols]
    matches[rows[keep]] = cols[keep]
    return matches


def _refine(P, Q, T, radius, compat, transform, iterations: int = 6):
    min_pairs = 1 if transform == "fixed" else 2
    matches = np.full(len(P), -1, dtype=np.int64)
    for it in range(iterations):
        gate = 2.0 * radius if it == 0 else radius
        new = assign(transform_points(T, P), Q, gate, compat)
        ok = new >= 0
        if ok.sum() < min_pairs:
            break
        matches = new
        T_new = fit_transform(P[ok], Q[new[ok]], transform)
        if _same_transform(T_new, T, P) and it > 0:
            T = T_new
            break
        T = T_new
    matches = assign(transform_points(T, P), Q, radius, compat)
    return T, matches


def _same_transform(A, B, P, tol: float = 1e-6) -> bool:
    return float(np.abs(transform_points(A, P) - transform_points(B, P)).max(initial=0.0)) < tol


def alternative_poses(points_part: np.ndarray, points_det: np.ndarray, T_det_part: np.ndarray, *,
                      inlier_radius: float | np.ndarray, transform: Transform = "rigid",
                      diameters_part: np.ndarray | None = None, diameters_det: np.ndarray | None = None,
                      diameter_ratio_gate: float = 0.5, max_scale_change: float = 0.1) -> list[np.ndarray]:
    """Other poses that explain every detection in ``points_det`` as well as ``T_det_part`` does.

    ``points_det`` are the detections already matched to recipe holes. When some recipe holes are
    missing, a self-similar layout (a grid missing an end column) can fit the remaining holes in more
    than one place, and then *which* holes are missing is ambiguous. Exhaustive and deterministic: any
    pose that covers all detections maps some recipe pair onto the detections' longest pair, so every
    recipe pair is tried there. Returns distinct refined transforms (may be empty).
    """
    P = np.asarray(points_part, dtype=np.float64).reshape(-1, 2)
    Q = np.asarray(points_det, dtype=np.float64).reshape(-1, 2)
    M, N = len(P), len(Q)
    if transform == "fixed" or N < 2 or M < 2:
        return []
    radius = np.broadcast_to(np.asarray(inlier_radius, dtype=np.float64), (M,)).copy()
    scale_range = (1.0, 1.0) if transform != "similarity" else (1 - max_scale_change, 1 + max_scale_change)
    compat = _diameter_compatibility(diameters_part, diameters_det, M, N, diameter_ratio_gate, scale_range)
    dist_Q = np.linalg.norm(Q[:, None] - Q[None], axis=-1)
    k, l = np.unravel_index(np.argmax(dist_Q), dist_Q.shape)
    d_q = dist_Q[k, l]
    dist_P = np.linalg.norm(P[:, None] - P[None], axis=-1)
    slack = radius[:, None] + radius[None, :]
    ok = (dist_P * scale_range[0] - slack <= d_q) & (d_q <= dist_P * scale_range[1] + slack)
    ok &= compat[:, k][:, None] & compat[:, l][None, :]
    np.fill_diagonal(ok, False)
    i, j = np.nonzero(ok)
    if len(i) == 0:
        return []
    # Transforms taking p_i -> q_k and p_j -> q_l, one per recipe pair.
    Ts = np.stack([_two_point_transforms(P[a], P[b], Q[k][None], Q[l][None], transform)[0]
                   for a, b in zip(i, j)])
    # Keep poses under which every detection has a compatible recipe hole within the radius.
    pred = np.einsum("hab,mb->hma", Ts[:, :2, :2], P) + Ts[:, None, :2, 2]            # (H, M, 2)
    d = np.linalg.norm(pred[:, :, None, :] - Q[None, None], axis=-1)                    # (H, M, N)
    covered = (np.where(compat[None], d, np.inf) <= 2.0 * radius[None, :, None]).any(axis=1).all(axis=1)
    best_pred = transform_points(T_det_part, P)
    found: list[np.ndarray] = []
    for T in Ts[covered]:
        T, matches = _refine(P, Q, T, radius, compat, transform)
        if (matches >= 0).sum() < N:
            continue
        pred_T = transform_points(T, P)
        if np.abs(pred_T - best_pred).max() <= radius.max():
            continue                                    # the same pose
        if any(np.abs(pred_T - transform_points(F, P)).max() <= radius.max() for F in found):
            continue
        found.append(T)
    return found
