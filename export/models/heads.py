"""The light segmentation head: a conv stem for fine detail and an FPN-style decoder.

Only export-friendly layers (Conv2d, BatchNorm2d, ReLU, bilinear resize, add, concat): everything
folds and quantizes cleanly and exports to ONNX opset 17.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def resize_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)


class DetailStem(nn.Module):
    """Image -> maps at strides 2, 4, 8: the fine detail a 4 px hole needs (spatial-prior idea)."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        c2, c4, c8 = channels
        self.channels = list(channels)
        self.to_s2 = nn.Sequential(conv_bn_relu(3, c2, stride=2), conv_bn_relu(c2, c2))
        self.to_s4 = conv_bn_relu(c2, c4, stride=2)
        self.to_s8 = conv_bn_relu(c4, c8, stride=2)

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        s2 = self.to_s2(pixels)
        s4 = self.to_s4(s2)
        s8 = self.to_s8(s4)
        return [s2, s4, s8]


class PyramidDecoder(nn.Module):
    """FPN top-down decoder over maps at strides (4, 8, 16, 32) -> fused stride-4 features.

    ``in_channels`` lists the channels of each input map, finest first.
    """

    def __init__(self, in_channels: list[int], channels: int = 64):
        super().__init__()
        self.channels = channels
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(conv_bn_relu(channels, channels) for _ in in_channels)
        self.fuse = conv_bn_relu(channels * len(in_channels), channels, kernel_size=1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(f) for conv, f in zip(self.lateral, features)]
        for level in range(len(laterals) - 2, -1, -1):
            laterals[level] = laterals[level] + resize_to(laterals[level + 1], laterals[level])
        smoothed = [conv(f) for conv, f in zip(self.smooth, laterals)]
        finest = smoothed[0]
        return self.fuse(torch.cat([finest] + [resize_to(s, finest) for s in smoothed[1:]], dim=1))


class SegmentationHead(nn.Module):
    """Fused stride-4 features (reduced to ``channels``) + stride-2 stem detail -> class logits at stride 2."""

    def __init__(self, decoder_channels: int, detail_channels: int, num_classes: int, channels: int = 32):
        super().__init__()
        self.reduce = conv_bn_relu(decoder_channels, channels, kernel_size=1)
        self.refine = nn.Sequential(
            conv_bn_relu(channels + detail_channels, channels),
            conv_bn_relu(channels, channels),
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, fused_s4: torch.Tensor, detail_s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([resize_to(self.reduce(fused_s4), detail_s2), detail_s2], dim=1)
        x = self.refine(x)
        return self.classifier(x), x


class ViTPyramidAdapter(nn.Module):
    """Turns four stride-16 ViT maps + stem maps (strides 4, 8) into a (4, 8, 16, 32) pyramid."""

    def __init__(self, vit_channels: int, stem_channels: list[int], channels: int):
        super().__init__()
        c4, c8 = stem_channels[1], stem_channels[2]
        self.s4 = nn.Sequential(
            nn.ConvTranspose2d(vit_channels, channels, 4, stride=4), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.s4_detail = nn.Conv2d(c4, channels, 1)
        self.s8 = nn.Sequential(
            nn.ConvTranspose2d(vit_channels, channels, 2, stride=2), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.s8_detail = nn.Conv2d(c8, channels, 1)
        self.s16 = nn.Conv2d(vit_channels, channels, 1)
        self.s32 = conv_bn_relu(vit_channels, channels, stride=2)
        self.channels = [channels] * 4

    def forward(self, vit_maps: list[torch.Tensor], stem_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        first, second, third, last = vit_maps[0], vit_maps[1], vit_maps[-2], vit_maps[-1]
        s4 = self.s4(first) + self.s4_detail(stem_maps[1])
        s8 = self.s8(second) + self.s8_detail(stem_maps[2])
        return [s4, s8, self.s16(third), self.s32(last)]
