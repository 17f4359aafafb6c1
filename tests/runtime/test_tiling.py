"""Padding and tiling: frames of any size, holes across seams found once and measured as untiled."""

from __future__ import annotations

import numpy as np
import pytest

from holevision.runtime.benchmarks.hole_scenes import render_holes
from holevision.runtime.detector import Detector
from holevision.runtime.tiling import TilingError, cut_tiles, plan_tiles, stitch


@pytest.mark.parametrize("height, width", [(50, 70), (128, 128), (129, 300), (1200, 1920), (2048, 2448)])
def test_plan_covers_the_frame_with_the_requested_overlap(height, width):
    plan = plan_tiles(height, width, 128, 128, 32)
    covered = np.zeros((plan.padded_height, plan.padded_width), int)
    for y, x in plan.origins:
        covered[y:y + 128, x:x + 128] += 1
        assert y + 128 <= plan.padded_height and x + 128 <= plan.padded_width
    assert covered[:height, :width].min() >= 1
    ys = sorted({y for y, _ in plan.origins})
    xs = sorted({x for _, x in plan.origins})
    for origins in (ys, xs):
        for a, b in zip(origins, origins[1:]):
            assert 128 - (b - a) >= 32, "neighbouring tiles overlap by at least overlap_px"


def test_cut_then_stitch_of_a_per_pixel_map_is_the_identity():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (300, 410, 3), dtype=np.uint8)
    plan = plan_tiles(300, 410, 128, 128, 40)
    tiles = cut_tiles(frame, plan)
    assert tiles.shape == (len(plan), 128, 128, 3)
    maps = tiles[..., :2].transpose(0, 3, 1, 2).astype(np.float32)
    stitched = stitch(maps, plan)
    assert stitched.shape == (2, 300, 410)
    assert np.allclose(stitched, frame[..., :2].transpose(2, 0, 1), atol=1e-3)


def test_small_frames_are_padded_never_resized():
    frame = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    plan = plan_tiles(40, 60, 64, 96, 16)
    assert len(plan) == 1
    tile = cut_tiles(frame, plan)[0]
    assert tile.shape == (64, 96, 3)
    assert np.array_equal(tile[:40, :60], frame)
    stitched = stitch(tile[None].transpose(0, 3, 1, 2).astype(np.float32), plan)
    assert stitched.shape == (3, 40, 60)


def test_bad_plans_and_maps_raise():
    with pytest.raises(TilingError, match="overlap"):
        plan_tiles(500, 500, 64, 64, 64)
    plan = plan_tiles(200, 200, 64, 64, 16)
    with pytest.raises(TilingError, match="tile maps"):
        stitch(np.zeros((1, 1, 64, 64), np.float32), plan)
    with pytest.raises(TilingError, match="frame is"):
        cut_tiles(np.zeros((100, 100, 3), np.uint8), plan)


def test_hole_across_a_seam_is_found_once_and_measured_as_untiled(make_bundle):
    tiled = Detector(make_bundle(height=128, width=128, overlap_px=32))
    untiled = Detector(make_bundle(height=512, width=512, overlap_px=32))
    plan = plan_tiles(300, 420, 128, 128, 32)
    ys = sorted({y for y, _ in plan.origins})
    xs = sorted({x for _, x in plan.origins})
    # One hole centred on a vertical seam, one on a horizontal seam, one on a 4-tile corner.
    seam_x = (xs[1] + xs[0] + 128) / 2
    seam_y = (ys[1] + ys[0] + 128) / 2
    centers = np.array([[seam_x + 0.3, 60.7], [250.2, seam_y - 0.4], [(xs[2] + xs[1] + 128) / 2, seam_y + 0.2]])
    diameters = np.array([40.0, 26.0, 52.0])
    scene = render_holes((420, 300), centers, diameters, seed=11, color=True)
    a = tiled.detect(scene.image).holes
    b = untiled.detect(scene.image).holes
    assert len(a) == len(b) == 3, "each hole across a seam is found exactly once"
    assert np.abs(a.centers - b.centers).max() < 0.1
    assert np.abs(a.diameters_px - b.diameters_px).max() < 0.1
    for center, diameter in zip(centers, diameters):
        k = int(np.argmin(np.linalg.norm(a.centers - center, axis=1)))
        assert np.linalg.norm(a.centers[k] - center) < 0.05
        assert abs(a.diameters_px[k] - diameter) < 0.1
