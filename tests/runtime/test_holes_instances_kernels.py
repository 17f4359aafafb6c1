"""The compiled kernels of holes.instances give what OpenCV gave before them.

find_instances used to label with cv2.connectedComponents, fill and measure each region with
cv2.findContours / drawContours / moments / convexHull / contourArea / mean. Its kernels reproduce
those results exactly (numbering order included); each is checked here against OpenCV on awkward
shapes: rings (gaps to fill), spurs and one-pixel-wide necks, diagonal-only connections, single
pixels, lines, regions inside other regions' gaps, shapes cut by the border.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from holevision.runtime.holes import instances


def _padded(mask: np.ndarray) -> np.ndarray:
    """The kernels' binary map: 0/1 uint8, width padded with zeros to a multiple of 8."""
    height, width = mask.shape
    out = np.zeros((height, -(-width // 8) * 8), np.uint8)
    out[:, :width] = mask
    return out


def _awkward_mask(rng, shape) -> np.ndarray:
    """Random blobs, rings, thin lines, diagonal chains and isolated pixels."""
    mask = (cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 2.0) > 0.52).astype(np.uint8)
    height, width = shape
    for _ in range(12):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(mask, centre, int(rng.integers(2, 25)), 1, int(rng.integers(1, 3)))
        cv2.line(mask, centre, (int(rng.integers(0, width)), int(rng.integers(0, height))), 1, 1)
    mask[rng.random(shape) > 0.995] = 1                  # isolated pixels
    mask[rng.random(shape) > 0.99] = 0                   # pinholes
    for k in range(10):                                  # diagonal chains (8-connected only)
        mask[np.arange(5 + k, 15 + k), np.arange(20 + 3 * k, 30 + 3 * k) % width] = 1
    return mask


@pytest.mark.parametrize("shape", [(1200, 1920), (1023, 1281), (517, 514), (5, 3)])
def test_coarse_any_is_a_block_max_pool_of_the_thresholded_map(shape):
    rng = np.random.default_rng(shape[1])
    prob = rng.random(shape).astype(np.float32)
    height, width = shape
    for low in (np.float32(0.999), np.float32(0.5)):
        mask = (prob >= low).astype(np.uint8)
        padded = cv2.copyMakeBorder(mask, 0, -height % 4, 0, -width % 4, cv2.BORDER_CONSTANT, value=0)
        expected = padded.reshape(padded.shape[0] // 4, 4, padded.shape[1] // 4, 4).max(axis=(1, 3))
        found = instances._coarse_any(prob, low)
        assert found.shape[1] % 8 == 0 and not found[:, expected.shape[1]:].any()
        assert np.array_equal(found[:, :expected.shape[1]], expected)
    # A strided view gives the same as a copy.
    view = prob[:, 1:]
    assert np.array_equal(instances._coarse_any(view, np.float32(0.9)),
                          instances._coarse_any(np.ascontiguousarray(view), np.float32(0.9)))


@pytest.mark.parametrize("seed, shape", [(1, (300, 400)), (2, (97, 131)), (3, (64, 64)), (4, (1, 9)), (5, (9, 1))])
def test_label_matches_opencv_numbering_and_stats(seed, shape):
    rng = np.random.default_rng(seed)
    mask = _awkward_mask(rng, shape) if min(shape) > 30 else (rng.random(shape) > 0.5).astype(np.uint8)
    runs, row_runs, roots, stats = instances._label(_padded(mask))
    count, labels, cv_stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    assert len(roots) == count - 1
    assert np.array_equal(stats[:, :5], cv_stats[1:])          # same order, boxes and areas
    for k in range(count - 1):
        x, y, w, h = stats[k, :4]
        region = instances._region(runs, row_runs, roots[k], x, y, w, h)
        assert np.array_equal(region, labels[y:y + h, x:x + w] == k + 1)
        assert labels[stats[k, 6], stats[k, 5]] == k + 1          # the pixel given is the component's
        assert instances._root_at(runs, row_runs, stats[k, 6], stats[k, 5]) == roots[k]


def test_label_of_an_empty_map():
    runs, row_runs, roots, stats = instances._label(np.zeros((4, 8), np.uint8))
    assert len(runs) == 0 and len(roots) == 0 and stats.shape == (0, 7)


def _opencv_shape(region: np.ndarray, crop: np.ndarray):
    """What find_instances computed before: the region's gaps filled by drawing its outer contour,
    cv2.moments of the result, the outer contour's solidity, cv2.mean of the probability over it."""
    region_u8 = region.astype(np.uint8)
    contours, _ = cv2.findContours(region_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = region_u8.copy()
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    moments = cv2.moments(filled, binaryImage=True)
    outline = max(contours, key=len)
    hull = cv2.contourArea(cv2.convexHull(outline))
    solidity = 1.0 if hull <= 0 else min(cv2.contourArea(outline) / hull, 1.0)
    measures = (moments["m00"], moments["m10"], moments["m01"], moments["mu20"], moments["mu11"], moments["mu02"],
                solidity, cv2.mean(crop, mask=filled)[0])
    return filled.astype(bool), measures


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_shape_matches_opencv_exactly(seed):
    rng = np.random.default_rng(seed)
    mask = _awkward_mask(rng, (240, 320))
    prob = rng.random(mask.shape).astype(np.float32)
    runs, row_runs, roots, stats = instances._label(_padded(mask))
    with_gaps = 0
    for k in range(len(roots)):
        x, y, w, h = stats[k, :4]
        region = instances._region(runs, row_runs, roots[k], x, y, w, h)
        crop = prob[y:y + h, x:x + w]
        filled, measures = instances._shape(region, crop, int(region.sum()))
        expected_filled, expected = _opencv_shape(region, crop)
        assert np.array_equal(filled, expected_filled)
        assert measures == expected                       # bit for bit
        with_gaps += int(filled.sum() > region.sum())
    assert with_gaps >= 5 and len(roots) >= 50            # both ways through _shape were taken


@pytest.mark.parametrize("pattern", [
    ["1"], ["11"], ["1", "1"], ["10", "01"], ["01", "10"], ["111", "101", "111"], ["010", "101", "010"],
    ["1111", "1001", "1001", "1111"], ["11100", "10100", "11111", "00101", "00111"],   # two loops, one pixel apart
    ["10001", "01010", "00100", "01010", "10001"], ["11111", "00100", "00100"], ["10000", "10000", "10000", "11111"],
    ["0110", "1001", "0110"], ["111", "100", "111", "001", "111"],
])
def test_shape_on_small_patterns(pattern):
    region = np.array([[c == "1" for c in row] for row in pattern])
    crop = np.linspace(0.1, 0.9, region.size, dtype=np.float32).reshape(region.shape)
    filled, measures = instances._shape(region, crop, int(region.sum()))
    expected_filled, expected = _opencv_shape(region, crop)
    assert np.array_equal(filled, expected_filled)
    assert measures == expected


def _scene(rng, shape, count):
    prob = np.zeros(shape, np.float32)
    height, width = shape
    for _ in range(count):
        centre = (int(rng.integers(-5, width + 5)), int(rng.integers(-5, height + 5)))
        radius = int(rng.integers(2, 30))
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.circle(prob, centre, radius, 1.0, -1)
        elif kind == 1:                                   # a ring, sometimes with a disc in it
            cv2.circle(prob, centre, radius, 1.0, 2)
            if rng.random() < 0.5:
                cv2.circle(prob, centre, max(radius // 3, 1), 1.0, -1)
        elif kind == 2:                                   # touching discs
            cv2.circle(prob, centre, radius, 1.0, -1)
            cv2.circle(prob, (centre[0] + int(1.6 * radius), centre[1]), radius, 1.0, -1)
        else:                                             # an arc (not a hole)
            cv2.ellipse(prob, centre, (radius, radius), 0, 0, float(rng.uniform(60, 300)), 1.0, 2)
    return cv2.GaussianBlur(prob, (0, 0), 1.0)


def _as_set(found, dx=0, dy=0):
    return sorted((int(x) - dx, int(y) - dy, int(w), int(h), float(a), float(s), float(q))
                  for (x, y, w, h), a, s, q in zip(found.boxes, found.areas, found.scores, found.solidity))


@pytest.mark.parametrize("kwargs", [dict(), dict(shape_filter=True, low_threshold=0.3),
                                    dict(shape_filter=True), dict(split_touching=False)])
def test_coarse_to_fine_finds_what_whole_frame_labelling_finds(kwargs):
    """A small scene alone (labelled whole) and inside a large empty frame (coarse-to-fine): the
    same instances, at the same places relative to the scene."""
    rng = np.random.default_rng(21)
    small = np.zeros((300, 400), np.float32)
    small[3:-3, 3:-3] = _scene(rng, (294, 394), 40)     # nothing cut by the small frame's border
    large = np.zeros((900, 1300), np.float32)
    large[201:501, 303:703] = small
    assert small.size < instances.COARSE_MIN_PIXELS <= large.size
    alone = instances.find_instances(small, min_area_px=1.0, **kwargs)
    inside = instances.find_instances(large, min_area_px=1.0, **kwargs)
    assert len(alone) >= 10
    assert _as_set(alone) == _as_set(inside, 303, 201)
    for found in (alone, inside):
        for (x, y, w, h), mask in zip(found.boxes, found.masks):
            assert mask.shape == (h, w) and mask.dtype == bool
            assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()


def test_touching_discs_are_split_and_filled_rings_kept_whole():
    prob = np.zeros((200, 300), np.float32)
    cv2.circle(prob, (60, 100), 25, 1.0, -1)
    cv2.circle(prob, (103, 100), 20, 1.0, -1)            # touches the first
    cv2.circle(prob, (220, 100), 30, 1.0, 3)             # a ring: filled, one instance
    found = instances.find_instances(cv2.GaussianBlur(prob, (0, 0), 1.0))
    assert len(found) == 3
    order = np.argsort(found.centroids[:, 0])
    assert np.abs(found.centroids[order, 0] - [60, 103, 220]).max() < 2.5
    assert found.areas[order[2]] > 0.95 * np.pi * 30 ** 2    # filled (the ring alone: ~0.2 of it)
    assert np.all(found.solidity > 0.9)


def test_threshold_compares_in_the_maps_precision():
    """numpy compares a float32 map with a Python float in float32: float32(0.9) < 0.9 counts."""
    prob = np.zeros((40, 40), np.float32)
    prob[10:20, 10:20] = np.float32(0.9)
    assert len(instances.find_instances(prob, threshold=0.9)) == 1
    assert len(instances.find_instances(prob.astype(np.float64), threshold=0.9)) == 0


def test_shape_filter_falls_back_to_the_parts_above_threshold():
    """A streak above the low threshold joining two holes is not hole-like; the holes (above the
    threshold) are kept, the streak dropped."""
    prob = np.zeros((120, 300), np.float32)
    cv2.line(prob, (20, 60), (280, 60), 0.4, 3)
    cv2.circle(prob, (80, 60), 12, 1.0, -1)
    cv2.circle(prob, (200, 60), 9, 1.0, -1)
    found = instances.find_instances(prob, threshold=0.5, low_threshold=0.3, shape_filter=True)
    assert len(found) == 2
    assert np.abs(np.sort(found.centroids[:, 0]) - [80, 200]).max() < 0.5
    assert found.boxes[:, 2].max() < 30
    unfiltered = instances.find_instances(prob, threshold=0.5, low_threshold=0.3)
    assert unfiltered.boxes[:, 2].max() > 100                # the streak stays in
