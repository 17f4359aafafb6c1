"""Augmentation suited to parts on a line: one random geometric warp + photometric changes.

Pure numpy/OpenCV on (H, W, 3) uint8 BGR images and (H, W) uint8 class masks. The geometric part
(flips, 90-degree turns, rotation, scale, perspective, crop) is one homography, so the mask moves with
the image exactly (nearest-neighbour for the mask). Photometric: brightness, contrast, gamma, blur,
noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True                   # horizontal and vertical flips, 90-degree turns
    rotation_deg: float = 30.0          # extra rotation, uniform in +-this
    scale: tuple[float, float] = (0.7, 1.4)   # zoom factor range
    perspective: float = 0.08           # corner jitter as a fraction of the crop size
    brightness: float = 0.25            # additive, fraction of 255
    contrast: tuple[float, float] = (0.7, 1.3)
    blur_probability: float = 0.25      # Gaussian blur, sigma up to 1.5 px
    noise_sigma: float = 8.0            # Gaussian noise, up to this sigma (0..255)

    @property
    def pixel_exact(self) -> bool:
        """No rotation, zoom or perspective: a view is the image's own pixels, moved, flipped or turned."""
        return self.rotation_deg == 0 and self.scale == (1.0, 1.0) and self.perspective == 0


# `holevision train --augment`: "full" varies pose, scale and light widely (few or real images); "light"
# keeps every pixel as it was rendered (whole-pixel crops, flips and 90-degree turns, mild light changes)
# for a last fine-tune on a large synthetic set whose renderer already varies pose and scale: resampling
# blurs small holes and moves the nearest-neighbour mask's edges by up to a pixel against the image.
AUGMENT_PRESETS = {
    "full": AugmentConfig(),
    "light": AugmentConfig(rotation_deg=0.0, scale=(1.0, 1.0), perspective=0.0, brightness=0.1,
                           contrast=(0.85, 1.15), blur_probability=0.1, noise_sigma=4.0),
}


def _crop_homography(height: int, width: int, size: int, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Homography from source image pixels to a size x size crop."""
    center = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    # Keep the crop centre inside the image so crops are mostly image, never mostly padding.
    center = np.clip(center, [min(size / 2, width / 2), min(size / 2, height / 2)],
                     [max(width - size / 2, width / 2), max(height - size / 2, height / 2)])
    if cfg.pixel_exact:
        # Whole-pixel shifts: the view samples pixel centres, no interpolation. A flipped or turned view
        # reaches one pixel further on one side, so keep a pixel of margin where the image has room.
        far = np.array([width, height]) - size / 2 - 1
        center = np.round(np.where(far >= size / 2, np.clip(center, size / 2, far), center))
    zoom = np.exp(rng.uniform(np.log(cfg.scale[0]), np.log(cfg.scale[1])))
    angle = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    if cfg.flip:
        angle += rng.integers(0, 4) * np.pi / 2
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    if cfg.pixel_exact:
        cos, sin = np.round(cos), np.round(sin)  # quarter turns: exactly 0 and +-1
    flip = -1.0 if (cfg.flip and rng.random() < 0.5) else 1.0
    # source -> centered, rotated, scaled, flipped -> crop
    to_origin = np.array([[1, 0, -center[0]], [0, 1, -center[1]], [0, 0, 1]], float)
    rotate = np.array([[cos * flip, -sin * flip, 0], [sin, cos, 0], [0, 0, 1]], float)
    to_crop = np.array([[1, 0, size / 2], [0, 1, size / 2], [0, 0, 1]], float)
    affine = to_crop @ rotate @ to_origin
    if cfg.perspective > 0:
        corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float32)
        jitter = rng.uniform(-cfg.perspective, cfg.perspective, (4, 2)).astype(np.float32) * size
        warp = cv2.getPerspectiveTransform(corners, corners + jitter)
        affine = warp @ affine
    return affine


def augment_pair(image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator,
                 cfg: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """A random size x size training view of (image, mask). Outside the image: 0 in both."""
    height, width = mask.shape[:2]
    homography = _crop_homography(height, width, size, rng, cfg)
    out_image = cv2.warpPerspective(image, homography, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT_101)
    out_mask = cv2.warpPerspective(mask, homography, (size, size), flags=cv2.INTER_NEAREST,
                                   borderMode=cv2.BORDER_REFLECT_101)
    return photometric(out_image, rng, cfg), out_mask


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    x = image.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * rng.uniform(*cfg.contrast) + mean + rng.uniform(-cfg.brightness, cfg.brightness) * 255
    if rng.random() < cfg.blur_probability:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    if cfg.noise_sigma > 0:
        x += rng.normal(0, rng.uniform(0, cfg.noise_sigma), x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def center_crop_or_pad(image: np.ndarray, mask: np.ndarray | None, size: int):
    """Deterministic view for validation-time batching: top-left crop / zero pad to size x size."""
    h, w = image.shape[:2]
    out_image = np.zeros((size, size, 3), image.dtype)
    out_image[: min(h, size), : min(w, size)] = image[:size, :size]
    if mask is None:
        return out_image, None
    out_mask = np.zeros((size, size), mask.dtype)
    out_mask[: min(h, size), : min(w, size)] = mask[:size, :size]
    return out_image, out_mask
