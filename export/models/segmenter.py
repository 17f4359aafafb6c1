"""`Segmenter`: a DINOv3 backbone + detail stem + pyramid decoder -> per-pixel class logits.

Input: float (N, 3, H, W) RGB normalized with ``model.mean`` / ``model.std`` (ImageNet statistics),
any H, W. The model pads to a multiple of ``input_multiple`` (32) on the bottom/right, never crops,
and returns logits for the unpadded size.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .heads import DetailStem, PyramidDecoder, SegmentationHead, ViTPyramidAdapter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegmenterOutput(NamedTuple):
    """What the model returns; ONNX output names come from these fields."""

    logits: torch.Tensor  # (N, C, H, W) class logits at input size


class Segmenter(nn.Module):
    """Backbone (``ConvNextFeatures`` or ``ViTFeatures``) + stem + decoder + head."""

    input_multiple = 32

    def __init__(self, backbone: nn.Module, classes: tuple[str, ...], name: str,
                 decoder_channels: int = 64, stem_channels: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        if len(classes) < 2 or classes[0] != "background":
            raise ValueError(f"classes must start with 'background' and have at least 2 entries, got {classes!r}")
        self.name = name
        self.classes = tuple(classes)
        self.mean = IMAGENET_MEAN
        self.std = IMAGENET_STD
        self.backbone = backbone
        self.stem = DetailStem(stem_channels)
        if backbone.kind == "vit":
            self.adapter = ViTPyramidAdapter(backbone.channels[0], self.stem.channels, decoder_channels)
            pyramid_channels = self.adapter.channels
        else:
            self.adapter = None
            c = backbone.channels
            pyramid_channels = [c[0] + stem_channels[1], c[1] + stem_channels[2], *c[2:]]
        self.decoder = PyramidDecoder(pyramid_channels, decoder_channels)
        self.head = SegmentationHead(decoder_channels, stem_channels[0], len(self.classes))

    def _pad(self, pixels: torch.Tensor) -> torch.Tensor:
        height, width = pixels.shape[-2:]
        pad_h = (-height) % self.input_multiple
        pad_w = (-width) % self.input_multiple
        if pad_h or pad_w:
            pixels = F.pad(pixels, (0, pad_w, 0, pad_h))
        return pixels

    def forward_with_features(self, pixels: torch.Tensor) -> tuple[SegmenterOutput, torch.Tensor]:
        """Logits plus the stride-2 head features (for distillation's feature alignment)."""
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ValueError(f"expected pixels of shape (N, 3, H, W), got {tuple(pixels.shape)}")
        height, width = pixels.shape[-2:]
        padded = self._pad(pixels)
        stem_maps = self.stem(padded)
        backbone_maps = self.backbone(padded)
        if self.adapter is not None:
            pyramid = self.adapter(backbone_maps, stem_maps)
        else:
            pyramid = [torch.cat([backbone_maps[0], stem_maps[1]], 1),
                       torch.cat([backbone_maps[1], stem_maps[2]], 1), *backbone_maps[2:]]
        fused = self.decoder(pyramid)
        logits_s2, head_features = self.head(fused, stem_maps[0])
        logits = F.interpolate(logits_s2, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return SegmenterOutput(logits=logits[:, :, :height, :width]), head_features

    def forward(self, pixels: torch.Tensor) -> SegmenterOutput:
        return self.forward_with_features(pixels)[0]

    def backbone_parameters(self):
        return self.backbone.parameters()

    def head_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]
