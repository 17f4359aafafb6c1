"""The verifier's context pass: features from a frame's candidates, the ONNX rescorer, the bundle wiring."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from holevision.runtime.detections import Holes
from holevision.runtime.hole_context import CONTEXT_FEATURES, ContextRescorer, bounded_scores, context_features


def candidates(diameters, scores=None, on_border=None) -> Holes:
    n = len(diameters)
    d = np.asarray(diameters, float)
    return Holes(centers=np.column_stack([np.arange(n) * 40.0, np.zeros(n)]), axes=np.column_stack([d, d]),
                 angles=np.zeros(n), scores=np.full(n, 0.6) if scores is None else np.asarray(scores, float),
                 on_border=np.zeros(n, bool) if on_border is None else np.asarray(on_border, bool))


def logit(p):
    return np.log(p / (1 - p))


def test_siblings_are_the_candidates_of_about_the_same_size_and_their_scores_are_summarised():
    holes = candidates([10.0, 11.0, 12.0, 30.0], scores=[0.7, 0.6, 0.5, 0.9], on_border=[0, 0, 0, 1])
    crop = np.array([0.9, 0.2, 0.8, 0.95])
    f = context_features(holes, crop)
    assert f.shape == (4, len(CONTEXT_FEATURES)) and f.dtype == np.float32
    column = {name: f[:, k] for k, name in enumerate(CONTEXT_FEATURES)}
    np.testing.assert_allclose(column["verifier_logit"], logit(crop), rtol=1e-5)
    np.testing.assert_allclose(column["score_logit"], logit(np.array([0.7, 0.6, 0.5, 0.9])), rtol=1e-5)
    np.testing.assert_allclose(column["log_diameter_px"], np.log([10.0, 11.0, 12.0, 30.0]), rtol=1e-6)
    assert column["on_border"].tolist() == [0, 0, 0, 1]
    # 10 and 11, 11 and 12 are within 1.25x of each other, and so are 10 and 12 (1.2x); 30 has none.
    np.testing.assert_allclose(column["log1p_siblings"], np.log1p([2, 2, 2, 0]), rtol=1e-6)
    # accepted (>= 0.5): 0.9, 0.8 and 0.95
    np.testing.assert_allclose(column["log1p_siblings_accepted"], np.log1p([1, 2, 1, 0]), rtol=1e-6)
    np.testing.assert_allclose(column["siblings_best_logit"][:3], logit(np.array([0.8, 0.9, 0.9])), rtol=1e-5)
    np.testing.assert_allclose(column["siblings_median_logit"][:3], logit(np.array([0.5, 0.85, 0.55])), rtol=1e-5)
    # no siblings: the lowest logit, as for a sibling scored 0
    lowest = pytest.approx(logit(1e-4), rel=1e-4)
    assert column["siblings_best_logit"][3] == column["siblings_median_logit"][3] == lowest
    np.testing.assert_allclose(column["log1p_others_accepted"], np.log1p([2, 3, 2, 2]), rtol=1e-6)


def test_features_of_no_candidates_and_a_score_count_that_does_not_match():
    assert context_features(candidates([]), np.zeros(0)).shape == (0, len(CONTEXT_FEATURES))
    with pytest.raises(ValueError, match="2 verifier scores for 3 candidates"):
        context_features(candidates([5.0, 6.0, 7.0]), np.zeros(2))


def context_onnx(path, weights):
    """A logistic 'context pass' as ONNX: sigmoid(features @ weights), input 'features', output 'score'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.asarray(weights, np.float32).reshape(-1, 1), "w")
    nodes = [helper.make_node("MatMul", ["features", "w"], ["logit2"]),
             helper.make_node("Squeeze", ["logit2", "axis"], ["logit"]),
             helper.make_node("Sigmoid", ["logit"], ["score"])]
    axis = numpy_helper.from_array(np.array([1], np.int64), "axis")
    graph = helper.make_graph(nodes, "context", [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                                                ["holes", len(weights)])],
                              [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["holes"])],
                              initializer=[w, axis])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_the_rescorer_runs_its_onnx_file_on_the_features_and_refuses_another_input(tmp_path):
    weights = np.zeros(len(CONTEXT_FEATURES))
    weights[CONTEXT_FEATURES.index("log1p_siblings")] = 3.0     # more siblings, more likely a hole
    rescorer = ContextRescorer(context_onnx(tmp_path / "context.onnx", weights), max_shift=20.0)
    scores = rescorer.scores(candidates([10.0, 10.5, 40.0]), np.array([0.6, 0.6, 0.6]))
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-3.0 * np.log1p([1, 1, 0]))), rtol=1e-5)
    assert rescorer.scores(candidates([]), np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="takes one input 'features' of 9 features"):
        ContextRescorer(context_onnx(tmp_path / "short.onnx", np.zeros(4)))


def test_the_context_pass_moves_a_crop_score_by_at_most_max_shift_logits(tmp_path):
    weights = np.zeros(len(CONTEXT_FEATURES))
    weights[CONTEXT_FEATURES.index("log1p_siblings")] = 10.0     # siblings: ~1; alone: 0.5
    weights[CONTEXT_FEATURES.index("verifier_logit")] = 0.0
    path = context_onnx(tmp_path / "context.onnx", weights)
    lone_and_pair = candidates([40.0, 10.0, 10.5])
    crop = np.array([0.9, 0.2, 0.2])
    bounded = ContextRescorer(path, max_shift=1.5).scores(lone_and_pair, crop)
    logit_crop = logit(crop)
    # the lone hole (network: 0.5) may fall 1.5 logits below its crop score, no further; the pair may
    # rise 1.5 above theirs (network: ~1)
    np.testing.assert_allclose(logit(bounded), logit_crop + np.array([-1.5, 1.5, 1.5]), rtol=1e-6)
    assert bounded[0] > 0.6
    np.testing.assert_allclose(bounded_scores(crop, np.array([0.85, 0.3, 0.01]), 1.5),
                               [0.85, 0.3, 1 / (1 + np.exp(-(logit(0.2) - 1.5)))], rtol=1e-6)
    with pytest.raises(ValueError, match="max shift must be > 0"):
        ContextRescorer(path, max_shift=0.0)


def test_a_bundle_names_its_context_file_and_verify_catches_it_unlisted(tmp_path):
    from fake_bundle import make_fake_bundle
    from test_verifier import size_verifier_onnx

    from holevision.runtime.bundle import VerifierSpec, read_manifest, verify_bundle, write_manifest
    from holevision.runtime.detector import Detector

    folder = make_fake_bundle(tmp_path / "b")
    size_verifier_onnx(folder / "verifier.onnx", 10.0)
    context_onnx(folder / "context.onnx", np.zeros(len(CONTEXT_FEATURES)))
    manifest = read_manifest(folder)
    manifest.postprocess = manifest.postprocess.model_copy(
        update={"verifier": VerifierSpec(min_score=0.4, context_file="context.onnx")})
    manifest = write_manifest(folder, manifest)
    assert verify_bundle(folder) == [] and "context.onnx" in manifest.files
    detector = Detector(folder, warm_up=False)
    assert detector.verifier.context is not None and detector.verifier.context.path.name == "context.onnx"
    # all-zero weights: the network scores every candidate 0.5, which the crop scores (~1: large holes)
    # bound to 1.5 logits below them, above the 0.4 cut
    image = np.full((128, 128, 3), 200, np.uint8)
    cv2.circle(image, (40, 40), 6, (30, 30, 30), -1)
    cv2.circle(image, (90, 90), 6, (30, 30, 30), -1)
    holes = detector.detect(image).holes
    unverified = Detector(folder, warm_up=False, verify=False)
    probability = unverified.probability(image)
    crop = detector.verifier.crop_scores(unverified.extract(probability, image), probability, image)
    assert len(holes) == 2 and (crop > 0.95).all()
    np.testing.assert_allclose(holes.scores, 1 / (1 + np.exp(-(logit(crop) - 1.5))), rtol=1e-6)

    manifest.files.pop("context.onnx")
    (folder / "manifest.json").write_text(json.dumps(manifest.model_dump(mode="json"), indent=2))
    problems = verify_bundle(folder)
    assert any("context.onnx: postprocess.verifier.context_file names it" in p for p in problems)
