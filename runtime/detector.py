"""`Detector`: a verified bundle + an engine + tiling + hole extraction, frame in, measured holes out.

    detector = Detector("runs/bundle")            # or Detector() for the packaged default model
    detection = detector.detect(image_bgr)        # any frame size; grey or BGR uint8
    detection.holes                               # Holes, numbered left-to-right, top-to-bottom
    detection.timings                             # seconds per stage

The service, `holevision detect`, QA recipes and evaluation all call exactly this.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from holevision.runtime.bundle import Bundle, BundleError, load_bundle
from holevision.runtime.detections import Holes
from holevision.runtime.engines import Engine, create_engine
from holevision.runtime.holes import extract_holes, warm_up_extraction
from holevision.runtime.hole_verifier import HoleVerifier
from holevision.runtime.tiling import cut_tiles, plan_tiles, stitch

log = logging.getLogger(__name__)

HOLE_CLASS = "hole"
# Detector(flips=N): the image axes flipped for each view whose probabilities are averaged.
MIRROR_VIEWS = {1: ((),), 2: ((), (1,)), 4: ((), (1,), (0,), (0, 1))}


class ImageError(ValueError):
    """A frame the detector cannot take (wrong dtype, shape, or empty)."""


@dataclass
class Detection:
    holes: Holes                              # measured holes, original pixel coordinates, ids 1..N
    width: int                                # frame size, px
    height: int
    probability: np.ndarray | None = None     # (H, W) float32 hole probability, original pixels
    timings: dict[str, float] = field(default_factory=dict)  # seconds: preprocess, model, stitch, extract


def as_bgr(image: np.ndarray, *, source: str = "image") -> np.ndarray:
    """A uint8 (H, W, 3) BGR view of a grey, BGR or BGRA uint8 frame; anything else is refused."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"{source}: frames must be uint8 (8-bit grey or BGR), got dtype {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ImageError(f"{source}: expected (H, W) grey or (H, W, 3) BGR, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"{source}: empty frame ({image.shape[1]}x{image.shape[0]})")
    return image


class Detector:
    """Finds and measures holes in frames of any size with one model bundle.

    bundle: a bundle folder, a loaded `Bundle`, or None / "default" for the packaged default model.
    engine, threads, precision, providers: see `holevision.runtime.engines.create_engine`.
    threshold / min_area_px: hole probability threshold and smallest instance; None = the bundle's
    post-processing defaults. min_diameter_px: holes measured smaller than this are dropped.
    flips: 1 (default) runs the model once per tile; 2 also on the left-right mirror image, 4 also on the
    up-down and the both-ways mirrors, and averages the probabilities (test-time augmentation): fewer false
    and missed holes for 2x or 4x the model time, for stations where accuracy matters more than latency.
    An average is less extreme than one view, so choose the threshold with the same flips (eval --sweep).
    verify: run the bundle's hole verifier (``postprocess.verifier``) on every candidate, when it has one:
    the verifier's score replaces the hole's, candidates below ``min_score`` (None: the bundle's) are
    dropped. False reports every candidate at the threshold, as a bundle without a verifier does.
    """

    def __init__(self, bundle: str | Path | Bundle | None = None, engine: str = "auto", threads: int = 0,
                 threshold: float | None = None, min_diameter_px: float = 0.0, *, precision: str = "fp32",
                 providers: list[str] | None = None, min_area_px: float | None = None, refine: bool = True,
                 keep_probability: bool = True, warm_up: bool = True, flips: int = 1, verify: bool = True,
                 min_score: float | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        manifest = self.bundle.manifest
        classes = manifest.outputs.classes
        if HOLE_CLASS not in classes:
            raise BundleError(f"{self.bundle.path / 'manifest.json'}: outputs.classes {classes} has no "
                              f"{HOLE_CLASS!r} class")
        self.hole_class = classes.index(HOLE_CLASS)
        self.engine: Engine = create_engine(self.bundle, engine, providers=providers, threads=threads,
                                            precision=precision)
        self.threshold = float(manifest.postprocess.threshold if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        self.min_area_px = float(manifest.postprocess.min_area_px if min_area_px is None else min_area_px)
        if min_diameter_px < 0:
            raise ValueError(f"min_diameter_px must be >= 0, got {min_diameter_px}")
        self.min_diameter_px = float(min_diameter_px)
        if flips not in MIRROR_VIEWS:
            raise ValueError(f"flips must be 1, 2 or 4 (mirror views averaged), got {flips!r}")
        self.flips = int(flips)
        self.refine = refine
        self.keep_probability = keep_probability
        self.batch, self.tile_height, self.tile_width = (manifest.input.batch, manifest.input.height,
                                                         manifest.input.width)
        self.overlap_px = manifest.tiling.overlap_px
        self.verifier = self._load_verifier(min_score) if verify else None
        if warm_up:
            # The model's first runs, and the first extraction (compiled kernels load or compile).
            self.warm_up_s = self.engine.warm_up() + warm_up_extraction()

    def _load_verifier(self, min_score: float | None) -> HoleVerifier | None:
        spec = self.bundle.manifest.postprocess.verifier
        if spec is None:
            if min_score is not None:
                raise BundleError(f"{self.bundle.path / 'manifest.json'}: min_score is the cut of a hole verifier and "
                                  f"this bundle has none (holevision train-verifier adds one)")
            return None
        context = None if spec.context_file is None else self.bundle.path / spec.context_file
        return HoleVerifier(self.bundle.path / spec.file, min_score=spec.min_score if min_score is None else min_score,
                            crop_px=spec.crop_px, span=spec.span, context=context,
                            context_max_shift=spec.context_max_shift)

    def extract(self, probability: np.ndarray, image: np.ndarray, timings: dict[str, float] | None = None) -> Holes:
        """Post-processing alone: the measured holes of a probability map (then the bundle's verifier, when
        it has one and ``verify`` is on). The free-running pipeline calls this apart from the model.
        ``timings``: gets the seconds of "extract" and, with a verifier, of "verify"."""
        timings = {} if timings is None else timings
        start = time.perf_counter()
        holes = extract_holes(probability, image, threshold=self.threshold, min_area_px=self.min_area_px,
                              refine=self.refine, min_diameter_px=self.min_diameter_px)
        timings["extract"] = time.perf_counter() - start
        if self.verifier is None:
            return holes
        start = time.perf_counter()
        holes = self.verifier(holes, probability, image)
        timings["verify"] = time.perf_counter() - start
        return holes

    @property
    def model_name(self) -> str:
        return self.bundle.manifest.name

    @property
    def model_sha256(self) -> str:
        return self.bundle.sha256

    def probability(self, image_bgr: np.ndarray, timings: dict[str, float] | None = None) -> np.ndarray:
        """(H, W) float32 hole probability of a frame of any size, in its original pixels (the mean over
        ``flips`` mirror views)."""
        timings = {} if timings is None else timings
        image = as_bgr(image_bgr)
        total = None
        for axes in MIRROR_VIEWS[self.flips]:
            view_timings: dict[str, float] = {}
            probability = self._probability_once(np.flip(image, axes) if axes else image, view_timings)
            probability = np.flip(probability, axes) if axes else probability
            total = probability if total is None else total + probability
            for stage, seconds in view_timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        if self.flips == 1:
            return total
        return np.ascontiguousarray(total / np.float32(self.flips))

    def _probability_once(self, image: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        start = time.perf_counter()
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        plan = plan_tiles(height, width, self.tile_height, self.tile_width, self.overlap_px)
        tiles = cut_tiles(image, plan)
        timings["preprocess"] = time.perf_counter() - start
        start = time.perf_counter()
        maps = []
        name = self.bundle.manifest.outputs.probabilities
        for first in range(0, len(tiles), self.batch):
            chunk = tiles[first:first + self.batch]
            if len(chunk) < self.batch:
                chunk = np.concatenate([chunk, np.zeros((self.batch - len(chunk), *chunk.shape[1:]), np.uint8)])
            out = self.engine.run(chunk)[name]
            maps.append(out[:, self.hole_class:self.hole_class + 1])
        maps = np.concatenate(maps)[:len(tiles)].astype(np.float32, copy=False)
        timings["model"] = time.perf_counter() - start
        start = time.perf_counter()
        if maps.shape[2:] != (self.tile_height, self.tile_width):
            # Output at a stride: bring each tile's map back to input pixels before stitching.
            maps = np.stack([cv2.resize(m[0], (self.tile_width, self.tile_height), interpolation=cv2.INTER_LINEAR)
                             for m in maps])[:, None]
        probability = stitch(maps, plan)[0]
        timings["stitch"] = time.perf_counter() - start
        return probability

    def detect(self, image_bgr: np.ndarray) -> Detection:
        """Holes in one frame: probability map -> instances -> subpixel edge fit (-> verifier) -> numbered Holes."""
        timings: dict[str, float] = {}
        image = as_bgr(image_bgr) if np.asarray(image_bgr).ndim != 2 else np.asarray(image_bgr)
        probability = self.probability(image, timings)
        holes = self.extract(probability, image, timings)
        return Detection(holes=holes, width=int(image.shape[1]), height=int(image.shape[0]),
                         probability=probability if self.keep_probability else None, timings=timings)
