"""`holevision distill`: train a small student from a trained teacher on unlabeled images.

Loss per view: KL divergence of the softened class distributions (temperature T, x T^2) + soft Dice
on the teacher's hole probabilities + feature alignment (the student's stride-2 head features,
projected by a 1x1 conv, vs the teacher's, cosine-normalized MSE). The run folder has the same layout
as `holevision train`'s, so `load_run`, `holevision eval` and the exporter take it as it is.
After training: teacher-student agreement on held-out images and, with labeled ``--val``, both
models' hole metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .labeled_images import list_images, load_labeled_images
from .losses import distillation_loss, feature_alignment_loss
from .train import (TrainingViews, _lr_lambda, build_model, load_run, make_loader, normalize, resolve_device, run_epochs,
                    seed_everything, write_run_config)


@dataclass
class DistillConfig:
    teacher: str                         # teacher run folder (holevision train)
    images: str                          # unlabeled images (a folder, or a dataset folder with images/)
    out: str                             # student run folder to write
    student: str = "nano"                # registered student model
    val: str | None = None               # optional labeled validation set
    size: int = 512
    epochs: int = 10
    batch: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    temperature: float = 2.0
    feature_weight: float = 0.5          # weight of the feature-alignment term (0 = off)
    device: str = "auto"
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # student create_segmenter overrides
    steps_per_epoch: int | None = None
    threshold: float = 0.5
    agreement_images: int = 100          # held-out images for the agreement report
    workers: int = 0

    def __post_init__(self):
        if self.size % 32:
            raise ValueError(f"size must be a multiple of 32, got {self.size}")


class UnlabeledImage:
    """An image with an all-background mask, so the training views code serves distillation too."""

    def __init__(self, path: Path):
        self.image_path = path
        self._shape: tuple[int, int] | None = None

    def read_image(self) -> np.ndarray:
        import cv2

        image = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{self.image_path}: unreadable image")
        self._shape = image.shape[:2]
        return image

    def semantic_mask(self) -> np.ndarray:
        if self._shape is None:
            self.read_image()
        return np.zeros(self._shape, np.uint8)


def agreement(teacher_predict, student_predict, images: list[np.ndarray], threshold: float = 0.5,
              hole_index: int = 1) -> dict:
    """How closely the student reproduces the teacher: pixel agreement, hole-mask IoU, hole-level F1
    of the student's holes against the teacher's (teacher holes taken as ground truth)."""
    from .evaluate import HoleScore, extract_predicted_holes
    from .labeled_images import GroundTruthHoles

    score = HoleScore()
    agree = total = 0
    for image in images:
        p_teacher, p_student = teacher_predict(image), student_predict(image)
        agree += int((p_teacher.argmax(0) == p_student.argmax(0)).sum())
        total += p_teacher[0].size
        teacher_holes = extract_predicted_holes(p_teacher[hole_index], image, threshold)
        student_holes = extract_predicted_holes(p_student[hole_index], image, threshold)
        truth = GroundTruthHoles(teacher_holes.centers, teacher_holes.diameters, np.ones(len(teacher_holes), bool))
        score.add(student_holes, truth, p_student[hole_index] > threshold, p_teacher[hole_index] > threshold)
    summary = score.summary()
    return {"images": len(images), "pixel_agreement": round(agree / max(1, total), 5),
            "hole_mask_iou": summary["mask_iou"], "hole_f1_vs_teacher": summary["f1"],
            "hole_precision_vs_teacher": summary["precision"], "hole_recall_vs_teacher": summary["recall"],
            "center_rms_vs_teacher_px": summary["center_error_rms_px"]}


def distill(config: DistillConfig, progress: bool = True) -> dict:
    from .evaluate import evaluate_probabilities, torch_predictor
    from .models import count_parameters

    out = Path(config.out)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    teacher, teacher_config = load_run(config.teacher, device=device)
    classes = list(teacher.classes)
    paths = list_images(config.images)
    held_out = min(config.agreement_images, len(paths) // 10) if not config.val else 0
    train_paths, agreement_paths = paths[held_out:], paths[:held_out]
    val_items = load_labeled_images(config.val, tuple(classes)) if config.val else []

    student = build_model(config.student, classes, config.overrides, mode="full").to(device)
    with torch.no_grad():
        probe = torch.zeros(1, 3, 64, 64, device=device)
        student_channels = student.forward_with_features(probe)[1].shape[1]
        teacher_channels = teacher.forward_with_features(probe)[1].shape[1]
    projector = nn.Conv2d(student_channels, teacher_channels, 1).to(device)
    optimizer = torch.optim.AdamW(list(student.parameters()) + list(projector.parameters()), lr=config.lr,
                                  weight_decay=config.weight_decay)
    views = TrainingViews([UnlabeledImage(p) for p in train_paths], config.size, config.seed)
    loader = make_loader(views, batch=config.batch, seed=config.seed, steps_per_epoch=config.steps_per_epoch,
                         workers=config.workers)
    generator = loader.sampler.generator  # its state goes into last.pt so a resumed run draws the same views
    steps = len(loader) * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(steps, max(1, min(200, steps // 20))))
    run_config = {**dataclasses.asdict(config), "model": config.student, "classes": classes, "mode": "full",
                  "kind": "distill", "teacher_model": teacher_config["model"],
                  "backbone_kind": student.backbone.kind}
    write_run_config(out, run_config)

    def step(batch):
        rgb, _ = batch
        pixels = normalize(rgb.to(device), student)
        with torch.no_grad():
            teacher_out, teacher_features = teacher.forward_with_features(normalize(rgb.to(device), teacher))
        student_out, student_features = student.forward_with_features(pixels)
        loss = distillation_loss(student_out.logits, teacher_out.logits, config.temperature)
        if config.feature_weight > 0:
            loss = loss + config.feature_weight * feature_alignment_loss(projector(student_features), teacher_features)
        return loss, len(rgb)

    header = {"model": config.student, "teacher": str(config.teacher), "teacher_model": teacher_config["model"],
              "classes": classes, "size": config.size, "unlabeled_images": len(train_paths),
              "val_images": len(val_items), "device": device, "seed": config.seed,
              "parameters": count_parameters(student), "teacher_parameters": count_parameters(teacher)}
    result = run_epochs(model=student, out=out, run_config=run_config, loader=loader, views=views, step_fn=step,
                        optimizer=optimizer, scheduler=scheduler, epochs=config.epochs, start_epoch=0,
                        history=[], best=None, val_items=val_items, device=device, threshold=config.threshold,
                        mode="full", progress=progress, sampler_generator=generator, header=header)

    best_student, _ = load_run(out, device=device)
    teacher_predict = torch_predictor(teacher, device)
    student_predict = torch_predictor(best_student, device)
    if val_items:
        images = [item.read_image() for item in val_items[: config.agreement_images]]
    else:
        images = [UnlabeledImage(p).read_image() for p in agreement_paths]
    report = {"agreement": agreement(teacher_predict, student_predict, images, config.threshold)}
    if val_items:
        report["teacher_val"] = evaluate_probabilities(val_items, teacher_predict, config.threshold)
        report["student_val"] = evaluate_probabilities(val_items, student_predict, config.threshold)
    import json

    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.update(report)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    with open(out / "summary.txt", "a") as summary:
        summary.write("\nteacher-student agreement: " + json.dumps(report["agreement"]) + "\n")
        for key in ("teacher_val", "student_val"):
            if key in report:
                r = report[key]
                summary.write(f"{key}: F1 {r['f1']} P {r['precision']} R {r['recall']} IoU {r['mask_iou']} "
                              f"center rms {r['center_error_rms_px']} px\n")
    result.update(report)
    return result
