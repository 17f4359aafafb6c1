"""Training views: the mask moves with the image; the light preset copies pixels without resampling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from holevision.export.augment import AUGMENT_PRESETS, AugmentConfig, augment_pair
from holevision.export.train import TrainConfig

NO_LIGHT_CHANGE = dict(brightness=0.0, contrast=(1.0, 1.0), blur_probability=0.0, noise_sigma=0.0)


def coordinate_image(height: int, width: int) -> np.ndarray:
    """Each pixel's own (x, y) in its colour: B = x, G = y, R = 0 (sizes below 256)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)


def test_the_light_preset_copies_whole_pixels_and_their_labels():
    height, width, size = 96, 160, 64
    image = coordinate_image(height, width)
    mask = ((np.arange(width)[None, :] * 7 + np.arange(height)[:, None] * 3) % 5 == 0).astype(np.uint8)
    config = dataclasses.replace(AUGMENT_PRESETS["light"], **NO_LIGHT_CHANGE)
    assert config.pixel_exact
    turned = 0
    for seed in range(12):
        view, view_mask = augment_pair(image, mask, size, np.random.default_rng(seed), config)
        xs, ys = view[..., 0].astype(int), view[..., 1].astype(int)
        # Every output pixel is one source pixel (no blend of neighbours), and carries that pixel's label.
        np.testing.assert_array_equal(view_mask, mask[ys, xs])
        # Neighbours in the view are neighbours in the source: a flip, a quarter turn and a shift only.
        step_right = np.stack([np.diff(xs, axis=1), np.diff(ys, axis=1)], -1).reshape(-1, 2)
        assert len(np.unique(step_right, axis=0)) == 1
        assert np.abs(step_right[0]).sum() == 1
        turned += int(step_right[0][1] != 0)
    assert 0 < turned < 12  # some views are quarter-turned, some are not


def test_the_full_preset_resamples_but_keeps_mask_and_image_together():
    height, width, size = 128, 128, 96
    image = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[40:80, 50:90] = 1
    image[mask == 1] = 200
    config = dataclasses.replace(AUGMENT_PRESETS["full"], **NO_LIGHT_CHANGE)
    assert not config.pixel_exact
    for seed in range(6):
        view, view_mask = augment_pair(image, mask, size, np.random.default_rng(seed), config)
        inside, outside = view[..., 0][view_mask == 1], view[..., 0][view_mask == 0]
        if len(inside):
            assert np.median(inside) == 200 and np.median(outside) == 0


def test_an_unknown_preset_is_refused_by_name():
    with pytest.raises(ValueError, match="augment must be one of full, light"):
        TrainConfig(data="d", out="o", augment="heavy")


def test_the_default_preset_is_the_full_one():
    assert TrainConfig(data="d", out="o").augment == "full"
    assert AUGMENT_PRESETS["full"] == AugmentConfig()
