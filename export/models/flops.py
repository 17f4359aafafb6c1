"""Model size figures: parameter count and a hook-based FLOPs estimate (conv, linear, matmul)."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def estimate_gflops(model: nn.Module, height: int, width: int) -> float:
    """GFLOPs (2 x multiply-adds) of one forward pass on a (1, 3, height, width) input.

    Counts Conv2d, ConvTranspose2d and Linear layers by hooks, and attention's two matmuls for ViTs
    (estimated from the token count). Normalization, activations and resizes are ignored (small).
    """
    total = [0]

    def conv_hook(module: nn.Conv2d, inputs, output):
        kernel_ops = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):
            total[0] += 2 * inputs[0].numel() // inputs[0].shape[0] * module.out_channels * \
                module.kernel_size[0] * module.kernel_size[1] // module.groups
        else:
            total[0] += 2 * output.numel() // output.shape[0] * kernel_ops

    def linear_hook(module: nn.Linear, inputs, output):
        total[0] += 2 * output.numel() // output.shape[0] * module.in_features

    def attention_hook(module, inputs, output):
        hidden = inputs[0] if inputs else None
        if hidden is None or hidden.ndim != 3:
            return
        tokens, dim = hidden.shape[1], hidden.shape[2]
        total[0] += 2 * 2 * tokens * tokens * dim

    handles = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
        elif type(module).__name__ == "DINOv3ViTAttention":
            handles.append(module.register_forward_hook(attention_hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total[0] / 1e9
