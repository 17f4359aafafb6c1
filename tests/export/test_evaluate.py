"""Hole-level evaluation: matching rule, figures, and the `holevision eval` command on a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from holevision.export.evaluate import (  # noqa: E402
    HoleScore, PredictedHoles, connected_component_holes, evaluate_probabilities, match_holes,
)
from holevision.export.labeled_images import GroundTruthHoles, LabeledImage, load_labeled_images  # noqa: E402


def test_matching_tolerance_is_max_of_2px_and_quarter_radius():
    truth = np.array([[10.0, 10.0], [100.0, 100.0]])
    diameters = np.array([6.0, 40.0])  # tolerances: max(2, 0.75) = 2 px; max(2, 5) = 5 px
    assert match_holes(np.array([[11.9, 10.0]]), truth[:1], diameters[:1]) == [(0, 0)]
    assert match_holes(np.array([[12.1, 10.0]]), truth[:1], diameters[:1]) == []
    assert match_holes(np.array([[104.9, 100.0]]), truth[1:], diameters[1:]) == [(0, 0)]
    assert match_holes(np.array([[105.1, 100.0]]), truth[1:], diameters[1:]) == []


def test_matching_is_one_to_one_and_optimal():
    truth = np.array([[0.0, 0.0], [3.0, 0.0]])
    predicted = np.array([[1.4, 0.0], [1.6, 0.0]])  # both near both; greedy nearest would pair badly
    pairs = match_holes(predicted, truth, np.array([40.0, 40.0]))
    assert sorted(pairs) == [(0, 0), (1, 1)]
    # Two predictions on one hole: one true positive, one false positive.
    score = HoleScore()
    score.add(PredictedHoles(np.array([[0.0, 0.0], [0.5, 0.0]]), np.array([10.0, 10.0])),
              GroundTruthHoles(np.array([[0.0, 0.0]]), np.array([10.0]), np.array([True])))
    s = score.summary()
    assert (s["true_positives"], s["false_positives"], s["false_negatives"]) == (1, 1, 0)
    assert s["precision"] == 0.5 and s["recall"] == 1.0 and s["f1"] == pytest.approx(2 / 3, abs=1e-4)


def test_a_partly_seen_hole_matches_at_its_seen_middle_or_its_whole_center():
    # A 20 px hole cut by the left border: labelled center at u = -3, its seen part's middle at u = 3.
    seen, whole, diameters = np.array([[3.0, 50.0]]), np.array([[-3.0, 50.0]]), np.array([20.0])  # tolerance 2.5
    for u in (-3.2, 3.1):   # an outline fit that completes the circle / a mask centroid
        assert match_holes(np.array([[u, 50.0]]), seen, diameters, truth_whole=whole) == [(0, 0)]
    assert match_holes(np.array([[0.0, 50.0]]), seen, diameters, truth_whole=whole) == []  # 3 px from both
    assert match_holes(np.array([[-3.2, 50.0]]), seen, diameters) == []  # the seen middle alone misses it
    # Still one to one: a fit and a centroid on the same cut hole are one hit and one false hole.
    score = HoleScore()
    score.add(PredictedHoles(np.array([[-3.2, 50.0], [3.1, 50.0]]), np.array([20.0, 12.0])),
              GroundTruthHoles(seen, diameters, np.array([False]), whole_centers=whole))
    s = score.summary()
    assert (s["true_positives"], s["false_positives"], s["false_negatives"]) == (1, 1, 0)
    assert s["matched_with_exact_center"] == 0  # a cut hole never enters the center error


def test_synthetic_labels_give_cut_holes_their_whole_center(tmp_path):
    from holevision.export.synth import write_synthetic_dataset

    data = tmp_path / "synth"
    write_synthetic_dataset(data, count=4, seed=11, width=320, height=256, style="photo", progress=False)
    labelled = {}
    for annotation in json.loads((data / "annotations.json").read_text())["annotations"]:
        labelled.setdefault(annotation["image_id"], []).append(annotation["center_uv"])
    cut = 0
    for image_id, item in enumerate(load_labeled_images(data), start=1):
        holes = item.holes()
        np.testing.assert_allclose(holes.whole_centers[holes.exact], holes.centers[holes.exact])
        for row in np.flatnonzero(~holes.exact):
            assert np.min(np.linalg.norm(np.asarray(labelled[image_id]) - holes.whole_centers[row], axis=1)) < 1e-6
            cut += 1
    assert cut > 0


def test_center_and_diameter_errors_use_exact_ground_truth_only():
    score = HoleScore()
    truth = GroundTruthHoles(np.array([[10.0, 10.0], [50.0, 50.0]]), np.array([10.0, 10.0]), np.array([True, False]))
    predicted = PredictedHoles(np.array([[10.3, 10.4], [50.5, 50.0]]), np.array([10.5, 9.0]))
    score.add(predicted, truth, np.ones((4, 4), bool), np.pad(np.ones((2, 4), bool), ((0, 2), (0, 0))))
    s = score.summary()
    assert s["f1"] == 1.0 and s["matched_with_exact_center"] == 1
    assert s["center_error_rms_px"] == pytest.approx(0.5)
    assert s["diameter_error_mean_abs_px"] == pytest.approx(0.5)
    assert s["mask_iou"] == pytest.approx(0.5)


def test_by_size_splits_recall_precision_and_errors_by_diameter():
    score = HoleScore()
    # Truth: a 6 px hole (found, 0.3 px off), a 20 px hole (missed), a 100 px hole (found, 3 px off).
    truth = GroundTruthHoles(np.array([[10.0, 10.0], [50.0, 50.0], [200.0, 200.0]]), np.array([6.0, 20.0, 100.0]),
                             np.array([True, True, True]))
    # Predictions: those two, plus a false 24 px hole far from everything.
    predicted = PredictedHoles(np.array([[10.3, 10.0], [203.0, 200.0], [400.0, 50.0]]), np.array([5.0, 96.0, 24.0]))
    score.add(predicted, truth)
    rows = {row["diameter_px"]: row for row in score.summary()["by_size"]}
    assert set(rows) == {"0-8", "16-32", ">=64"}
    assert rows["0-8"]["recall"] == 1.0 and rows["0-8"]["precision"] == 1.0
    assert rows["0-8"]["center_error_rms_px"] == pytest.approx(0.3)
    assert rows["0-8"]["diameter_error_mean_px"] == pytest.approx(-1.0)
    assert rows["16-32"]["holes_true"] == 1 and rows["16-32"]["recall"] == 0.0
    assert rows["16-32"]["holes_predicted"] == 1 and rows["16-32"]["precision"] == 0.0
    assert rows["16-32"]["center_error_rms_px"] is None
    assert rows[">=64"]["center_error_rms_px"] == pytest.approx(3.0)
    assert rows[">=64"]["diameter_error_mean_px"] == pytest.approx(-4.0)
    # The bins add up to the totals.
    assert sum(r["holes_true"] for r in rows.values()) == 3 and sum(r["holes_predicted"] for r in rows.values()) == 3


def test_connected_components_find_discs_and_drop_specks():
    prob = np.zeros((64, 64), np.float32)
    cv2.circle(prob, (20, 30), 6, 1.0, -1)
    prob[2, 2] = 1.0  # a 1-pixel speck, below min area
    holes = connected_component_holes(prob)
    assert len(holes) == 1
    assert np.allclose(holes.centers[0], (20, 30), atol=0.05)
    assert holes.diameters[0] == pytest.approx(12.5, abs=1.0)


def _disc_dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, centers in enumerate([[(20, 20), (60, 44)], [(40, 40)]]):
        image = np.full((80, 80, 3), 200, np.uint8)
        instances = np.zeros((80, 80), np.uint16)
        for k, c in enumerate(centers):
            cv2.circle(image, c, 7, (30, 30, 30), -1)
            cv2.circle(instances, c, 7, k + 1, -1)
        cv2.imwrite(str(root / "images" / f"{i}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{i}.png"), instances)
    return root


def test_a_perfect_predictor_scores_one_and_a_blind_one_zero(tmp_path):
    items = load_labeled_images(_disc_dataset(tmp_path / "d"))
    assert len(items) == 2 and items[0].classes[:2] == ("background", "hole")

    def perfect(image):
        hole = (image[..., 0] < 100).astype(np.float32)
        return np.stack([1 - hole, hole])

    def blind(image):
        return np.stack([np.ones(image.shape[:2]), np.zeros(image.shape[:2])]).astype(np.float32)

    good = evaluate_probabilities(items, perfect, refine=False)
    assert good["f1"] == 1.0 and good["holes_true"] == 3 and good["mask_iou"] == pytest.approx(1.0)
    bad = evaluate_probabilities(items, blind, refine=False)
    assert bad["recall"] == 0.0 and bad["f1"] == 0.0


def test_eval_command_on_a_run_writes_json(tmp_path):
    pytest.importorskip("torch")
    from holevision.export.train import TrainConfig, train
    from holevision.runtime.cli import main

    data = _disc_dataset(tmp_path / "d")
    train(TrainConfig(data=str(data), out=str(tmp_path / "run"), model="nano", mode="full", size=64, epochs=1,
                      batch=2, steps_per_epoch=1,
                      overrides=dict(hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1], decoder_channels=8,
                                     stem_channels=[8, 8, 8])), progress=False)
    out = tmp_path / "metrics.json"
    assert main(["eval", "--model", str(tmp_path / "run"), "--data", str(data), "--json", str(out),
                 "--no-refine", "--device", "cpu"]) == 0
    metrics = json.loads(out.read_text())
    for key in ("precision", "recall", "f1", "mask_iou", "center_error_rms_px", "center_error_p95_px",
                "diameter_error_mean_abs_px"):
        assert key in metrics
    assert metrics["model_kind"] == "run" and metrics["images"] == 2
    from holevision.export.evaluate import evaluate_path

    with pytest.raises(ValueError, match="training run: export it first"):
        evaluate_path(tmp_path / "run", data, flips=2)


def test_missing_dataset_is_a_clear_error(tmp_path):
    from holevision.export.labeled_images import LabeledDataError

    with pytest.raises(LabeledDataError, match="nowhere: dataset not found"):
        load_labeled_images(tmp_path / "nowhere")


def test_ground_truth_slivers_below_min_area_are_ignored_not_counted():
    truth = GroundTruthHoles(np.array([[10.0, 10.0], [40.0, 40.0], [70.0, 70.0]]), np.array([10.0, 3.0, 3.0]),
                             np.array([True, False, False]), areas=np.array([80.0, 3.0, 4.0]))
    # Finds the real hole and one sliver; misses the other sliver: perfect score, nothing counted for slivers.
    predicted = PredictedHoles(np.array([[10.0, 10.0], [40.5, 40.0]]), np.array([10.0, 2.0]))
    score = HoleScore()
    score.add(predicted, truth, min_area_px=6.0)
    s = score.summary()
    assert (s["true_positives"], s["false_positives"], s["false_negatives"], s["holes_ignored_tiny"]) == (1, 0, 0, 2)
    # Without a min area every ground-truth hole counts.
    score = HoleScore()
    score.add(predicted, truth)
    assert score.summary()["false_negatives"] == 1 and score.summary()["true_positives"] == 2


def test_eval_default_means_the_packaged_bundle(tmp_path):
    """`holevision eval --model default` evaluates the bundle that `holevision detect` uses by default."""
    from holevision.export.synth import write_synthetic_dataset
    from holevision.runtime.cli import main

    data = tmp_path / "data"
    write_synthetic_dataset(data, count=2, seed=3, width=320, height=256, style="photo", progress=False)
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", "default", "--data", str(data), "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["model_kind"] == "bundle"
    assert Path(metrics["model"]).name == "default_bundle"
    assert 0.0 <= metrics["f1"] <= 1.0 and metrics["holes_true"] > 0
    assert main(["eval", "--model", "default", "--data", str(data), "--json", str(out), "--flips", "2"]) == 0
    mirrored = json.loads(out.read_text())
    assert mirrored["flips"] == 2 and mirrored["holes_true"] == metrics["holes_true"]


def test_eval_of_a_bundle_uses_its_own_post_processing_unless_told(tmp_path):
    """The threshold stored at export (`export --threshold`) is what the runtime uses, so eval uses it too."""
    import shutil

    from holevision.export.evaluate import evaluate_path
    from holevision.export.synth import write_synthetic_dataset
    from holevision.runtime.bundle import DEFAULT_BUNDLE_DIR, PostprocessSpec, read_manifest, write_manifest

    bundle = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE_DIR, bundle)
    manifest = read_manifest(bundle)
    write_manifest(bundle, manifest.model_copy(update={"postprocess": PostprocessSpec(threshold=0.8, min_area_px=12)}))
    data = tmp_path / "data"
    write_synthetic_dataset(data, count=1, seed=3, width=320, height=256, style="photo", progress=False)
    own = evaluate_path(bundle, data, progress=False)
    assert own["threshold"] == 0.8 and own["min_area_px"] == 12
    told = evaluate_path(bundle, data, threshold=0.3, min_area_px=6, progress=False)
    assert told["threshold"] == 0.3 and told["min_area_px"] == 6


def test_a_threshold_sweep_equals_separate_evaluations(tmp_path, capsys):
    from holevision.export.evaluate import evaluate_path
    from holevision.export.synth import write_synthetic_dataset
    from holevision.runtime.cli import main

    data = tmp_path / "data"
    write_synthetic_dataset(data, count=2, seed=4, width=320, height=256, style="mixed", progress=False)
    swept = evaluate_path("default", data, sweep=[0.3, 0.8], progress=False)
    for threshold in (0.3, 0.8):
        alone = evaluate_path("default", data, threshold=threshold, progress=False)
        assert swept["sweep"][str(threshold)]["f1"] == alone["f1"]
        assert swept["sweep"][str(threshold)]["holes_predicted"] == alone["holes_predicted"]
    assert main(["eval", "--model", "default", "--data", str(data), "--sweep", "0.3,0.8"]) == 0
    assert "threshold precision" in capsys.readouterr().out
    assert main(["eval", "--model", "default", "--data", str(data), "--sweep", "1.5"]) == 2


def test_per_image_rows_name_each_image_and_add_up_to_the_totals(tmp_path):
    from holevision.export.evaluate import evaluate_thresholds

    items = load_labeled_images(_disc_dataset(tmp_path / "d"))   # image 0: holes at (20, 20) and (60, 44)

    def misses_the_top_left_hole(image):
        hole = (image[..., 0] < 100).astype(np.float32)
        hole[:32, :32] = 0.0
        return np.stack([1 - hole, hole])

    summary = evaluate_thresholds(items, misses_the_top_left_hole, [0.5], refine=False, per_image=True)[0.5]
    rows = summary["per_image"]
    assert [Path(row["image"]).name for row in rows] == ["0.png", "1.png"]
    assert [(row["holes_true"], row["found"], row["missed"], row["false_positives"]) for row in rows] == \
        [(2, 1, 1, 0), (1, 1, 0, 0)]
    assert sum(row["missed"] for row in rows) == summary["false_negatives"] == 1
    assert "per_image" not in evaluate_thresholds(items, misses_the_top_left_hole, [0.5], refine=False)[0.5]


def test_eval_per_image_report_feeds_data_subset(tmp_path, capsys):
    """`eval --per-image` on the packaged bundle, then `data subset` keeps exactly the images it says
    have a missed hole plus the asked number of others, and the subset reads back with the same labels."""
    from holevision.export.synth import write_synthetic_dataset
    from holevision.runtime.cli import main

    data = tmp_path / "pool"
    write_synthetic_dataset(data, count=6, seed=5, width=320, height=256, style="mixed", progress=False)
    report = tmp_path / "pool_eval.json"
    assert main(["eval", "--model", "default", "--data", str(data), "--no-verifier", "--threshold", "0.995",
                 "--per-image", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["threshold"] == 0.995 and doc["verifier"] is None and len(doc["images"]) == 6
    hard = [row["image"] for row in doc["images"] if row["missed"]]
    assert 0 < len(hard) < 6, "the test needs some images with a miss and some without; change the seed"
    assert f"{len(hard)} of 6 images have a missed hole" in capsys.readouterr().out

    out = tmp_path / "hard"
    assert main(["data", "subset", str(data), "--out", str(out), "--missed-in", str(report), "--others", "1"]) == 0
    subset = load_labeled_images(out)
    assert len(subset) == len(hard) + 1 and set(hard) <= {str(item.image_path) for item in subset}
    original = {str(item.image_path): item for item in load_labeled_images(data)}
    for item in subset:
        ours, theirs = item.holes(), original[str(item.image_path)].holes()
        np.testing.assert_allclose(ours.centers, theirs.centers, atol=1e-3)
        assert np.array_equal(item.semantic_mask(), original[str(item.image_path)].semantic_mask())
    assert main(["data", "check", str(out)]) == 0          # the re-pointed instance masks are found
    assert main(["data", "subset", str(tmp_path / "d"), "--out", str(tmp_path / "x"),
                 "--missed-in", str(report)]) == 2          # a report for another set


def test_export_quality_figures_are_evals_figures(tmp_path):
    """The manifest's quality figures (`export --eval`) are `eval --no-verifier --no-refine`'s, on images of
    the export size: one scoring of holes against labels, not two that drift apart."""
    from holevision.export.evaluate import evaluate_path
    from holevision.export.gate_images import load_gate_images
    from holevision.export.quality import quality_figures
    from holevision.export.synth import write_synthetic_dataset
    from holevision.runtime.bundle import DEFAULT_BUNDLE_DIR, read_manifest

    data = tmp_path / "data"
    write_synthetic_dataset(data, count=6, seed=36, width=320, height=256, style="mixed", progress=False)
    size = read_manifest(DEFAULT_BUNDLE_DIR).input
    images = load_gate_images(data, size.height, size.width)
    quality = quality_figures({"fp32": DEFAULT_BUNDLE_DIR / "model.onnx"}, images, threshold=0.9, min_area_px=6.0)["fp32"]
    evaluated = evaluate_path("default", data, threshold=0.9, min_area_px=6.0, refine=False, verify=False,
                              progress=False)
    # seed 36: a labelled sliver under 6 px (ignored, not missed) and partly hidden holes (no center error)
    assert evaluated["holes_ignored_tiny"] >= 1 and evaluated["matched_with_exact_center"] < evaluated["true_positives"]
    assert quality["matched"] == evaluated["true_positives"]
    assert quality["false_positives"] == evaluated["false_positives"]
    assert quality["false_negatives"] == evaluated["false_negatives"]
    assert quality["f1"] == pytest.approx(evaluated["f1"], abs=1e-5)
    assert quality["center_rms_px"] == pytest.approx(evaluated["center_error_rms_px"], abs=1e-4)
