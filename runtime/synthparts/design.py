"""Part designs in the part frame (mm): outline, thickness and a hole layout, some holes undrilled."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from holevision.runtime.synthparts.holes import HoleShape

PART_SHAPES = ("plate", "flange", "bracket", "strip")
KIND_WEIGHTS = {"through": 0.32, "blind": 0.2, "threaded": 0.2, "countersunk": 0.1, "chamfered": 0.18}


@dataclass
class DesignHole:
    shape: HoleShape
    drilled: bool


@dataclass
class PartDesign:
    shape: str
    outline_mm: np.ndarray        # (K, 2) closed polygon, part frame
    thickness_mm: float
    holes: list[DesignHole]
    width_mm: float
    height_mm: float


def _rounded_rect(w: float, h: float, r: float, n: int = 8) -> np.ndarray:
    r = min(r, w / 2 - 1e-3, h / 2 - 1e-3)
    pts = []
    for cx, cy, a0 in ((w / 2 - r, h / 2 - r, 0), (-w / 2 + r, h / 2 - r, 90),
                       (-w / 2 + r, -h / 2 + r, 180), (w / 2 - r, -h / 2 + r, 270)):
        for k in range(n + 1):
            a = math.radians(a0 + 90 * k / n)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return np.array(pts)


def _inside_polygon(poly: np.ndarray, x: float, y: float, margin: float) -> bool:
    import cv2

    d = cv2.pointPolygonTest(poly.astype(np.float32).reshape(-1, 1, 2), (float(x), float(y)), True)
    return d >= margin


def random_design(rng: np.random.Generator, px_per_mm_hint: float, size_mm: float) -> PartDesign:
    """A plausible part about ``size_mm`` across; hole sizes chosen so they span ~4-150 px."""
    shape = str(rng.choice(PART_SHAPES, p=[0.45, 0.25, 0.15, 0.15]))
    if shape == "flange":
        w = h = size_mm
        outline = np.array([(w / 2 * math.cos(a), w / 2 * math.sin(a))
                            for a in np.linspace(0, 2 * math.pi, 96, endpoint=False)])
    elif shape == "strip":
        w, h = size_mm, size_mm * rng.uniform(0.15, 0.35)
        outline = _rounded_rect(w, h, rng.uniform(0, h / 2))
    else:
        w, h = size_mm, size_mm * rng.uniform(0.45, 1.0)
        outline = _rounded_rect(w, h, rng.uniform(0, 0.15) * min(w, h))
        if shape == "bracket":  # cut a corner away: an L
            cw, ch = w * rng.uniform(0.35, 0.6), h * rng.uniform(0.35, 0.6)
            outline = np.array([(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, -h / 2 + ch),
                                (-w / 2 + cw, -h / 2 + ch), (-w / 2 + cw, h / 2), (-w / 2, h / 2)])
    sheet = rng.random() < 0.25
    thickness = rng.uniform(1.0, 4.0) if sheet else rng.uniform(6.0, 40.0)
    min_dim = min(w, h)
    # Hole size classes, log-uniform in pixels, capped by the part.
    n_classes = int(rng.integers(1, 4))
    diameters = []
    for _ in range(n_classes):
        d_px = math.exp(rng.uniform(math.log(5.0), math.log(160.0)))
        d_mm = min(d_px / px_per_mm_hint, 0.45 * min_dim)
        diameters.append(max(d_mm, 3.5 / px_per_mm_hint))
    kinds = list(KIND_WEIGHTS)
    probs = np.array(list(KIND_WEIGHTS.values()))
    holes: list[HoleShape] = []

    def try_add(x, y, d, kind):
        ro = _opening_radius(rng, d / 2, kind)
        if not _inside_polygon(outline, x, y, ro + max(0.4 * d, 0.8)):
            return False
        for other in holes:
            if math.hypot(other.x - x, other.y - y) < ro + other.opening_radius + max(0.3 * d, 0.6):
                return False
        holes.append(_make_hole(rng, x, y, d, kind, thickness, sheet))
        return True

    for d in diameters:
        kind = str(rng.choice(kinds, p=probs / probs.sum()))
        if sheet and kind in ("blind", "threaded"):
            kind = "through"
        pattern = str(rng.choice(["grid", "circle", "row", "scatter"], p=[0.3, 0.25, 0.2, 0.25]))
        if shape == "flange" and rng.random() < 0.6:
            pattern = "circle"
        if pattern == "grid":
            nx, ny = int(rng.integers(1, 6)), int(rng.integers(1, 5))
            sx, sy = w * rng.uniform(0.5, 0.9), h * rng.uniform(0.4, 0.9)
            ox, oy = rng.uniform(-0.1, 0.1) * w, rng.uniform(-0.1, 0.1) * h
            for i in range(nx):
                for j in range(ny):
                    x = ox + (i / max(nx - 1, 1) - 0.5) * sx * (nx > 1)
                    y = oy + (j / max(ny - 1, 1) - 0.5) * sy * (ny > 1)
                    try_add(x, y, d, kind)
        elif pattern == "circle":
            n = int(rng.integers(3, 13))
            radius = rng.uniform(0.2, 0.42) * min_dim
            a0 = rng.uniform(0, 2 * math.pi)
            for k in range(n):
                a = a0 + 2 * math.pi * k / n
                try_add(radius * math.cos(a), radius * math.sin(a), d, kind)
            if shape == "flange" and rng.random() < 0.5:
                try_add(0.0, 0.0, min(3 * d, 0.3 * min_dim), "through")
        elif pattern == "row":
            n = int(rng.integers(2, 9))
            y = rng.uniform(-0.35, 0.35) * h
            for k in range(n):
                try_add((k / max(n - 1, 1) - 0.5) * 0.85 * w, y, d, kind)
        else:
            for _ in range(int(rng.integers(1, 10))):
                try_add(rng.uniform(-w / 2, w / 2), rng.uniform(-h / 2, h / 2), d, kind)
    p_missing = 0.0 if rng.random() < 0.5 else rng.uniform(0.05, 0.3)
    design_holes = [DesignHole(shape=hole, drilled=bool(rng.random() >= p_missing)) for hole in holes]
    return PartDesign(shape=shape, outline_mm=outline, thickness_mm=float(thickness), holes=design_holes,
                      width_mm=float(w), height_mm=float(h))


def _opening_radius(rng, r, kind):
    if kind == "countersunk":
        return r * rng.uniform(1.6, 2.0)
    if kind == "chamfered":
        return r + max(0.06 * r, 0.2) * rng.uniform(1.0, 3.0)
    return r


def _make_hole(rng, x, y, d, kind, thickness, sheet) -> HoleShape:
    r = d / 2
    ro = _opening_radius(rng, r, kind)
    through = kind in ("through", "countersunk") or (kind in ("chamfered", "threaded") and rng.random() < 0.5)
    through = through or sheet
    depth = thickness - (ro - r) if through else min(rng.uniform(0.6, 2.5) * d, 0.9 * thickness)
    pitch = d / rng.uniform(5.5, 8.0) if kind == "threaded" else 0.0
    return HoleShape(x=float(x), y=float(y), bore_radius=float(r), opening_radius=float(ro),
                     depth=float(max(depth, 0.3)), kind=kind, through=bool(through), thread_pitch=float(pitch),
                     drill_point=bool(rng.random() < 0.8))
