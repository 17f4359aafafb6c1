"""Camera effects applied to a whole frame: exposure, vignetting, blur, sensor noise, compression.

Blur kernels are symmetric about their center, so they never move a hole's ground-truth center.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def vignette(shape: tuple[int, int], strength: float, center: tuple[float, float]) -> np.ndarray:
    """Smooth radial falloff, 1 at ``center``; computed on a coarse grid and resized (it is smooth)."""
    h, w = shape
    gh, gw = max(h // 8, 2), max(w // 8, 2)
    yy, xx = np.ogrid[0:gh, 0:gw]
    yy = (yy + 0.5) * (h / gh) - 0.5
    xx = (xx + 0.5) * (w / gw) - 0.5
    r2 = ((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / float((w / 2) ** 2 + (h / 2) ** 2)
    return cv2.resize((1.0 - strength * r2).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


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
                 allow_blur: bool = True, allow_jpeg: bool = True,
                 allow_mono: bool = True) -> tuple[np.ndarray, dict]:
    """Float BGR (linear-ish, ~[0, 1]) -> uint8 BGR with a random but plausible camera. Returns effects."""
    h, w = image.shape[:2]
    effects: dict = {}
    # Auto exposure (bright parts of the frame near a target level), then a random over/under-exposure.
    bright = float(np.percentile(image[::4, ::4].mean(axis=2), 97))
    gain = float(np.clip(rng.uniform(0.6, 0.95) / max(bright, 1e-3), 0.5, 4.0)) * float(rng.uniform(0.8, 1.15))
    if rng.random() < 0.7:
        strength = float(rng.uniform(0.05, 0.5))
        factor = vignette((h, w), strength, (w / 2 + rng.normal(0, w * 0.05), h / 2 + rng.normal(0, h * 0.05)))
        image = cv2.multiply(image, cv2.merge([factor * np.float32(gain)] * 3))
        effects["vignetting"] = round(strength, 3)
    else:
        image = cv2.multiply(image, (gain, gain, gain, 0))
    if allow_blur and rng.random() < 0.35:
        sigma = float(rng.uniform(0.4, 1.8))
        image = cv2.GaussianBlur(image, (0, 0), sigma)
        effects["defocus_sigma_px"] = round(sigma, 3)
    if allow_blur and rng.random() < 0.15:
        length, angle = float(rng.uniform(2.0, 8.0)), float(rng.uniform(0, 180))
        image = cv2.filter2D(image, -1, motion_kernel(length, angle))
        effects["motion_blur_px"] = round(length, 2)
    gamma = float(rng.uniform(0.8, 1.25))
    if noise_scale > 0:
        # Shot + read noise: a full-resolution luminance field and coarser color noise (demosaicing
        # correlates neighbouring pixels' color noise).
        shot = rng.uniform(0.0003, 0.004) * noise_scale
        read = rng.uniform(0.00001, 0.0004) * noise_scale
        luma = rng.standard_normal((h, w), dtype=np.float32)
        chroma = rng.standard_normal(((h + 1) // 2, (w + 1) // 2, 3), dtype=np.float32)
        chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
        noise = luma[:, :, None] * np.float32(0.8) + chroma * np.float32(0.4)
        sigma = cv2.sqrt(cv2.max(image, 0.0) * np.float32(shot) + np.float32(read))
        image = image + noise * sigma
        effects["noise"] = round(float(math.sqrt(shot * 0.25 + read)), 4)
    if allow_mono and rng.random() < 0.3:  # monochrome machine-vision camera
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        effects["mono"] = True
    out = cv2.convertScaleAbs(cv2.max(image, 0.0), alpha=255.0)
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    out = cv2.LUT(out, lut)
    if allow_blur and rng.random() < 0.2:  # in-camera sharpening (symmetric: centers stay put)
        amount = float(rng.uniform(0.3, 1.2))
        soft = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.8, 2.0)))
        out = cv2.addWeighted(out, 1.0 + amount, soft, -amount, 0)
        effects["sharpen"] = round(amount, 3)
    if allow_jpeg and rng.random() < 0.25:
        quality = int(rng.integers(55, 96))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            effects["jpeg_quality"] = quality
    return out, effects
