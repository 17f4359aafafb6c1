"""Losses: cross-entropy + Dice for training (holes are small), and the distillation loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice over the foreground classes (index >= 1), averaged; ``target`` is (N, H, W) long."""
    probabilities = logits.softmax(dim=1)[:, 1:]
    one_hot = F.one_hot(target.clamp_min(0), logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probabilities.dtype)
    return soft_dice_loss(probabilities, one_hot, eps)


def soft_dice_loss(probabilities: torch.Tensor, target_probabilities: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - Dice between (N, K, H, W) probability maps, pooled over the batch per class."""
    dims = (0, 2, 3)
    intersection = (probabilities * target_probabilities).sum(dims)
    total = probabilities.sum(dims) + target_probabilities.sum(dims)
    return (1 - (2 * intersection + eps) / (total + eps)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy + ``dice_weight`` x Dice."""
    return F.cross_entropy(logits, target) + dice_weight * dice_loss(logits, target)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0,
                      dice_weight: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) on softened logits (x T^2) + soft Dice on the teacher's foreground."""
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1),
                  reduction="batchmean") * t * t / (student_logits.shape[-1] * student_logits.shape[-2])
    student_fg = student_logits.softmax(1)[:, 1:]
    teacher_fg = teacher_logits.softmax(1)[:, 1:]
    return kl + dice_weight * soft_dice_loss(student_fg, teacher_fg)


def feature_alignment_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """MSE between (projected) student and teacher feature maps, each normalized per channel vector."""
    if student_features.shape[-2:] != teacher_features.shape[-2:]:
        student_features = F.interpolate(student_features, size=teacher_features.shape[-2:], mode="bilinear",
                                         align_corners=False)
    return F.mse_loss(F.normalize(student_features, dim=1), F.normalize(teacher_features, dim=1))
