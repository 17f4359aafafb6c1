"""Detector: bundle -> engine -> pad/tile -> extraction, on frames with holes at known places."""

from __future__ import annotations

import numpy as np
import pytest

from holevision.runtime.benchmarks.hole_scenes import render_holes
from holevision.runtime.bundle import BundleError, read_manifest, write_manifest
from holevision.runtime.detector import Detection, Detector, ImageError


def _check(holes, centers, diameters, tol_center=0.05, tol_diameter=0.1):
    assert len(holes) == len(centers)
    for center, diameter in zip(centers, diameters):
        k = int(np.argmin(np.linalg.norm(holes.centers - center, axis=1)))
        assert np.linalg.norm(holes.centers[k] - center) < tol_center
        assert abs(holes.diameters_px[k] - diameter) < tol_diameter


@pytest.mark.parametrize("size", [(100, 70), (128, 128), (333, 250)])
def test_detects_and_measures_holes_in_frames_smaller_and_larger_than_the_model(fake_bundle, size):
    width, height = size
    centers = np.array([[width * 0.3 + 0.37, height * 0.4 + 0.21], [width * 0.7 - 0.11, height * 0.6 + 0.45]])
    diameters = np.array([14.0, 18.5])
    scene = render_holes(size, centers, diameters, seed=4, color=True)
    detection = Detector(fake_bundle).detect(scene.image)
    assert isinstance(detection, Detection)
    assert (detection.width, detection.height) == size
    assert detection.probability.shape == (height, width)
    assert set(detection.timings) >= {"preprocess", "model", "extract"}
    _check(detection.holes, centers, diameters)
    assert list(detection.holes.ids) == [1, 2]


def test_grey_frames_work_and_give_the_same_holes(fake_bundle):
    scene = render_holes((200, 150), [[70.2, 80.6]], [30.0], seed=2)
    detector = Detector(fake_bundle)
    grey = detector.detect(scene.image).holes
    bgr = detector.detect(np.repeat(scene.image[..., None], 3, axis=2)).holes
    assert len(grey) == len(bgr) == 1
    assert np.allclose(grey.centers, bgr.centers, atol=1e-3)


def test_empty_frame_has_no_holes(fake_bundle):
    detection = Detector(fake_bundle).detect(np.full((90, 160, 3), 200, np.uint8))
    assert len(detection.holes) == 0


def test_threshold_and_min_diameter_options(fake_bundle):
    scene = render_holes((300, 200), [[60.0, 100.0], [200.0, 100.0]], [8.0, 40.0], seed=1, color=True)
    assert len(Detector(fake_bundle).detect(scene.image).holes) == 2
    assert len(Detector(fake_bundle, min_diameter_px=20).detect(scene.image).holes) == 1
    with pytest.raises(ValueError, match="threshold"):
        Detector(fake_bundle, threshold=1.0)


@pytest.mark.parametrize("image, match", [
    (np.zeros((50, 50), np.float32), "uint8"),
    (np.zeros((50, 50, 2), np.uint8), "shape"),
    (np.zeros((0, 50, 3), np.uint8), "empty"),
])
def test_bad_images_raise_clear_errors(fake_bundle, image, match):
    with pytest.raises(ImageError, match=match):
        Detector(fake_bundle, warm_up=False).detect(image)


def test_tampered_missing_and_wrong_bundles_are_refused(make_bundle, tmp_path):
    with pytest.raises(BundleError, match="not found"):
        Detector(tmp_path / "nowhere")
    folder = make_bundle()
    with open(folder / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="sha256 mismatch"):
        Detector(folder)
    folder = make_bundle()
    manifest = read_manifest(folder)
    write_manifest(folder, manifest.model_copy(update={"outputs": manifest.outputs.model_copy(
        update={"classes": ["background", "thread"]})}))
    with pytest.raises(BundleError, match="no 'hole' class"):
        Detector(folder)


def test_a_batched_model_gives_the_same_holes(make_bundle):
    scene = render_holes((300, 200), [[80.4, 90.2], [220.7, 60.3], [150.0, 160.9]], [20.0, 26.0, 18.0], seed=6,
                         color=True)
    single = Detector(make_bundle(height=96, width=96, batch=1, overlap_px=24)).detect(scene.image).holes
    batched = Detector(make_bundle(height=96, width=96, batch=3, overlap_px=24)).detect(scene.image).holes
    assert len(single) == len(batched) == 3
    assert np.allclose(single.centers, batched.centers, atol=1e-4)


def test_a_model_with_stride_4_output_is_upsampled_and_the_edge_fit_restores_precision(make_bundle):
    centers = np.array([[90.3, 70.8], [200.6, 120.1]])
    diameters = np.array([18.0, 33.0])
    scene = render_holes((300, 200), centers, diameters, seed=9, color=True)
    detection = Detector(make_bundle(height=128, width=128, overlap_px=32, stride=4)).detect(scene.image)
    assert detection.probability.shape == (200, 300)
    _check(detection.holes, centers, diameters)
    assert detection.holes.refined.all()


@pytest.mark.parametrize("flips", [2, 4])
def test_mirror_views_are_flipped_back_before_they_are_averaged(fake_bundle, flips):
    # An asymmetric scene larger than the model (tiled): a mirror view not flipped back would put the
    # averaged holes in the wrong places. The fake model is per-pixel, so every view agrees exactly.
    centers = np.array([[40.3, 50.6], [190.2, 120.4], [250.7, 40.1]])
    scene = render_holes((300, 170), centers, [12.0, 22.0, 16.0], seed=5, color=True)
    single = Detector(fake_bundle).detect(scene.image)
    detector = Detector(fake_bundle, flips=flips)
    calls = []
    run = detector.engine.run
    detector.engine.run = lambda batch: calls.append(len(batch)) or run(batch)
    averaged = detector.detect(scene.image)
    np.testing.assert_allclose(averaged.probability, single.probability, atol=1e-6)
    assert averaged.probability.flags.c_contiguous
    _check(averaged.holes, centers, [12.0, 22.0, 16.0])
    tiles_per_view = len(calls) // flips
    assert tiles_per_view >= 2 and len(calls) == flips * tiles_per_view


def test_flips_other_than_1_2_4_are_refused(fake_bundle):
    with pytest.raises(ValueError, match="flips must be 1, 2 or 4"):
        Detector(fake_bundle, flips=3)


def test_the_detect_benchmark_runs_with_mirror_views(fake_bundle):
    from holevision.runtime.benchmarks.detect_bench import bench_detect, format_table

    result = bench_detect(fake_bundle, size=(200, 150), frames=2, warmup=0, holes=3, extraction_repeats=1, flips=2)
    assert result["flips"] == 2 and result["stages"]["model"]["median_ms"] > 0
    assert "x2 mirror views" in format_table(result)
