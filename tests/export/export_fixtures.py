"""Shared pieces of the export tests: images with dark round holes, and a tiny model that finds them."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch import nn

from holevision.export.gate_images import GateImages
from holevision.export.labeled_images import GroundTruthHoles

HEIGHT, WIDTH = 64, 96


def labeled_disc_images(count: int = 4, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> GateImages:
    """Bright noisy plates (uint8 BGR) with 2-3 dark anti-aliased discs each, well inside the frame,
    with their true centers and diameters."""
    rng = np.random.default_rng(seed)
    images, centers, diameters = [], [], []
    for _ in range(count):
        image = rng.normal(190, 6, (height, width, 3)).clip(0, 255).astype(np.uint8)
        c, d = [], []
        for k in range(int(rng.integers(2, 4))):
            u = 14 + 30 * k + int(rng.integers(0, 6))
            v = int(rng.integers(14, height - 14))
            radius = int(rng.integers(5, 9))
            cv2.circle(image, (u * 16, v * 16), radius * 16, (30, 35, 40), -1, cv2.LINE_AA, shift=4)
            c.append((u, v))
            d.append(2.0 * radius)
        images.append(image)
        centers.append(np.asarray(c, float))
        diameters.append(np.asarray(d, float))
    truth = [GroundTruthHoles(c, d, np.ones(len(c), bool)) for c, d in zip(centers, diameters)]
    return GateImages("labeled test discs", images, truth)


def disc_images(count: int = 4, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> list[np.ndarray]:
    return labeled_disc_images(count, height, width, seed).images


def disc_gate_images(count: int = 4, **kwargs) -> GateImages:
    return GateImages("test discs", disc_images(count, **kwargs))


class DiscOutput(NamedTuple):
    logits: torch.Tensor


class DiscDetector(nn.Module):
    """Stand-in segmenter: hole logit = how much darker than the plate a smoothed pixel is.

    Conv layers (quantized in INT8) and a channels-last LayerNorm (kept float) like the real students,
    with the attributes the exporter needs (``mean``, ``std``, ``classes``, ``name``, ``input_multiple``).
    """

    input_multiple = 32

    def __init__(self):
        super().__init__()
        self.name = "disc-detector"
        self.classes = ("background", "hole")
        self.mean = (0.485, 0.456, 0.406)
        self.std = (0.229, 0.224, 0.225)
        self.grey = nn.Conv2d(3, 4, 1)
        self.norm = nn.LayerNorm(4)
        self.smooth = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)
        with torch.no_grad():
            std = torch.tensor(self.std)
            mean = torch.tensor(self.mean)
            # grey level in 0..1 from normalized RGB, replicated on 4 channels with small offsets
            self.grey.weight.copy_((std / 3).view(1, 3, 1, 1).repeat(4, 1, 1, 1))
            self.grey.bias.copy_(torch.tensor([0.0, 0.01, 0.02, 0.03]) + float((mean / 3).sum()))
            self.norm.weight.fill_(1.0)
            self.norm.bias.zero_()
            self.smooth.weight.fill_(1.0 / 36)
            self.smooth.bias.zero_()
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.weight[1].fill_(-2.0)   # hole: dark (negative normalized value) -> positive logit
            self.head.bias[1] = 0.0

    def forward(self, pixels: torch.Tensor) -> DiscOutput:
        grey = self.grey(pixels)
        # "dark" is relative to the plate: subtract the frame mean. The LayerNorm branch sees channels that
        # differ by fixed offsets, so its output is the same pattern everywhere and sums to 0 in `smooth`.
        centered = grey - grey.mean(dim=(2, 3), keepdim=True)
        normed = centered * 10.0 + 0.1 * self.norm(centered.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return DiscOutput(self.head(self.smooth(normed)))
