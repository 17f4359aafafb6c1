"""The hole verifier at run time: its inputs (crops, measures), its cut, and the Detector running it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from holevision.runtime.bundle import BundleError, VerifierSpec, load_bundle, read_manifest, verify_bundle, write_manifest
from holevision.runtime.detections import Holes
from holevision.runtime.hole_verifier import (MEASURES, HoleVerifier, hole_crops, hole_measures, keep_verified)


def one_hole(u: float, v: float, diameter: float, **columns) -> Holes:
    return Holes(centers=[[u, v]], axes=[[diameter, diameter]], angles=[0.0], scores=[0.9], **columns)


def dark_disc(height: int, width: int, u: float, v: float, radius: float) -> np.ndarray:
    image = np.full((height, width), 200, np.uint8)
    cv2.circle(image, (round(u * 16), round(v * 16)), round(radius * 16), 40, -1, cv2.LINE_AA, shift=4)
    return image


def dark_centroid(channel: np.ndarray) -> np.ndarray:
    weight = np.clip(channel.max() - channel, 0, None)
    rows, cols = np.mgrid[:channel.shape[0], :channel.shape[1]]
    return np.array([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()


def test_a_crop_puts_the_hole_in_its_middle_scaled_to_its_size():
    u, v = 40.3, 30.7
    small, large = dark_disc(80, 96, u, v, 5.0), dark_disc(160, 192, 2 * u, 2 * v, 10.0)
    prob = (small < 120).astype(np.float32)
    crop_small = hole_crops(one_hole(u, v, 10.0), prob, small, 32, 3.0)[0]
    crop_large = hole_crops(one_hole(2 * u, 2 * v, 20.0), prob, large, 32, 3.0)[0]
    assert np.allclose(dark_centroid(crop_small[0]), [15.5, 15.5], atol=0.25)
    # Twice the hole at twice the size: the same crop (the verifier sees holes at one scale).
    assert np.corrcoef(crop_small[0].ravel(), crop_large[0].ravel())[0, 1] > 0.97
    # The grey channel is standardised, the probability channel is the map itself, the disc in the middle.
    assert abs(crop_small[0].mean()) < 1e-4 and 0.85 < crop_small[0].std() < 1.0   # std ~1 (a floor keeps flat crops flat)
    assert crop_small[1, 15, 15] == pytest.approx(1.0) and crop_small[1, 0, 0] == 0.0


def warped_crop(u: float, v: float, diameter: float, probability, grey, crop_px: int, span: float) -> np.ndarray:
    """One crop by its own affine warp: the reference the batched sampler must reproduce."""
    scale = crop_px / (span * max(diameter, 2.0))
    middle = crop_px / 2 - 0.5
    warp = np.array([[scale, 0.0, middle - scale * u], [0.0, scale, middle - scale * v]], np.float32)
    patch = cv2.warpAffine(grey, warp, (crop_px, crop_px), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT).astype(np.float32) / 255.0
    return np.stack([(patch - patch.mean()) / (patch.std() + 0.02),
                     cv2.warpAffine(probability, warp, (crop_px, crop_px), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)])


def test_crops_sampled_together_match_one_warp_per_hole_at_borders_and_in_large_batches():
    rng = np.random.default_rng(3)
    grey = cv2.GaussianBlur(rng.integers(0, 256, (120, 160), np.uint8), (0, 0), 1.5)
    probability = rng.random((120, 160)).astype(np.float32)
    count = 600                                   # more than one remap call's worth
    centers = np.column_stack([rng.uniform(-5, 165, count), rng.uniform(-5, 125, count)])   # some off the frame
    diameters = rng.uniform(1.0, 60.0, count)
    holes = Holes(centers=centers, axes=np.column_stack([diameters, diameters]), angles=np.zeros(count),
                  scores=np.full(count, 0.9))
    crops = hole_crops(holes, probability, grey, 16, 3.0)
    assert crops.shape == (count, 2, 16, 16) and crops.dtype == np.float32
    reference = np.stack([warped_crop(u, v, d, probability, grey, 16, 3.0)
                          for (u, v), d in zip(centers, diameters)])
    # Both sample bilinearly at 1/32 px; rounding a source position differently moves a level by little.
    assert np.abs(crops - reference).mean() < 2e-3
    assert np.abs(crops[:, 1] - reference[:, 1]).max() < 0.1
    assert hole_crops(holes[np.zeros(0, int)], probability, grey, 16, 3.0).shape == (0, 2, 16, 16)
    # A colour frame is sampled as it is and its crops made grey: the grey frame's crops, to rounding.
    colour = np.dstack([grey, grey, grey])
    assert np.abs(hole_crops(holes, probability, colour, 16, 3.0) - crops).max() < 1e-5
    with pytest.raises(ValueError, match="uint8 grey"):
        hole_crops(holes, probability, grey.astype(np.float32), 16, 3.0)


def test_measures_flag_a_hole_without_an_edge_fit():
    holes = Holes.concatenate([one_hole(10, 10, 8.0, fit_residual=[0.2], refined=[True]),
                               one_hole(30, 10, 12.0, fit_residual=[np.nan], on_border=[True])])
    measures = hole_measures(holes)
    column = {name: measures[:, i] for i, name in enumerate(MEASURES)}
    assert measures.shape == (2, len(MEASURES)) and measures.dtype == np.float32
    assert np.allclose(column["log_diameter_px"], np.log([8.0, 12.0]))
    assert column["no_fit"].tolist() == [0.0, 1.0] and column["fit_residual_px"].tolist() == pytest.approx([0.2, -1.0])
    assert column["refined"].tolist() == [1.0, 0.0] and column["on_border"].tolist() == [0.0, 1.0]


def test_keep_verified_drops_low_scores_rescores_and_renumbers():
    holes = Holes.concatenate([one_hole(10.0 * k, 5.0, 6.0) for k in range(1, 5)])
    kept = keep_verified(holes, np.array([0.9, 0.2, 0.6, 0.49]), 0.5)
    assert kept.centers[:, 0].tolist() == [10.0, 30.0]
    assert kept.scores.tolist() == [0.9, 0.6] and kept.ids.tolist() == [1, 2]
    assert holes.scores.tolist() == [0.9] * 4          # the input is left as it was
    with pytest.raises(ValueError, match="3 verifier scores for 4 holes"):
        keep_verified(holes, np.zeros(3), 0.5)


def size_verifier_onnx(path, min_diameter_px: float, crop_px: int = 32, input_names=("crops", "measures")):
    """A stand-in verifier: score = sigmoid(20 (log diameter - log min_diameter_px)), big holes pass."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    constants = [numpy_helper.from_array(np.array(v, dtype=dtype), name) for name, v, dtype in (
        ("start", [1], np.int64), ("end", [2], np.int64), ("axis", [1], np.int64),
        ("log_min", np.log(min_diameter_px), np.float32), ("gain", 20.0, np.float32), ("zero", 0.0, np.float32))]
    crops, measures = input_names
    nodes = [
        helper.make_node("Slice", [measures, "start", "end", "axis"], ["log_d"]),
        helper.make_node("Sub", ["log_d", "log_min"], ["excess"]),
        helper.make_node("Mul", ["excess", "gain"], ["logit2d"]),
        helper.make_node("ReduceMean", [crops], ["crop_mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["crop_mean", "zero"], ["nothing"]),
        helper.make_node("Squeeze", ["logit2d", "axis"], ["logit"]),
        helper.make_node("Add", ["logit", "nothing"], ["logit_all"]),
        helper.make_node("Sigmoid", ["logit_all"], ["score"]),
    ]
    graph = helper.make_graph(nodes, "size_verifier", [
        helper.make_tensor_value_info(crops, TensorProto.FLOAT, ["n", 2, crop_px, crop_px]),
        helper.make_tensor_value_info(measures, TensorProto.FLOAT, ["n", len(MEASURES)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"])], initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def add_verifier(bundle, min_diameter_px: float, min_score: float = 0.5):
    size_verifier_onnx(bundle / "verifier.onnx", min_diameter_px)
    manifest = read_manifest(bundle)
    manifest.postprocess = manifest.postprocess.model_copy(update={"verifier": VerifierSpec(min_score=min_score)})
    write_manifest(bundle, manifest)
    return bundle


def small_and_large_holes() -> np.ndarray:
    image = np.full((128, 128, 3), 200, np.uint8)
    for u, v, radius in ((30, 30, 4), (90, 30, 10), (30, 90, 10), (90, 90, 4)):
        cv2.circle(image, (u, v), radius, (40, 40, 40), -1, cv2.LINE_AA)
    return image


def test_the_detector_runs_the_bundles_verifier_and_can_skip_it(make_bundle):
    from holevision.runtime.detector import Detector

    bundle = add_verifier(make_bundle(), min_diameter_px=12.0)
    image = small_and_large_holes()
    unverified = Detector(bundle, verify=False).detect(image)
    every = unverified.holes
    verified = Detector(bundle).detect(image)
    assert len(every) == 4
    # The verifier's time is its own stage, apart from extraction (absent when it does not run).
    assert {"extract", "verify"} <= set(verified.timings) and "verify" not in unverified.timings
    assert verified.timings["verify"] > 0.0
    assert len(verified.holes) == 2 and (verified.holes.diameters_px > 15).all()     # the two radius-10 holes
    assert verified.holes.ids.tolist() == [1, 2] and (verified.holes.scores > 0.5).all()
    # The cut can be moved without retraining: the small holes score ~0.003, a cut of 0.001 keeps them.
    assert len(Detector(bundle, min_score=0.001).detect(image).holes) == 4
    # The free-running pipeline post-processes apart from the model, with the verifier too.
    from holevision.runtime.pipeline import split_detector

    model_fn, post_fn = split_detector(Detector(bundle))
    timings: dict[str, float] = {}
    assert len(post_fn(model_fn(image, timings), image, timings)) == 2
    assert {"model", "extract", "verify"} <= set(timings)


def test_a_verifier_cut_for_a_bundle_without_a_verifier_is_refused(make_bundle):
    from holevision.runtime.detector import Detector

    with pytest.raises(BundleError, match="this bundle has none"):
        Detector(make_bundle(), min_score=0.5, warm_up=False)


def test_a_bundle_naming_a_verifier_it_does_not_list_is_refused(make_bundle, tmp_path):
    bundle = make_bundle()
    manifest = read_manifest(bundle)
    manifest.postprocess = manifest.postprocess.model_copy(update={"verifier": VerifierSpec()})
    write_manifest(bundle, manifest)          # verifier.onnx is not there, so not listed
    assert any("verifier.onnx: postprocess.verifier names it" in p for p in verify_bundle(bundle))
    with pytest.raises(BundleError, match="verifier.onnx"):
        load_bundle(bundle)


def test_a_verifier_file_with_other_inputs_is_refused(tmp_path):
    path = size_verifier_onnx(tmp_path / "v.onnx", 10.0, input_names=("patches", "measures"))
    with pytest.raises(ValueError, match="takes inputs 'crops' and 'measures'"):
        HoleVerifier(path, min_score=0.5, crop_px=32, span=3.0)
    with pytest.raises(ValueError, match="min_score must be in"):
        HoleVerifier(size_verifier_onnx(tmp_path / "w.onnx", 10.0), min_score=1.0, crop_px=32, span=3.0)
