"""Surface textures: part materials (machined, cast, sheet metal, anodized) and backgrounds.

Everything returns float32 images in [0, 1]-ish linear luminance or BGR; pure numpy + OpenCV.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MATERIALS = ("machined", "cast", "sheet", "anodized")
BACKGROUNDS = ("table", "wood", "conveyor", "cloth", "backlight", "fixture")


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell_px: float) -> np.ndarray:
    """Zero-mean, unit-ish noise with features about ``cell_px`` pixels across."""
    h, w = shape
    gh, gw = max(2, int(h / cell_px) + 2), max(2, int(w / cell_px) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def fractal_noise(rng: np.random.Generator, shape, cell_px: float, octaves: int = 3) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        out += amp * smooth_noise(rng, shape, max(cell_px / (2 ** k), 1.5))
        total += amp
        amp *= 0.5
    return out / total


def _fine_noise(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


def material_albedo(rng: np.random.Generator, material: str, shape: tuple[int, int],
                    px_per_mm: float) -> tuple[np.ndarray, dict]:
    """Albedo map (float32, HxW) of a part's top surface and the material's lighting parameters."""
    h, w = shape
    params: dict = {}
    if material == "machined":
        base = rng.uniform(0.45, 0.8)
        finish = rng.choice(["milled", "brushed", "turned", "ground"])
        if finish == "brushed" or finish == "ground":
            streak = cv2.blur(_fine_noise(rng, shape), (int(rng.integers(15, 61)), 1))
            tex = 0.06 * streak / max(float(streak.std()), 1e-6)
        else:
            pitch = rng.uniform(0.3, 1.5) * px_per_mm
            if finish == "milled":
                r_cut = rng.uniform(1.0, 3.0) * max(h, w)
                ang = rng.uniform(0, 2 * math.pi)
                cx, cy = w / 2 + r_cut * math.cos(ang), h / 2 + r_cut * math.sin(ang)
            else:
                cx, cy = w / 2, h / 2
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
            tex = 0.04 * np.sin(2 * np.pi * dist / max(pitch, 1.5)).astype(np.float32)
        tex += 0.03 * fractal_noise(rng, shape, 40) + 0.015 * _fine_noise(rng, shape)
        albedo = base * (1.0 + tex)
        params.update(specular=rng.uniform(0.2, 0.9), shininess=rng.uniform(8, 60), finish=str(finish))
    elif material == "cast":
        base = rng.uniform(0.25, 0.55)
        tex = 0.12 * fractal_noise(rng, shape, 25, 4) + 0.06 * _fine_noise(rng, shape)
        albedo = base * (1.0 + tex)
        pits = rng.random(shape, dtype=np.float32) < rng.uniform(0.0, 0.004)
        albedo[pits] *= 0.5
        params.update(specular=rng.uniform(0.0, 0.15), shininess=rng.uniform(3, 10), finish="as-cast")
    elif material == "sheet":
        base = rng.uniform(0.5, 0.85)
        tex = 0.03 * fractal_noise(rng, shape, 60) + 0.01 * _fine_noise(rng, shape)
        if rng.random() < 0.4:  # galvanized spangle
            tex += 0.05 * smooth_noise(rng, shape, rng.uniform(4, 12) * px_per_mm / 4 + 3)
        albedo = base * (1.0 + tex)
        params.update(specular=rng.uniform(0.1, 0.6), shininess=rng.uniform(5, 30), finish="rolled")
    elif material == "anodized":
        base = rng.uniform(0.08, 0.45)
        tex = 0.03 * fractal_noise(rng, shape, 50) + 0.02 * _fine_noise(rng, shape)
        albedo = base * (1.0 + tex)
        params.update(specular=rng.uniform(0.05, 0.3), shininess=rng.uniform(5, 25), finish="anodized")
    else:
        raise ValueError(f"unknown material {material!r}; expected one of {MATERIALS}")
    params["base_albedo"] = float(base)
    return albedo.astype(np.float32), params


def add_scratches_and_oil(rng: np.random.Generator, albedo: np.ndarray, px_per_mm: float) -> None:
    """Scratches (thin bright/dark lines) and oil stains (darker smooth blobs), in place."""
    h, w = albedo.shape
    layer = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(0, 25))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        length = rng.uniform(3, 40) * px_per_mm
        ang = rng.uniform(0, math.pi)
        x1, y1 = x0 + length * math.cos(ang), y0 + length * math.sin(ang)
        value = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.25))
        cv2.line(layer, (int(x0 * 16), int(y0 * 16)), (int(x1 * 16), int(y1 * 16)), value,
                 1, cv2.LINE_AA, 4)
    albedo *= 1.0 + layer
    if rng.random() < 0.35:
        blobs = fractal_noise(rng, (h, w), rng.uniform(20, 80), 3)
        stain = np.clip((blobs - rng.uniform(0.6, 1.2)) * 2.0, 0.0, 1.0)
        albedo *= 1.0 - rng.uniform(0.05, 0.25) * stain


def background_image(rng: np.random.Generator, kind: str, shape: tuple[int, int]) -> np.ndarray:
    """BGR float32 background (what the part lies on)."""
    h, w = shape
    if kind == "table":
        grey = rng.uniform(0.15, 0.6)
        lum = grey * (1 + rng.uniform(0.02, 0.1) * fractal_noise(rng, shape, 80) + 0.04 * _fine_noise(rng, shape))
        tint = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.04, 3)
    elif kind == "wood":
        grey = rng.uniform(0.3, 0.6)
        yy = np.arange(h, dtype=np.float32)[:, None] + 30 * smooth_noise(rng, (h, 1), 40)
        rings = np.sin(yy / rng.uniform(3, 10)) * 0.08
        lum = grey * (1 + rings + 0.05 * fractal_noise(rng, shape, 30))
        tint = np.array([0.55, 0.8, 1.1])
    elif kind == "conveyor":
        grey = rng.uniform(0.05, 0.2)
        lum = grey * (1 + 0.25 * _fine_noise(rng, shape) + 0.1 * fractal_noise(rng, shape, 20))
        tint = np.array([1.0, 1.0, 1.0])
    elif kind == "cloth":
        grey = rng.uniform(0.2, 0.5)
        lum = grey * (1 + 0.1 * cv2.GaussianBlur(_fine_noise(rng, shape), (3, 3), 0.8))
        tint = rng.choice([np.array([1.2, 0.9, 0.6]), np.array([0.6, 1.1, 0.7]), np.array([0.9, 0.9, 0.9])])
    elif kind == "backlight":
        lum = rng.uniform(0.8, 1.0) * (1 + 0.02 * fractal_noise(rng, shape, 200)) + 0 * np.zeros(shape, np.float32)
        tint = np.array([1.0, 1.0, 1.0])
    elif kind == "fixture":
        grey = rng.uniform(0.2, 0.45)
        lum = grey * (1 + 0.04 * fractal_noise(rng, shape, 60) + 0.02 * _fine_noise(rng, shape))
        step = int(rng.integers(40, 120))
        lum = lum.copy()
        lum[:, ::step] *= 0.6
        lum[::step, :] *= 0.6
        tint = np.array([1.0, 1.0, 1.05])
    else:
        raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS}")
    lum = np.asarray(lum, np.float32)
    return lum[:, :, None] * tint.astype(np.float32)[None, None, :]
