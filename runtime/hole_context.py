"""The verifier's second pass: each candidate judged again next to the other candidates of its frame.

The crop verifier (hole_verifier.py) sees one hole at a time. Drilled holes come in sets: a bolt circle,
a row, a grid, all of one size, while a look-alike (a dark dot, a washer, a screw head) is often alone.
So after the crop verifier has scored every candidate of a frame, a small network (``context.onnx``,
trained by ``holevision train-verifier --context-data``) rescores each one from its own scores and
those of its siblings, the candidates of about its size (diameters within SIBLING_RATIO): how many
there are, how many the crop verifier accepted, the best and the median of their scores. It may move a
crop score by at most MAX_SHIFT_LOGITS, so a lone hole the crop verifier is sure of is kept.

`context_features` is pure computation on the candidates and their crop-verifier scores; training and
the line use it alike. `ContextRescorer` runs the ONNX file with onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from holevision.runtime.detections import Holes
from holevision.runtime.small_onnx import small_model_session

# The features, in this order (the ONNX input "features"; see context_features).
CONTEXT_FEATURES = ("verifier_logit", "score_logit", "log_diameter_px", "on_border", "log1p_siblings",
                    "log1p_siblings_accepted", "siblings_best_logit", "siblings_median_logit",
                    "log1p_others_accepted")
FEATURES_INPUT, SCORE_OUTPUT = "features", "score"
SIBLING_RATIO = 1.25     # another candidate is a sibling when the diameters differ by less than this factor
# The context pass moves a candidate's crop score by at most this many logits (bundle: context_max_shift).
# It learns how often a candidate without siblings is a look-alike on the images it was fitted on; a part
# with one hole, or holes all of different sizes, must not lose a hole the crop pass is sure of (crop 0.9
# alone: 0.49 unbounded, 0.67 with 1.5). On the synthetic sets the bound costs < 0.002 F1.
MAX_SHIFT_LOGITS = 1.5
ACCEPTED = 0.5           # a crop-verifier score this high counts as accepted (a feature, not the cut)
_LOGIT_CLIP = 1e-4       # scores are clipped to [c, 1 - c] before the logit: +-9.2 at most


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(p / (1.0 - p))


def bounded_scores(crop_scores: np.ndarray, context_scores: np.ndarray, max_shift: float) -> np.ndarray:
    """The context scores, kept within ``max_shift`` logits of the crop scores (both (N,) probabilities)."""
    crop, context = _logit(crop_scores), _logit(context_scores)
    return 1.0 / (1.0 + np.exp(-(crop + np.clip(context - crop, -max_shift, max_shift))))


def context_features(holes: Holes, verifier_scores: np.ndarray) -> np.ndarray:
    """(N, len(CONTEXT_FEATURES)) float32 for the N candidates of one frame and their crop-verifier scores.

    A candidate without siblings gets 0 siblings and the lowest logit (-9.2) for their best and median
    score. ``holes.scores`` must still be the model's (mean hole probability), not the verifier's.
    """
    v = np.asarray(verifier_scores, np.float64).reshape(-1)
    n = len(holes)
    if len(v) != n:
        raise ValueError(f"{len(v)} verifier scores for {n} candidates")
    features = np.zeros((n, len(CONTEXT_FEATURES)), np.float32)
    if n == 0:
        return features
    log_d = np.log(np.maximum(np.asarray(holes.diameters_px, np.float64), 1e-3))
    siblings = np.abs(log_d[:, None] - log_d[None, :]) < np.log(SIBLING_RATIO)
    np.fill_diagonal(siblings, False)
    accepted = v >= ACCEPTED
    count = siblings.sum(axis=1)
    # Each row's sibling scores sorted first, the others (+inf) after: the best is the last of the
    # first ``count``, the median the middle of them (sorting beats numpy's nan-aware reductions 10x).
    ordered = np.sort(np.where(siblings, v[None, :], np.inf), axis=1)
    rows, has = np.arange(n), count > 0
    last, low, high = np.maximum(count - 1, 0), np.maximum(count - 1, 0) // 2, count // 2
    best = np.where(has, ordered[rows, last], 0.0)
    median = np.where(has, (ordered[rows, low] + ordered[rows, np.minimum(high, n - 1)]) / 2, 0.0)
    features[:, 0] = _logit(v)
    features[:, 1] = _logit(holes.scores)
    features[:, 2] = log_d
    features[:, 3] = np.asarray(holes.on_border, np.float64)
    features[:, 4] = np.log1p(count)
    features[:, 5] = np.log1p((siblings & accepted[None, :]).sum(axis=1))
    features[:, 6] = _logit(best)
    features[:, 7] = _logit(median)
    features[:, 8] = np.log1p(accepted.sum() - accepted)
    return features


class ContextRescorer:
    """Runs a bundle's ``context.onnx`` (``postprocess.verifier.context_file``): features -> hole probability."""

    def __init__(self, path: str | Path, threads: int = 1, max_shift: float = MAX_SHIFT_LOGITS):
        if not max_shift > 0:
            raise ValueError(f"{path}: the context pass's max shift must be > 0 logits, got {max_shift}")
        self.max_shift = float(max_shift)
        self.path = Path(path)
        self.session = small_model_session(self.path, threads)
        inputs = self.session.get_inputs()
        if [i.name for i in inputs] != [FEATURES_INPUT] or inputs[0].shape[-1] != len(CONTEXT_FEATURES):
            raise ValueError(f"{self.path}: a context rescorer takes one input {FEATURES_INPUT!r} of "
                             f"{len(CONTEXT_FEATURES)} features ({', '.join(CONTEXT_FEATURES)}); this file takes "
                             f"{[(i.name, i.shape) for i in inputs]}")

    def scores(self, holes: Holes, verifier_scores: np.ndarray) -> np.ndarray:
        """(N,) probability that each candidate is a hole, given its frame's other candidates: the
        network's score, within ``max_shift`` logits of the crop pass's (bounded_scores)."""
        if len(holes) == 0:
            return np.zeros(0)
        features = context_features(holes, verifier_scores)
        scores = self.session.run([SCORE_OUTPUT], {FEATURES_INPUT: features})[0].astype(np.float64).reshape(-1)
        return bounded_scores(verifier_scores, scores, self.max_shift)
