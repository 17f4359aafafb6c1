"""Things in the image that are NOT holes: bolt heads, socket screws, washers, dark dots and pucks,
O-rings, chips, cables and soft shadows. They occlude holes and serve as hard negatives. On request
(``SQUARE_KINDS``, `holevision synth --squares`) also square look-alikes: a calibration chessboard
lying in the cell and dark square labels or pockets, which a model trained on round look-alikes alone
marks as holes.

Each item is drawn in a window of the frame with an anti-aliased alpha; ``paint_clutter`` composites
it and returns the occluding alpha so the caller can remove occluded pixels from the hole labels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from holevision.runtime.synthparts.surfaces import fractal_noise

CLUTTER_KINDS = ("bolt", "socket_screw", "washer", "dark_dot", "puck", "oring", "chips", "cable", "shadow")
SQUARE_KINDS = ("checkerboard", "square")
_S = 16  # sub-pixel drawing: coordinates x16 with shift=4


def _pt(x, y):
    return int(round(x * _S)), int(round(y * _S))


def _mask(shape, draw) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    draw(m)
    return m.astype(np.float32) / 255.0


def _ellipse(m, c, a, b, ang, value=255, thickness=-1):
    cv2.ellipse(m, _pt(*c), (max(int(a * _S), 1), max(int(b * _S), 1)), ang, 0, 360, value, thickness,
                cv2.LINE_AA, 4)


def _hexagon(c, r, rot, squash, squash_ang):
    pts = []
    for k in range(6):
        a = rot + k * math.pi / 3
        x, y = r * math.cos(a), r * math.sin(a)
        ca, sa = math.cos(squash_ang), math.sin(squash_ang)
        xr, yr = x * ca + y * sa, -x * sa + y * ca
        yr *= squash
        pts.append((c[0] + xr * ca - yr * sa, c[1] + xr * sa + yr * ca))
    return pts


def _rectangle(c, u0, v0, u1, v1, rot, squash, squash_ang):
    """The image corners of the rectangle [u0, u1] x [v0, v1] of an item's own frame about ``c``: turned
    by ``rot`` rad, then squashed along ``squash_ang`` as the other items are (a tilted view)."""
    ca, sa = math.cos(squash_ang), math.sin(squash_ang)
    pts = []
    for x, y in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
        x, y = x * math.cos(rot) - y * math.sin(rot), x * math.sin(rot) + y * math.cos(rot)
        xr, yr = x * ca + y * sa, -x * sa + y * ca
        yr *= squash
        pts.append((c[0] + xr * ca - yr * sa, c[1] + xr * sa + yr * ca))
    return np.array([_pt(*p) for p in pts], np.int32)


def _checkerboard(rng, shape, c, size_px, squash, squash_ang):
    """(alpha of the whole board, alpha of its dark squares): a printed board of 4-9 x 3-7 squares with
    a white margin, ``size_px`` across its squares' long side."""
    cols, rows = int(rng.integers(4, 10)), int(rng.integers(3, 8))
    cell = size_px / max(cols, rows)
    rot = rng.uniform(0, math.pi)
    margin = cell * rng.uniform(0.3, 0.8)
    half_u, half_v = cols * cell / 2, rows * cell / 2
    board = [_rectangle(c, -half_u - margin, -half_v - margin, half_u + margin, half_v + margin, rot, squash,
                        squash_ang)]
    dark = [_rectangle(c, -half_u + i * cell, -half_v + j * cell, -half_u + (i + 1) * cell, -half_v + (j + 1) * cell,
                       rot, squash, squash_ang)
            for i in range(cols) for j in range(rows) if (i + j) % 2 == 0]
    return (_mask(shape, lambda m: cv2.fillPoly(m, board, 255, cv2.LINE_AA, 4)),
            _mask(shape, lambda m: cv2.fillPoly(m, dark, 255, cv2.LINE_AA, 4)))


def paint_clutter(rng: np.random.Generator, image: np.ndarray, kind: str, center: tuple[float, float],
                  size_px: float, to_light_2d: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Draw one item into ``image`` (float BGR, in place). Returns (window, occluding alpha) or None."""
    h, w = image.shape[:2]
    r = size_px / 2.0
    pad = int(r * (2.2 if kind == "checkerboard" else 1.6) + 6)
    x0, y0 = int(center[0]) - pad, int(center[1]) - pad
    x1, y1 = int(center[0]) + pad + 1, int(center[1]) + pad + 1
    if kind == "cable":
        x0, y0, x1, y1 = 0, 0, w, h
    x0c, y0c, x1c, y1c = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1c <= x0c or y1c <= y0c:
        return None
    shape = (y1c - y0c, x1c - x0c)
    c = (center[0] - x0c, center[1] - y0c)
    squash = float(rng.uniform(0.75, 1.0))
    sq_ang = float(rng.uniform(0, 180))
    lx, ly = float(to_light_2d[0]), float(to_light_2d[1])
    win = image[y0c:y1c, x0c:x1c]
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    # Shading helper: brighter on the side facing the light.
    side = ((xx - c[0]) * lx + (yy - c[1]) * ly) / max(r, 1.0)
    metal = float(rng.uniform(0.35, 0.85))
    shadow_alpha = None
    color = None
    if kind in ("bolt", "socket_screw"):
        if kind == "bolt":
            poly = np.array([_pt(*p) for p in _hexagon(c, r, rng.uniform(0, math.pi), squash, math.radians(sq_ang))],
                            np.int32)
            alpha = _mask(shape, lambda m: cv2.fillPoly(m, [poly], 255, cv2.LINE_AA, 4))
        else:
            alpha = _mask(shape, lambda m: _ellipse(m, c, r, r * squash, sq_ang))
        value = metal * (0.8 + 0.25 * side) + 0.05 * fractal_noise(rng, shape, 6)
        if kind == "socket_screw":
            # dark hexagonal recess: looks like a hole, is not one
            poly = np.array([_pt(*p) for p in _hexagon(c, r * 0.45, rng.uniform(0, math.pi), squash, math.radians(sq_ang))],
                            np.int32)
            recess = _mask(shape, lambda m: cv2.fillPoly(m, [poly], 255, cv2.LINE_AA, 4))
            value = value * (1 - recess) + recess * rng.uniform(0.02, 0.12)
        color = value[:, :, None] * np.float32([1.0, 1.0, 1.0])
        shadow_alpha = alpha
    elif kind in ("washer", "oring"):
        inner = r * (rng.uniform(0.35, 0.55) if kind == "washer" else rng.uniform(0.6, 0.8))
        outer_m = _mask(shape, lambda m: _ellipse(m, c, r, r * squash, sq_ang))
        inner_m = _mask(shape, lambda m: _ellipse(m, c, inner, inner * squash, sq_ang))
        alpha = np.clip(outer_m - inner_m, 0, 1)
        if kind == "washer":
            tint = np.float32([0.55, 0.8, 1.0]) if rng.random() < 0.2 else np.float32([1, 1, 1])
            value = metal * (0.85 + 0.3 * side)
        else:
            tint = np.float32([1, 1, 1])
            value = rng.uniform(0.03, 0.12) * (1 + 0.6 * np.clip(side, 0, 1))
        color = value[:, :, None] * tint
        shadow_alpha = alpha
    elif kind in ("dark_dot", "puck"):
        alpha = _mask(shape, lambda m: _ellipse(m, c, r, r * squash, sq_ang))
        dark = rng.uniform(0.02, 0.15)
        if kind == "dark_dot":  # paint or marker dot: flat, slightly irregular
            value = dark * (1 + 0.15 * fractal_noise(rng, shape, 4)) + 0 * xx
            color = value[:, :, None] * (np.float32([1, 1, 1]) if rng.random() < 0.7 else
                                         np.float32(rng.uniform(0.3, 1.5, 3)))
        else:  # raised dark cylinder (magnet, rubber foot): rim highlight on the light side, shadow outside
            ring = np.clip(1.0 - np.abs(np.sqrt((xx - c[0]) ** 2 + (yy - c[1]) ** 2) - r * 0.9) / 2.0, 0, 1)
            value = dark + 0.4 * ring * np.clip(side, 0, 1)
            color = value[:, :, None] * np.float32([1, 1, 1])
            shadow_alpha = alpha
    elif kind == "chips":
        def draw(m):
            for _ in range(int(rng.integers(2, 8))):
                cx, cy = c[0] + rng.normal(0, r * 0.6), c[1] + rng.normal(0, r * 0.6)
                turns, rad = rng.uniform(0.8, 2.5), rng.uniform(1.5, max(2.0, r * 0.35))
                t = np.linspace(0, turns * 2 * math.pi, 40)
                rr = rad * (0.3 + t / t[-1])
                pts = np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t) * squash], 1) * _S
                cv2.polylines(m, [pts.astype(np.int32)], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, 4)
        alpha = _mask(shape, draw)
        value = (metal * 1.2 if rng.random() < 0.6 else 0.1) * (1 + 0.3 * side)
        color = value[:, :, None] * np.float32([1, 1, 1])
    elif kind == "cable":
        pts = []
        px, py = rng.uniform(0, w), -10.0
        ang = rng.uniform(0.3, math.pi - 0.3)
        for _ in range(60):
            pts.append((px, py))
            ang += rng.normal(0, 0.08)
            px, py = px + math.cos(ang) * (h / 40), py + math.sin(ang) * (h / 40)
        thick = int(max(3, size_px * 0.3))
        arr = (np.array(pts) * _S).astype(np.int32)
        alpha = _mask(shape, lambda m: cv2.polylines(m, [arr], False, 255, thick, cv2.LINE_AA, 4))
        value = rng.uniform(0.03, 0.3) * (1 + 0.2 * fractal_noise(rng, shape, 30))
        color = value[:, :, None] * np.float32(rng.uniform(0.5, 1.5, 3))
        shadow_alpha = alpha
    elif kind == "checkerboard":
        alpha, dark = _checkerboard(rng, shape, c, size_px, squash, math.radians(sq_ang))
        paper = rng.uniform(0.6, 0.95) * (1 + 0.1 * side) + 0.02 * fractal_noise(rng, shape, 8)
        value = paper * (1 - dark) + dark * rng.uniform(0.02, 0.15)
        color = value[:, :, None] * np.float32([1, 1, 1])
    elif kind == "square":  # a dark square label, a square pocket or cut-out: corners, not a hole
        half = r * rng.uniform(0.7, 1.0)
        half_v = half * rng.uniform(0.7, 1.0)
        quad = _rectangle(c, -half, -half_v, half, half_v, rng.uniform(0, math.pi), squash, math.radians(sq_ang))
        alpha = _mask(shape, lambda m: cv2.fillPoly(m, [quad], 255, cv2.LINE_AA, 4))
        value = rng.uniform(0.02, 0.15) * (1 + 0.15 * fractal_noise(rng, shape, 4)) + 0 * xx
        color = value[:, :, None] * (np.float32([1, 1, 1]) if rng.random() < 0.7 else
                                     np.float32(rng.uniform(0.3, 1.5, 3)))
    elif kind == "shadow":
        blob = _mask(shape, lambda m: _ellipse(m, c, r, r * rng.uniform(0.3, 1.0), sq_ang))
        blob = cv2.GaussianBlur(blob, (0, 0), max(r * 0.25, 1.0))
        win *= (1.0 - rng.uniform(0.3, 0.7) * blob)[:, :, None]
        return None
    else:
        raise ValueError(f"unknown clutter kind {kind!r}; expected one of {CLUTTER_KINDS + SQUARE_KINDS}")
    if shadow_alpha is not None:
        off = max(r * 0.15, 1.0)
        M = np.float32([[1, 0, -lx * off], [0, 1, -ly * off]])
        shadow = cv2.warpAffine(shadow_alpha, M, (shape[1], shape[0]))
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(off * 0.6, 0.8))
        win *= (1.0 - 0.55 * shadow * (1 - alpha))[:, :, None]
    win[:] = win * (1 - alpha[:, :, None]) + color * alpha[:, :, None]
    return (x0c, y0c, x1c, y1c), alpha
