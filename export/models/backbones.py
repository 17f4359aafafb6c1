"""DINOv3 backbones from Hugging Face transformers, wrapped to return multi-scale feature maps.

Both wrappers hold the transformers model itself as ``self.hf`` so its ``state_dict`` keys are exactly
those of an HF-format folder (``config.json`` + ``model.safetensors``), which makes loading real
weights a plain ``load_state_dict``.

* ConvNeXt: the four stage outputs at strides 4, 8, 16, 32.
* ViT: patch tokens (stride 16) taken after four evenly spaced blocks, normalized with the final norm,
  reshaped to maps. The segmenter adds a conv stem for stride 4/8 detail.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvNextFeatures(nn.Module):
    """DINOv3 ConvNeXt: (N, 3, H, W) -> four maps at strides 4, 8, 16, 32."""

    kind = "convnext"

    def __init__(self, config):
        super().__init__()
        from transformers import DINOv3ConvNextModel

        self.hf = DINOv3ConvNextModel(config)
        self.channels = list(config.hidden_sizes)
        self.strides = [4, 8, 16, 32][: len(self.channels)]

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        features = []
        hidden = pixels
        for stage in self.hf.model.stages:
            hidden = stage(hidden)
            features.append(hidden)
        return features


class ViTFeatures(nn.Module):
    """DINOv3 ViT: (N, 3, H, W) (H, W multiples of the patch size) -> four stride-16 token maps."""

    kind = "vit"

    def __init__(self, config, taps: tuple[int, ...] | None = None):
        super().__init__()
        from transformers import DINOv3ViTModel

        self.hf = DINOv3ViTModel(config)
        depth = config.num_hidden_layers
        if taps is None:
            # Four evenly spaced blocks ending with the last (ViT-S/B: 3, 6, 9, 12 in 1-based terms).
            taps = tuple(sorted({max(0, round(depth * k / 4) - 1) for k in (1, 2, 3, 4)}))
        self.taps = tuple(taps)
        self.patch_size = int(config.patch_size)
        self.num_prefix_tokens = 1 + int(config.num_register_tokens)
        self.channels = [int(config.hidden_size)] * len(self.taps)
        self.strides = [self.patch_size] * len(self.taps)

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        batch, _, height, width = pixels.shape
        grid_h, grid_w = height // self.patch_size, width // self.patch_size
        hidden = self.hf.embeddings(pixels)
        position = self.hf.rope_embeddings(pixels)
        features = []
        for index, layer in enumerate(self.hf.model.layer):
            hidden = layer(hidden, position_embeddings=position)
            if index in self.taps:
                tokens = self.hf.norm(hidden)[:, self.num_prefix_tokens:, :]
                features.append(tokens.transpose(1, 2).reshape(batch, -1, grid_h, grid_w))
        return features
