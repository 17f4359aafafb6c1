"""Synthetic frames of holes with exactly known geometry, for accuracy tests and timing benchmarks.

Discs are rendered anti-aliased by supersampling (pixel centers at integer coordinates, each pixel
the mean of ss x ss sub-samples), then blurred and given Gaussian noise, like a slightly soft camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class HoleScene:
    image: np.ndarray        # (H, W) uint8 grey, or (H, W, 3) BGR with ``color=True``
    centers: np.ndarray      # (N, 2) true centers u, v px
    diameters: np.ndarray    # (N,) true diameters px
    coverage: np.ndarray     # (H, W) float32 in [0, 1]: fraction of each pixel covered by a hole (before blur)


def render_holes(size: tuple[int, int], centers, diameters, *, seed: int = 0, background: float = 190.0,
                 hole: float = 45.0, blur_sigma: float = 0.7, noise_sigma: float = 2.0, supersample: int = 8,
                 color: bool = False) -> HoleScene:
    """Render dark discs (``hole`` grey) on a flat surface (``background`` grey) of ``size`` = (W, H)."""
    width, height = size
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    diameters = np.asarray(diameters, dtype=np.float64).reshape(-1)
    coverage = np.zeros((height, width), dtype=np.float32)
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    for (u, v), d in zip(centers, diameters):
        r = d / 2
        x0, x1 = max(int(np.floor(u - r)) - 1, 0), min(int(np.ceil(u + r)) + 2, width)
        y0, y1 = max(int(np.floor(v - r)) - 1, 0), min(int(np.ceil(v + r)) + 2, height)
        if x0 >= x1 or y0 >= y1:
            continue
        xs = (np.arange(x0, x1)[:, None] + sub[None, :]).reshape(-1) - u
        ys = (np.arange(y0, y1)[:, None] + sub[None, :]).reshape(-1) - v
        inside = (ys[:, None] ** 2 + xs[None, :] ** 2) <= r * r
        cover = inside.reshape(y1 - y0, supersample, x1 - x0, supersample).mean(axis=(1, 3))
        coverage[y0:y1, x0:x1] = np.maximum(coverage[y0:y1, x0:x1], cover)
    grey = background + (hole - background) * coverage.astype(np.float64)
    if blur_sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), blur_sigma)
    rng = np.random.default_rng(seed)
    grey = grey + rng.normal(0.0, noise_sigma, grey.shape)
    image = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    if color:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return HoleScene(image=image, centers=centers, diameters=diameters, coverage=coverage)


def random_hole_layout(size: tuple[int, int], count: int, *, seed: int, diameter_range=(8.0, 120.0),
                       gap_px: float = 6.0, max_tries: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping random holes (centers, diameters) fully inside a frame of ``size`` = (W, H)."""
    width, height = size
    rng = np.random.default_rng(seed)
    centers, diameters = [], []
    for _ in range(max_tries):
        if len(centers) == count:
            break
        d = rng.uniform(*diameter_range)
        margin = d / 2 + gap_px
        if 2 * margin >= min(width, height):
            continue
        c = rng.uniform([margin, margin], [width - margin, height - margin])
        if all(np.hypot(*(c - c2)) > (d + d2) / 2 + gap_px for c2, d2 in zip(centers, diameters)):
            centers.append(c)
            diameters.append(d)
    return np.asarray(centers).reshape(-1, 2), np.asarray(diameters)


def probability_from_image(image: np.ndarray, *, background: float = 190.0, hole: float = 45.0,
                           softness: float = 8.0) -> np.ndarray:
    """A stand-in for a model: hole probability = sigmoid of how much darker than mid-grey a pixel is."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mid = 0.5 * (background + hole)
    return (1.0 / (1.0 + np.exp((grey.astype(np.float32) - mid) / softness))).astype(np.float32)
