"""The numbered overlay: every hole outlined and labelled; QA statuses coloured; legend below."""

from __future__ import annotations

import numpy as np
import pytest

from holevision.runtime.detections import Holes
from holevision.runtime.overlay import DETECTED, STATUS_COLOURS, OverlayError, draw_overlay


def _holes():
    return Holes(centers=[[40.0, 30.0], [120.0, 35.0]], axes=[[20.0, 20.0], [30.0, 24.0]], angles=[0.0, 15.0],
                 scores=[0.9, 0.8], on_border=[False, True])


def _has_colour(image, colour) -> bool:
    return bool(np.any(np.all(image == np.array(colour, np.uint8), axis=2)))


def test_holes_are_outlined_and_the_frame_keeps_its_coordinates():
    frame = np.full((100, 180, 3), 128, np.uint8)
    out = draw_overlay(frame, _holes())
    assert out.shape[1] == 180 and out.shape[0] > 100, "legend strip appended below"
    assert frame.max() == 128, "the input frame is not drawn on"
    top = out[:100]
    assert _has_colour(top, DETECTED)
    # Hole 1's outline: a ring of the neutral colour at radius 10 around (40, 30).
    cyan = (top[..., 0].astype(int) - top[..., 2]) > 60   # anti-aliased lines blend into the grey
    ys, xs = np.nonzero(cyan)
    on_ring = np.abs(np.hypot(xs - 40, ys - 30) - 10) < 1.0
    assert on_ring.sum() >= 30


def test_grey_frames_and_statuses():
    frame = np.full((100, 180), 90, np.uint8)
    statuses = [(1, "ok", (40.0, 30.0), 20.0), (2, "out_of_tolerance", (120.0, 35.0), 27.0),
                (3, "missing", (150.0, 80.0), 14.0)]
    out = draw_overlay(frame, _holes(), statuses)
    assert out.ndim == 3
    for status in ("ok", "out_of_tolerance", "missing"):
        assert _has_colour(out[:100], STATUS_COLOURS[status]), status
    assert not _has_colour(out[:100], STATUS_COLOURS["extra"])


def test_empty_result_and_bad_statuses():
    frame = np.zeros((60, 80, 3), np.uint8)
    assert draw_overlay(frame, Holes.empty()).shape[1] == 80
    with pytest.raises(OverlayError, match="unknown status"):
        draw_overlay(frame, _holes(), [(1, "great", (1.0, 1.0), 3.0)])
    with pytest.raises(OverlayError, match="status entries"):
        draw_overlay(frame, _holes(), [(1, "ok")])
    with pytest.raises(OverlayError, match="uint8"):
        draw_overlay(frame.astype(np.float32), _holes())
