"""Losses: cross-entropy (optionally over the hardest pixels) + Dice for training (holes are small), and the
distillation loss."""

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


def hard_pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, fraction: float) -> torch.Tensor:
    """Cross-entropy averaged over the hardest ``fraction`` of the batch's pixels (online hard example mining).

    A false blob of 20 px on a washer or a missed 5 px hole is a whole wrong hole to the line, but a
    rounding error in a mean over every pixel; averaging over the worst pixels only gives them weight.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"hard pixel fraction must be in (0, 1], got {fraction}")
    per_pixel = F.cross_entropy(logits, target, reduction="none").flatten()
    kept = max(1, int(round(fraction * per_pixel.numel())))
    if kept >= per_pixel.numel():
        return per_pixel.mean()
    return per_pixel.topk(kept, sorted=False).values.mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0,
                      hard_pixel_fraction: float = 1.0) -> torch.Tensor:
    """Cross-entropy (over the hardest ``hard_pixel_fraction`` of pixels; 1 = all) + ``dice_weight`` x Dice."""
    if hard_pixel_fraction >= 1.0:
        cross_entropy = F.cross_entropy(logits, target)
    else:
        cross_entropy = hard_pixel_cross_entropy(logits, target, hard_pixel_fraction)
    return cross_entropy + dice_weight * dice_loss(logits, target)


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
