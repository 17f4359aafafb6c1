"""Hole extraction never crashes on what a weak or confused model produces: noisy, speckled, flat maps,
with a colour, grey or no image (a NaN once turned into an index and raised IndexError here)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from holevision.runtime.detections import Holes
from holevision.runtime.holes import extract_holes


@pytest.mark.parametrize("seed", range(40))
def test_noisy_probability_maps_never_raise(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(x) for x in rng.integers(8, 160, 2))
    prob = rng.random((height, width)).astype(np.float32)
    blur = int(rng.integers(0, 4))
    if blur:
        prob = cv2.GaussianBlur(prob, (0, 0), blur)
    prob = np.clip((prob - prob.min()) / (np.ptp(prob) + 1e-6), 0, 1).astype(np.float32)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if seed % 3 == 0:
        image[:] = 0            # a black frame: no gradient anywhere
    for picture in (image, image[..., 0], None):
        holes = extract_holes(prob, picture)
        assert isinstance(holes, Holes)
        assert np.all(np.isfinite(holes.centers)), "a reported hole must have a finite center"


def test_flat_maps_give_no_holes_or_one_whole_frame_region():
    image = np.full((64, 64, 3), 128, np.uint8)
    assert len(extract_holes(np.zeros((64, 64), np.float32), image)) == 0
    everything = extract_holes(np.ones((64, 64), np.float32), image)
    assert len(everything) <= 1 and (len(everything) == 0 or everything.on_border.all())
