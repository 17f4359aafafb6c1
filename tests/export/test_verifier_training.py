"""Training a hole verifier: labels, the cut, ONNX parity, and a bundle that learns discs from squares."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from holevision.export.labeled_images import GroundTruthHoles
from holevision.export.verifier_training import (Candidates, VerifierConfig, best_cut, export_verifier_onnx, f1_at,
                                                 fit_verifier, label_candidates, verifier_tower_widths)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))   # the runtime tests' fake bundle
from fake_bundle import make_fake_bundle  # noqa: E402


def test_candidates_are_labelled_as_evaluation_matches_them_and_tiny_truth_is_left_out():
    truth = GroundTruthHoles(centers=np.array([[10.0, 10.0], [40.0, 10.0], [70.0, 10.0]]),
                             diameters=np.array([8.0, 8.0, 2.0]), exact=np.ones(3, bool),
                             areas=np.array([50.0, 50.0, 3.0]))
    centers = np.array([[10.5, 10.0], [25.0, 10.0], [70.2, 10.0], [41.0, 11.0]])
    labels, keep, holes_true = label_candidates(centers, truth, min_area_px=6.0)
    assert labels.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert keep.tolist() == [True, True, False, True]      # the match of a 3 px hole counts neither way
    assert holes_true == 2


def scored(labels, holes_true):
    labels = np.asarray(labels, float)
    return Candidates(crops=np.zeros((len(labels), 2, 8, 8), np.float32),
                      measures=np.zeros((len(labels), 7), np.float32), labels=labels, holes_true=holes_true)


def test_f1_counts_labelled_holes_that_never_became_candidates_as_missed():
    candidates = scored([1, 1, 0, 0], holes_true=3)
    row = f1_at(np.array([0.9, 0.4, 0.8, 0.1]), candidates, 0.5)
    assert (row["precision"], row["recall"]) == (0.5, pytest.approx(1 / 3, abs=1e-5))
    cut, table = best_cut(np.array([0.9, 0.7, 0.3, 0.1]), candidates)
    assert f1_at(np.array([0.9, 0.7, 0.3, 0.1]), candidates, cut)["f1"] == pytest.approx(0.8)
    assert 0.3 < cut <= 0.7 and len(table) == 19


def test_fitting_refuses_candidates_of_one_kind():
    with pytest.raises(ValueError, match="needs candidates that are holes and candidates that are not"):
        fit_verifier(scored([1, 1, 1], holes_true=3), VerifierConfig(epochs=1))


def test_the_tower_pools_down_to_a_few_pixels_whatever_the_crop():
    assert verifier_tower_widths(16) == [[16], [32, 32], [64]]             # the default: 16 -> 8 -> 4 px
    assert verifier_tower_widths(32) == [[16, 16], [32, 32], [48], [64]]     # the first verifier's design
    assert verifier_tower_widths(24) == [[16], [32, 32], [64]]             # 24 -> 12 -> 6 px
    assert verifier_tower_widths(8) == [[16], [64]]


@pytest.mark.parametrize("crop_px", [16, 24])
def test_the_exported_verifier_matches_torch_and_takes_any_number_of_holes(tmp_path, crop_px):
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    candidates = Candidates(crops=rng.normal(size=(40, 2, crop_px, crop_px)).astype(np.float32),
                            measures=rng.normal(size=(40, 7)).astype(np.float32),
                            labels=(rng.random(40) > 0.5).astype(float), holes_true=20)
    net = fit_verifier(candidates, VerifierConfig(crop_px=crop_px, epochs=1, batch=16), progress=False)
    difference = export_verifier_onnx(net, tmp_path / "verifier.onnx", crop_px, check=candidates)
    assert difference <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "verifier.onnx"), providers=["CPUExecutionProvider"])
    for count in (1, 7):
        scores = session.run(["score"], {"crops": candidates.crops[:count], "measures": candidates.measures[:count]})[0]
        assert scores.shape == (count,) and ((scores > 0) & (scores < 1)).all()


def labelled_plates(folder: Path, count: int, seed: int, draw) -> Path:
    """``count`` bright 128x128 plates as an image/mask folder; ``draw(rng, image, mask, cells)`` puts dark
    shapes into the four shuffled cells (their centres) and labels the holes among them in ``mask``."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for index in range(count):
        image = rng.normal(200, 5, (128, 128, 3)).clip(0, 255).astype(np.uint8)
        mask = np.zeros((128, 128), np.uint16)
        cells = [(u + int(rng.integers(-6, 7)), v + int(rng.integers(-6, 7)))
                 for u, v in rng.permutation([(32, 32), (96, 32), (32, 96), (96, 96)])]
        draw(rng, image, mask, cells)
        cv2.imwrite(str(folder / "images" / f"{index:04d}.png"), image)
        cv2.imwrite(str(folder / "masks" / f"{index:04d}.png"), mask)
    return folder


def discs_and_squares(folder: Path, count: int, seed: int) -> Path:
    """Dark discs (labelled holes) and dark squares (not holes) on a bright plate, as an image/mask folder."""
    def draw(rng, image, mask, cells):
        for k, (u, v) in enumerate(cells):
            size = int(rng.integers(6, 10))
            if k < 2:
                cv2.circle(image, (u, v), size, (40, 40, 40), -1, cv2.LINE_AA)
                cv2.circle(mask, (u, v), size, k + 1, -1)
            else:
                cv2.rectangle(image, (u - size, v - size), (u + size, v + size), (40, 40, 40), -1)

    return labelled_plates(folder, count, seed, draw)


@pytest.mark.slow
def test_train_verifier_learns_holes_from_look_alikes_and_writes_a_verified_bundle(tmp_path, capsys):
    from holevision.runtime.bundle import read_manifest, verify_bundle
    from holevision.runtime.cli import main
    from holevision.runtime.detector import Detector

    bundle = make_fake_bundle(tmp_path / "dark_pixels")        # finds every dark blob: discs and squares
    fit, val = discs_and_squares(tmp_path / "fit", 40, seed=1), discs_and_squares(tmp_path / "val", 12, seed=2)
    out = tmp_path / "verified"
    code = main(["train-verifier", "--bundle", str(bundle), "--data", str(fit), "--val", str(val), "--out", str(out),
                 "--epochs", "12", "--batch", "32", "--candidate-threshold", "0.5", "--no-progress",
                 "--json", str(tmp_path / "figures.json")])
    assert code == 0
    printed = capsys.readouterr().out
    figures = json.loads((tmp_path / "figures.json").read_text())
    without, with_verifier = figures["val_without_verifier"], figures["val_with_verifier"]
    # Without it every square is a false hole (precision 0.5); with it they are gone and no disc is lost.
    assert without["precision"] == pytest.approx(0.5, abs=0.02)
    assert with_verifier["precision"] >= 0.95 and with_verifier["recall"] >= 0.95
    assert f"-> {with_verifier['f1']:.4f} with it" in printed
    assert verify_bundle(out) == []
    manifest = read_manifest(out)
    assert manifest.postprocess.verifier.file == "verifier.onnx" and "verifier.onnx" in manifest.files
    assert manifest.postprocess.threshold == 0.5 and manifest.metrics["verifier"]["min_score"] == figures["min_score"]
    image = cv2.imread(str(val / "images" / "0000.png"))
    assert len(Detector(out).detect(image).holes) == 2
    assert len(Detector(out, verify=False).detect(image).holes) == 4
    # `holevision eval` of the new bundle runs its verifier, as the line does; --no-verifier does not.
    from holevision.export.evaluate import evaluate_path

    assert evaluate_path(out, val, progress=False)["f1"] == pytest.approx(with_verifier["f1"], abs=1e-6)
    assert evaluate_path(out, val, progress=False, verify=False)["precision"] == pytest.approx(0.5, abs=0.02)


def sets_and_loners(folder: Path, count: int, seed: int) -> Path:
    """Three dark discs of one size (labelled holes) and one more of another size (not a hole) per image.
    Which of the two sizes is the set's is a coin toss, so a disc alone says nothing: only the frame's
    other candidates tell the loner apart."""
    def draw(rng, image, mask, cells):
        small = int(rng.integers(4, 8))
        large = int(round(small * rng.uniform(1.5, 1.9)))
        radius, loner = (small, large) if rng.random() < 0.5 else (large, small)
        for k, (u, v) in enumerate(cells):
            cv2.circle(image, (u, v), radius if k < 3 else loner, (40, 40, 40), -1, cv2.LINE_AA)
            if k < 3:
                cv2.circle(mask, (u, v), radius, k + 1, -1)

    return labelled_plates(folder, count, seed, draw)


@pytest.mark.slow
def test_the_context_pass_tells_a_loner_from_a_set_of_holes_and_can_be_added_to_a_kept_verifier(tmp_path, capsys):
    from holevision.runtime.bundle import read_manifest, verify_bundle
    from holevision.runtime.cli import main
    from holevision.runtime.detector import Detector

    bundle = make_fake_bundle(tmp_path / "dark_pixels")        # finds every dark disc
    fit, context = sets_and_loners(tmp_path / "fit", 30, seed=1), sets_and_loners(tmp_path / "context", 60, seed=3)
    val = sets_and_loners(tmp_path / "val", 16, seed=2)
    out = tmp_path / "verified"
    common = ["--val", str(val), "--epochs", "12", "--batch", "32", "--candidate-threshold", "0.5",
              "--context-epochs", "200", "--no-progress"]
    assert main(["train-verifier", "--bundle", str(bundle), "--data", str(fit), "--context-data", str(context),
                 "--out", str(out), "--json", str(tmp_path / "figures.json"), *common]) == 0
    printed = capsys.readouterr().out
    figures = json.loads((tmp_path / "figures.json").read_text())
    crop_only, with_context = figures["val_with_crop_verifier"], figures["val_with_verifier"]
    # The crop verifier cannot tell the loner from the set (precision about 0.75); the context pass can.
    assert crop_only["precision"] <= 0.85
    assert with_context["precision"] >= 0.95 and with_context["recall"] >= 0.95
    assert f"with its context pass (min_score {figures['min_score']})" in printed
    assert verify_bundle(out) == []
    manifest = read_manifest(out)
    assert manifest.postprocess.verifier.context_file == "context.onnx" and "context.onnx" in manifest.files
    assert manifest.postprocess.verifier.min_score == figures["min_score"]
    image = cv2.imread(str(val / "images" / "0000.png"))
    assert len(Detector(out).detect(image).holes) == 3
    from holevision.export.evaluate import evaluate_path

    assert evaluate_path(out, val, progress=False)["f1"] == pytest.approx(with_context["f1"], abs=1e-6)

    # Keep that crop verifier, fit only a new context pass: verifier.onnx travels unchanged.
    again = tmp_path / "again"
    assert main(["train-verifier", "--bundle", str(out), "--context-data", str(context), "--out", str(again),
                 "--json", str(tmp_path / "again.json"), *common]) == 0
    kept = json.loads((tmp_path / "again.json").read_text())
    assert kept["crop_verifier"] == "kept from the bundle" and kept["crop_min_score"] == figures["crop_min_score"]
    assert (again / "verifier.onnx").read_bytes() == (out / "verifier.onnx").read_bytes()
    assert kept["val_with_verifier"]["precision"] >= 0.95 and verify_bundle(again) == []


def test_train_verifier_refuses_to_keep_a_verifier_the_bundle_does_not_have(tmp_path, capsys):
    from holevision.runtime.cli import main

    bundle = make_fake_bundle(tmp_path / "dark_pixels")
    val = discs_and_squares(tmp_path / "val", 2, seed=2)
    code = main(["train-verifier", "--bundle", str(bundle), "--context-data", str(val), "--val", str(val),
                 "--out", str(tmp_path / "out"), "--no-progress"])
    assert code != 0
    assert "has no hole verifier to keep; name labeled sets to fit one on (--data)" in capsys.readouterr().err
    assert main(["train-verifier", "--bundle", str(bundle), "--val", str(val), "--out", str(tmp_path / "out")]) != 0
    assert "nothing to train" in capsys.readouterr().err
    assert main(["train-verifier", "--bundle", str(bundle), "--data", str(val), "--context-data", str(val),
                 "--val", str(val), "--out", str(tmp_path / "out")]) != 0
    assert "fits the crop verifier and its context pass both" in capsys.readouterr().err
