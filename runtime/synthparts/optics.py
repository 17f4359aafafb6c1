"""Camera effects applied to a whole frame: exposure, vignetting, blur, sensor noise, compression.

Blur kernels are symmetric about their center, so they never move a hole's ground-truth center.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def vignette(shape: tuple[int, int], strength: float, center: tuple[float, float]) -> np.ndarray:
    h, w = shape
    yy, xx = np.ogrid[0:h, 0:w]
    r2 = ((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / float((w / 2) ** 2 + (h / 2) ** 2)
    return (1.0 - strength * r2).astype(np.float32)


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    size = int(math.ceil(length)) | 1
    kernel = np.zeros((size, size), np.uint8)
    c = size / 2.0 - 0.5
    dx, dy = math.cos(math.radians(angle_deg)) * length / 2, math.sin(math.radians(angle_deg)) * length / 2
    cv2.line(kernel, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
             (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 255, 1, cv2.LINE_AA, 4)
    kernel = kernel.astype(np.float32)
    kernel = 0.5 * (kernel + kernel[::-1, ::-1])  # exactly symmetric: no shift of centers
    return kernel / kernel.sum()


def apply_camera(rng: np.random.Generator, image: np.ndarray, *, noise_scale: float = 1.0,
                 allow_blur: bool = True, allow_jpeg: bool = True) -> tuple[np.ndarray, dict]:
    """Float BGR (linear-ish, ~[0, 1]) -> uint8 BGR with a random but plausible camera. Returns effects."""
    h, w = image.shape[:2]
    effects: dict = {}
    # Auto exposure (bright parts of the frame near a target level), then a random over/under-exposure.
    bright = float(np.percentile(image[::4, ::4].mean(axis=2), 97))
    gain = float(np.clip(rng.uniform(0.6, 0.95) / max(bright, 1e-3), 0.5, 4.0))
    image = image * np.float32(gain * rng.uniform(0.8, 1.15))
    if rng.random() < 0.7:
        strength = float(rng.uniform(0.05, 0.5))
        image = image * vignette((h, w), strength, (w / 2 + rng.normal(0, w * 0.05), h / 2 + rng.normal(0, h * 0.05)))[:, :, None]
        effects["vignetting"] = round(strength, 3)
    if allow_blur and rng.random() < 0.35:
        sigma = float(rng.uniform(0.4, 1.8))
        image = cv2.GaussianBlur(image, (0, 0), sigma)
        effects["defocus_sigma_px"] = round(sigma, 3)
    if allow_blur and rng.random() < 0.15:
        length, angle = float(rng.uniform(2.0, 8.0)), float(rng.uniform(0, 180))
        image = cv2.filter2D(image, -1, motion_kernel(length, angle))
        effects["motion_blur_px"] = round(length, 2)
    gamma = float(rng.uniform(0.8, 1.25))
    image = np.power(np.clip(image, 0.0, 1.5), gamma)
    if noise_scale > 0:
        shot = rng.uniform(0.0003, 0.004) * noise_scale
        read = rng.uniform(0.00001, 0.0004) * noise_scale
        noise = rng.standard_normal((h, w, 1), dtype=np.float32) * 0.8 + \
            rng.standard_normal((h, w, 3), dtype=np.float32) * 0.35
        image = image + noise * np.sqrt(np.clip(image, 0, None) * shot + read)
        effects["noise"] = round(float(math.sqrt(shot * 0.25 + read)), 4)
    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if allow_jpeg and rng.random() < 0.25:
        quality = int(rng.integers(55, 96))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            effects["jpeg_quality"] = quality
    return out, effects
