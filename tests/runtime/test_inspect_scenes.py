"""Image-level: synthetic scenes with undrilled holes (synthparts) -> Holes -> inspection.

The recipe is the part's design (every designed hole, drilled or not) in pixels, moved into an
arbitrary part frame so registration has to find it. Detections are the scene's exact hole ellipses
(or the real detector's output when a model bundle is installed).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from holevision.runtime.detections import Holes
from holevision.runtime.inspect.measure import inspect_holes
from holevision.runtime.inspect.recipe import parse_recipe

synthparts = pytest.importorskip("holevision.runtime.synthparts")


def design_recipe(part: dict, angle_deg: float = 41.0):
    """Every designed hole of the part, in px, rotated and shifted into a part frame of our own."""
    centers = np.array([h["center_px"] for h in part["holes"]], dtype=np.float64)
    diameters = np.array([math.sqrt(h["axes_px"][0] * h["axes_px"][1]) for h in part["holes"]])
    a = math.radians(angle_deg)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    local = (centers - centers.mean(axis=0)) @ R.T + [1000.0, -200.0]
    holes = [{"id": h["index"] + 1, "x": float(p[0]), "y": float(p[1]), "diameter": float(d),
              "type": h["kind"]} for h, p, d in zip(part["holes"], local, diameters)]
    return parse_recipe({"name": "design", "units": "px",
                         "defaults": {"position_tol": 2.0, "diameter_tol": 2.0},
                         "extra": {"fail_on_extra": False}, "holes": holes})


def scene_holes(scene) -> Holes:
    rows = [h for h in scene.holes]
    return Holes(centers=np.array([h.center for h in rows]).reshape(-1, 2),
                 axes=np.array([h.axes for h in rows]).reshape(-1, 2),
                 angles=np.array([h.angle_deg for h in rows]), scores=np.ones(len(rows)),
                 on_border=np.array([h.on_border for h in rows], dtype=bool))


@functools.lru_cache(maxsize=1)
def single_part_scenes(count: int):
    """The first ``count`` rendered scenes with one part of at least 4 holes (cached: rendering is slow)."""
    found, seed = [], 0
    while len(found) < count and seed < 60:
        scene = synthparts.render_scene(seed, width=640, height=512, style="cad" if seed % 2 else "photo")
        if len(scene.parts) == 1 and len(scene.part["holes"]) >= 4:
            found.append(scene)
        seed += 1
    return tuple(found)


def test_undrilled_holes_of_synthetic_parts_are_reported_missing():
    scenes = single_part_scenes(6)
    assert len(scenes) >= 3
    judged = 0
    for scene in scenes:
        recipe = design_recipe(scene.part)
        report = inspect_holes(recipe, scene_holes(scene), frame_size=scene.image.shape[1::-1])
        undrilled = sorted(i + 1 for i in scene.part["missing"])
        if report.verdict == "NONE":
            # Only when the part is partly out of view or too few holes were drilled: never a false OK.
            assert set(report.reasons) & {"part_out_of_view", "too_few_matches", "part_not_found"}
            continue
        judged += 1
        missing = sorted(h.id for h in report.holes if h.status == "missing")
        assert missing == [i for i in undrilled if report.holes[i - 1].status != "unchecked"], report.to_dict()
        assert report.verdict == ("NG" if missing else "OK") or "part_out_of_view" in report.reasons
    assert judged >= 3


def test_overlay_marks_what_failed():
    overlay = pytest.importorskip("holevision.runtime.overlay")
    scene = next(s for s in single_part_scenes(6) if s.part["missing"])
    holes = scene_holes(scene).numbered()
    report = inspect_holes(design_recipe(scene.part), holes, frame_size=scene.image.shape[1::-1])
    from holevision.runtime.inspect.measure import overlay_statuses

    statuses = overlay_statuses(report, holes)
    missing = [s for s in statuses if s[1] == "missing"]
    assert missing
    drawn = overlay.draw_overlay(scene.image, holes, statuses=statuses, title=f"inspect: {report.verdict}")
    u, v = (int(round(x)) for x in missing[0][2])
    r = int(missing[0][3] / 2) + 3
    patch = (slice(max(v - r, 0), v + r), slice(max(u - r, 0), u + r))
    assert np.any(drawn[patch] != scene.image[patch])          # something is drawn where the hole should be


@pytest.mark.slow
def test_real_detector_never_passes_a_part_with_undrilled_holes():
    """With the packaged model: parts with undrilled holes are NG (or NONE), never OK."""
    bundle = pytest.importorskip("holevision.runtime.bundle")
    detector_module = pytest.importorskip("holevision.runtime.detector")
    try:
        detector = detector_module.Detector(bundle.load_bundle("default"))
    except (ValueError, OSError, ImportError) as exc:
        pytest.skip(f"no usable default model bundle: {exc}")
    scenes = [s for s in single_part_scenes(6) if s.part["missing"]][:3]
    assert scenes
    for scene in scenes:
        holes = detector.detect(scene.image).holes.numbered()
        report = inspect_holes(design_recipe(scene.part), holes, frame_size=scene.image.shape[1::-1])
        assert report.verdict in ("NG", "NONE"), report.to_dict()
