"""Distillation: a student learns from a teacher on unlabeled images; agreement and val figures reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
cv2 = pytest.importorskip("cv2")

from holevision.export.distill import DistillConfig, agreement, distill  # noqa: E402
from holevision.export.train import TrainConfig, load_run, train  # noqa: E402

TINY = dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], decoder_channels=16, stem_channels=[8, 8, 8])
TINY_STUDENT = dict(hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], decoder_channels=8, stem_channels=[8, 8, 8])


def make_discs(root, count, seed, size=80, masks=True):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    if masks:
        (root / "masks").mkdir()
    for i in range(count):
        image = np.full((size, size, 3), int(rng.integers(150, 220)), np.uint8)
        instances = np.zeros((size, size), np.uint16)
        for k in range(int(rng.integers(1, 3))):
            radius = rng.uniform(5, 10)
            center = tuple(int(v) for v in rng.uniform(radius + 2, size - radius - 2, 2))
            cv2.circle(image, center, int(radius), (40, 40, 40), -1)
            cv2.circle(instances, center, int(radius), k + 1, -1)
        cv2.imwrite(str(root / "images" / f"{i:03d}.png"), image)
        if masks:
            cv2.imwrite(str(root / "masks" / f"{i:03d}.png"), instances)
    return root


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("distill")
    data = make_discs(base / "train", 12, seed=0)
    train(TrainConfig(data=str(data), out=str(base / "teacher"), model="nano", mode="full", size=64, epochs=4,
                      batch=4, steps_per_epoch=4, lr=3e-3, overrides=TINY), progress=False)
    return base


def test_distill_writes_a_loadable_student_run_and_reports(teacher_run, tmp_path):
    images = make_discs(tmp_path / "unlabeled", 12, seed=2, masks=False)
    val = make_discs(tmp_path / "val", 3, seed=3)
    result = distill(DistillConfig(teacher=str(teacher_run / "teacher"), images=str(images), out=str(tmp_path / "student"),
                                   student="nano", val=str(val), size=64, epochs=3, batch=4, steps_per_epoch=3,
                                   overrides=TINY_STUDENT, lr=3e-3), progress=False)
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[-1] < losses[0]
    for key in ("pixel_agreement", "hole_mask_iou", "hole_f1_vs_teacher"):
        assert key in result["agreement"]
    assert 0.0 <= result["agreement"]["pixel_agreement"] <= 1.0
    assert "f1" in result["teacher_val"] and "f1" in result["student_val"]
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert metrics["agreement"] == result["agreement"]
    student, config = load_run(tmp_path / "student")
    assert config["kind"] == "distill" and config["model"] == "nano"
    assert student.backbone.channels == [8, 8, 16, 16]


def test_agreement_of_a_model_with_itself_is_perfect(teacher_run):
    from holevision.export.evaluate import torch_predictor

    teacher, _ = load_run(teacher_run / "teacher")
    predict = torch_predictor(teacher)
    images = [cv2.imread(str(p)) for p in sorted((teacher_run / "train" / "images").iterdir())[:3]]
    report = agreement(predict, predict, images)
    assert report["pixel_agreement"] == 1.0 and report["hole_f1_vs_teacher"] == 1.0
