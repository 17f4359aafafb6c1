"""Shading of the inside of one hole: chamfer or countersink cone, bore wall, bottom or what lies behind.

All geometry is in the part frame (mm, z up out of the top surface, holes go to z < 0). The caller
gives, for every pixel of a window, where its ray crosses the top plane relative to the hole axis
(``qx, qy``) and how far the ray drifts sideways per mm of depth (``wx, wy``); this module traces the
ray through the hole analytically (cone, cylinder, drill point) and returns a luminance.

Labelling convention (see ``SceneHole``): the hole's label is the opening in the top surface, i.e.
the circle of radius ``opening_radius`` at z = 0. For a chamfered or countersunk hole that is the
OUTER edge of the cone, where the part's top surface ends; the bore is inside the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("through", "blind", "threaded", "countersunk", "chamfered")


@dataclass(frozen=True)
class HoleShape:
    """One hole in the part frame (mm)."""

    x: float
    y: float
    bore_radius: float            # radius of the cylindrical bore
    opening_radius: float         # radius at the top surface (> bore_radius for chamfer/countersink)
    depth: float                  # bore depth below the cone (through: the part thickness)
    kind: str                     # one of KINDS
    through: bool                 # the bore goes through the part
    thread_pitch: float = 0.0     # mm; 0 = smooth bore
    drill_point: bool = True      # blind: conical 118 degree bottom, else flat


@dataclass(frozen=True)
class Lighting:
    """Light and material for the inside of a hole (all directions unit vectors in the part frame)."""

    to_light: np.ndarray          # direction from the hole to the light
    half_vector: np.ndarray       # normalized(to_light + to_camera)
    ambient: float
    diffuse: float
    specular: float
    shininess: float
    albedo: float                 # bore/cone surface albedo
    shadows: bool = True          # rim shadows and ambient occlusion (off for CAD shading)


def _lit(lighting: Lighting, nx, ny, nz, visibility=1.0):
    L, Hh = lighting.to_light, lighting.half_vector
    lambert = np.maximum(nx * L[0] + ny * L[1] + nz * L[2], 0.0)
    spec = np.maximum(nx * Hh[0] + ny * Hh[1] + nz * Hh[2], 0.0) ** lighting.shininess
    return lighting.albedo * (lighting.ambient + lighting.diffuse * lambert * visibility) \
        + lighting.specular * spec * visibility


def _light_reaches(px, py, depth, radius, lighting: Lighting):
    """Soft 0..1: does light from ``to_light`` reach (px, py, -depth) through an opening of ``radius``?"""
    L = lighting.to_light
    if not lighting.shadows:
        return 1.0
    t = depth / max(L[2], 1e-3)
    ex, ey = px + t * L[0], py + t * L[1]
    overshoot = (np.sqrt(ex * ex + ey * ey) - radius) / max(radius * 0.08, 1e-3)
    return np.clip(0.5 - overshoot, 0.0, 1.0)


def _aa_inside(distance_mm, px_per_mm):
    """Anti-aliased 0..1 inside-ness from a signed distance in mm (negative inside)."""
    return np.clip(0.5 - distance_mm * px_per_mm, 0.0, 1.0)


def shade_hole(qx, qy, wx, wy, hole: HoleShape, lighting: Lighting,
               px_per_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Luminance of the inside of ``hole`` seen along rays (qx + z wx, qy + z wy, z), z <= 0.

    Returns ``(value, behind_weight)``: for a through hole, the caller adds ``behind_weight`` times what
    lies beyond the part (darkness, the table, a backlight) in its own color.
    """
    R, Ro = hole.bore_radius, hole.opening_radius
    cone = max(Ro - R, 0.0)  # 45 degree cone from the opening down to the bore
    rho0 = np.sqrt(qx * qx + qy * qy)
    # Ray at the top of the bore (z = -cone): outside the bore there means we see the cone.
    cx, cy = qx - cone * wx, qy - cone * wy
    in_bore = _aa_inside(np.sqrt(cx * cx + cy * cy) - R, px_per_mm) if cone > 0 else 1.0
    out = np.zeros_like(qx, dtype=np.float64)
    if cone > 0:
        phi = np.arctan2(qy, qx)
        inv = 1.0 / np.sqrt(2.0)
        nx, ny = -np.cos(phi) * inv, -np.sin(phi) * inv
        depth_on_cone = np.clip(Ro - rho0, 0.0, cone)
        vis = _light_reaches(qx, qy, depth_on_cone, Ro, lighting) if lighting.shadows else 1.0
        cone_value = _lit(lighting, nx, ny, inv, vis)
    else:
        cone_value = 0.0
    # Wall: where the ray, entering the bore at its top, meets the cylinder.
    a = wx * wx + wy * wy
    b = 2.0 * (cx * wx + cy * wy)
    c = cx * cx + cy * cy - R * R
    disc = np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z_hit = np.where(a > 1e-12, (-b - disc) / (2.0 * np.maximum(a, 1e-12)), -np.inf)
    wall_depth = np.clip(-z_hit, 0.0, hole.depth)
    hx, hy = cx - wall_depth * wx, cy - wall_depth * wy
    phiw = np.arctan2(hy, hx)
    nx, ny = -np.cos(phiw), -np.sin(phiw)
    nz = np.zeros_like(nx)
    if hole.thread_pitch > 0:
        phase = 2.0 * np.pi * (wall_depth / hole.thread_pitch + phiw / (2.0 * np.pi))
        flank = 0.6 * np.sin(phase)
        scale = 1.0 / np.sqrt(1.0 + flank * flank)
        nx, ny, nz = nx * scale, ny * scale, flank * scale
    total_depth = cone + wall_depth
    vis = _light_reaches(hx, hy, total_depth, R, lighting) if lighting.shadows else 1.0
    wall_value = _lit(lighting, nx, ny, nz, vis)
    if lighting.shadows:
        wall_value = wall_value * np.exp(-0.35 * total_depth / max(R, 1e-3))
    # Bottom: the ray's position at the bottom of the bore.
    bx, by = cx - hole.depth * wx, cy - hole.depth * wy
    rho_b = np.sqrt(bx * bx + by * by)
    in_bottom = _aa_inside(rho_b - R, px_per_mm)
    if hole.through:
        bottom_value = 0.0
    else:
        if hole.drill_point:
            sin_a, cos_a = np.sin(np.radians(31.0)), np.cos(np.radians(31.0))
            phib = np.arctan2(by, bx)
            bnx, bny, bnz = -np.cos(phib) * sin_a, -np.sin(phib) * sin_a, cos_a + 0 * bx
        else:
            bnx, bny, bnz = 0 * bx, 0 * bx, 1.0 + 0 * bx
        bottom_depth = cone + hole.depth
        vis = _light_reaches(bx, by, bottom_depth, R, lighting) if lighting.shadows else 1.0
        bottom_value = _lit(lighting, bnx, bny, bnz, vis)
        if lighting.shadows:
            bottom_value = bottom_value * np.exp(-0.35 * bottom_depth / max(R, 1e-3))
    bore_value = wall_value * (1.0 - in_bottom) + bottom_value * in_bottom
    out = cone_value * (1.0 - in_bore) + bore_value * in_bore
    behind_weight = in_bottom * in_bore if hole.through else np.zeros_like(out)
    return out, behind_weight
