"""A second look at every hole the model proposes: `HoleVerifier` keeps real holes, drops look-alikes.

The segmentation model marks pixels; one threshold on its probability trades missed holes (a real hole
the model is unsure of, p 0.4-0.9) against false ones (a pit, a screw head, a shadow). A bundle may carry
a small verifier (``verifier.onnx``, trained by ``holevision train-verifier``) that judges each candidate
found at the bundle's (low) threshold as a whole: a crop around the hole scaled to its size, of the
grey image and of the probability map, plus the hole's measurements. Its output, a per-hole
probability that this is a hole, replaces the hole's score; holes below ``min_score`` are dropped. A
verifier may have a second pass (``context.onnx``, hole_context.py) that rescores each candidate next to
the other candidates of its frame; its score is then the one cut and reported.

Pure functions build the verifier's inputs (`verifier_inputs`); `HoleVerifier` runs the ONNX file with
onnxruntime. Training uses the same `verifier_inputs`, so what it learns is what the line computes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from holevision.runtime.detections import Holes
from holevision.runtime.hole_context import MAX_SHIFT_LOGITS, ContextRescorer
from holevision.runtime.small_onnx import small_model_session

# The measurements fed next to the crops, in this order (the ONNX input "measures").
MEASURES = ("score", "log_diameter_px", "circularity", "fit_residual_px", "no_fit", "refined", "on_border")
CROP_INPUT, MEASURES_INPUT, SCORE_OUTPUT = "crops", "measures", "score"
GREY_NORMALISATION_FLOOR = 0.02   # a flat crop is not blown up into noise
SMALLEST_DIAMETER_PX = 2.0        # the crop of a tinier hole spans at least span x this
MAX_CROPS_PER_REMAP = 512         # cv2.remap maps hold fewer than 32768 rows


def hole_measures(holes: Holes) -> np.ndarray:
    """(N, len(MEASURES)) float32: what extraction measured of each hole (see MEASURES)."""
    residual = np.asarray(holes.fit_residual, np.float64)
    no_fit = ~np.isfinite(residual)
    columns = [holes.scores, np.log(np.maximum(holes.diameters_px, 1e-3)), holes.circularity,
               np.where(no_fit, -1.0, residual), no_fit, holes.refined, holes.on_border]
    return np.stack([np.asarray(c, np.float64) for c in columns], axis=1).astype(np.float32).reshape(-1, len(MEASURES))


def hole_crops(holes: Holes, probability: np.ndarray, image: np.ndarray, crop_px: int, span: float) -> np.ndarray:
    """(N, 2, crop_px, crop_px) float32: around each hole, ``span`` x its diameter scaled to ``crop_px``.

    ``image``: the uint8 frame, grey (H, W) or BGR (H, W, 3). Channel 0: the grey image, standardised
    per crop (mean 0, std ~1, as levels in 0..1 divided by std + GREY_NORMALISATION_FLOOR: lighting does
    not matter); channel 1: the model's hole probability. The hole's center is the crop's center.
    Sampling is bilinear, mirrored at the frame's edge for the image and 0 outside it for the probability.
    All crops are sampled by one ``cv2.remap`` per channel, and a BGR frame is sampled as it is, only the
    crops made grey: a Python loop of warps and per-crop statistics cost 0.1-0.2 ms per hole, and a grey
    copy of a 1280x1024 frame 0.55 ms, more than all 20 crops of such a frame now take (0.36-0.42 ms).
    """
    count = len(holes)
    crops = np.zeros((count, 2, crop_px, crop_px), np.float32)
    if count == 0:
        return crops
    probability = np.asarray(probability, np.float32)
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"hole crops need a uint8 grey (H, W) or BGR (H, W, 3) frame, got {image.dtype} "
                         f"{image.shape}")
    centers = np.asarray(holes.centers, np.float64).reshape(-1, 2)
    scale = crop_px / (span * np.maximum(np.asarray(holes.diameters_px, np.float64), SMALLEST_DIAMETER_PX))
    steps = (np.arange(crop_px) - (crop_px / 2 - 0.5))[None, :] / scale[:, None]          # (N, S) source px
    for first in range(0, count, MAX_CROPS_PER_REMAP):
        rows = slice(first, first + MAX_CROPS_PER_REMAP)
        n = len(centers[rows])
        map_u = np.broadcast_to((centers[rows, 0, None] + steps[rows])[:, None, :], (n, crop_px, crop_px))
        map_v = np.broadcast_to((centers[rows, 1, None] + steps[rows])[:, :, None], (n, crop_px, crop_px))
        map_u = map_u.reshape(n * crop_px, crop_px).astype(np.float32)
        map_v = map_v.reshape(n * crop_px, crop_px).astype(np.float32)
        patch = cv2.remap(image, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        patch = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY) if patch.ndim == 3 else patch
        patch = patch.reshape(n, crop_px * crop_px).astype(np.float32) / np.float32(255.0)
        patch -= patch.mean(axis=1, keepdims=True)
        patch /= np.sqrt(np.mean(patch * patch, axis=1, keepdims=True)) + np.float32(GREY_NORMALISATION_FLOOR)
        crops[rows, 0] = patch.reshape(n, crop_px, crop_px)
        crops[rows, 1] = cv2.remap(probability, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=0.0).reshape(n, crop_px, crop_px)
    return crops


def verifier_inputs(holes: Holes, probability: np.ndarray, image: np.ndarray, crop_px: int,
                    span: float) -> dict[str, np.ndarray]:
    """The verifier's two inputs for these holes: {"crops": (N, 2, S, S), "measures": (N, M)}."""
    return {CROP_INPUT: hole_crops(holes, probability, image, crop_px, span),
            MEASURES_INPUT: hole_measures(holes)}


def keep_verified(holes: Holes, scores: np.ndarray, min_score: float) -> Holes:
    """The holes scoring at least ``min_score``, their scores replaced by the verifier's, renumbered 1..N."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != len(holes):
        raise ValueError(f"{len(scores)} verifier scores for {len(holes)} holes")
    rescored = holes[np.arange(len(holes))]
    rescored.scores = scores
    kept = rescored[scores >= min_score]
    kept.ids = np.arange(1, len(kept) + 1, dtype=np.int64)
    return kept


class HoleVerifier:
    """Runs a bundle's ``verifier.onnx`` (``postprocess.verifier`` in its manifest) on candidate holes."""

    def __init__(self, path: str | Path, *, min_score: float, crop_px: int, span: float, threads: int = 1,
                 context: str | Path | None = None, context_max_shift: float = MAX_SHIFT_LOGITS):
        self.path = Path(path)
        self.session = small_model_session(self.path, threads)
        names = {i.name for i in self.session.get_inputs()}
        if names != {CROP_INPUT, MEASURES_INPUT}:
            raise ValueError(f"{self.path}: a hole verifier takes inputs {CROP_INPUT!r} and {MEASURES_INPUT!r}, "
                             f"this file takes {sorted(names)}")
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"{self.path}: min_score must be in (0, 1), got {min_score}")
        self.min_score, self.crop_px, self.span = float(min_score), int(crop_px), float(span)
        self.context = None if context is None else ContextRescorer(context, threads=threads,
                                                                    max_shift=context_max_shift)

    def crop_scores(self, holes: Holes, probability: np.ndarray, image: np.ndarray) -> np.ndarray:
        """(N,) the first pass: each candidate's probability of being a hole from its crops and measures."""
        if len(holes) == 0:
            return np.zeros(0)
        inputs = verifier_inputs(holes, probability, image, self.crop_px, self.span)
        return self.session.run([SCORE_OUTPUT], inputs)[0].astype(np.float64).reshape(-1)

    def scores(self, holes: Holes, probability: np.ndarray, image: np.ndarray) -> np.ndarray:
        """(N,) probability that each candidate is a hole: the crop pass, then the context pass if any.
        ``holes`` are all the candidates of one frame (the context pass compares them)."""
        scores = self.crop_scores(holes, probability, image)
        return scores if self.context is None or len(holes) == 0 else self.context.scores(holes, scores)

    def __call__(self, holes: Holes, probability: np.ndarray, image: np.ndarray,
                 min_score: float | None = None) -> Holes:
        """The candidates the verifier accepts, scored by it and renumbered."""
        if len(holes) == 0:
            return holes
        cut = self.min_score if min_score is None else float(min_score)
        return keep_verified(holes, self.scores(holes, probability, image), cut)
