"""Render synthetic scenes of parts with holes, with exact sub-pixel ground truth.

``render_scene(seed, width, height, style)`` draws one to three parts (photo-like metal or a CAD
view) with their hole layouts, some designed holes left undrilled, clutter, lighting and camera
effects. ``render_holes(specs, ...)`` draws given ellipses on a plausible surface for measurement
tests. Both return a ``Scene``; the same arguments always give the same pixels.

Ground truth: each hole's label is the image of the circle where it breaks the part's top surface
(for chamfered/countersunk holes the outer edge of the cone). The circle is mapped through the
camera's plane homography as a conic, so center/axes/angle are exact; the top edge is drawn with
analytic, super-sampled coverage, so intensity centroids of plain discs agree with it to ~0.01 px.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import cv2
import numpy as np

from holevision.runtime.synthparts.camera import PlaneCamera
from holevision.runtime.synthparts.clutter import CLUTTER_KINDS, paint_clutter
from holevision.runtime.synthparts.conics import (
    ConicError, circle_conic, conic_coverage, conic_from_ellipse, conic_signed_distance,
    ellipse_bbox, ellipse_from_conic, transform_conic,
)
from holevision.runtime.synthparts.design import PartDesign, random_design
from holevision.runtime.synthparts.holes import HoleShape, Lighting, shade_hole
from holevision.runtime.synthparts.optics import apply_camera
from holevision.runtime.synthparts.scene import Scene, SceneHole
from holevision.runtime.synthparts.surfaces import (
    BACKGROUNDS, MATERIALS, add_scratches_and_oil, background_image, fractal_noise, material_albedo,
)

STYLES = ("photo", "cad")
_MAX_TEX = 1600


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class _Canvas:
    """Frame being drawn: float BGR image, instance map and per-hole bookkeeping."""

    def __init__(self, image: np.ndarray):
        self.image = image
        h, w = image.shape[:2]
        self.instance_map = np.zeros((h, w), np.int32)
        self.holes: list[SceneHole] = []
        self.drawn_px: list[int] = []       # labelled pixels when drawn (before any occlusion)
        self.in_frame: list[float] = []     # fraction of the ellipse area inside the frame

    @property
    def shape(self):
        return self.image.shape[:2]

    def occlude(self, window, alpha):
        x0, y0, x1, y1 = window
        region = self.instance_map[y0:y1, x0:x1]
        region[alpha >= 0.5] = 0

    def finish(self) -> tuple[list[SceneHole], np.ndarray]:
        """Recompute visibility after occlusion; drop holes with no visible pixel; renumber."""
        counts = np.bincount(self.instance_map.ravel(), minlength=len(self.holes) + 1)
        keep, remap = [], np.zeros(len(self.holes) + 1, np.int32)
        for k, hole in enumerate(self.holes, start=1):
            n_now, n_drawn = int(counts[k]), self.drawn_px[k - 1]
            if n_now == 0:
                continue
            hole.occluded = bool(n_drawn - n_now > max(1, 0.02 * n_drawn))
            hole.visible = round(float(min(1.0, self.in_frame[k - 1] * n_now / max(n_drawn, 1))), 4)
            keep.append(hole)
            remap[k] = len(keep)
        return keep, remap[self.instance_map]


def _window(bbox, shape, margin):
    h, w = shape
    u0, v0, u1, v1 = bbox
    x0, y0 = max(int(math.floor(u0 - margin)), 0), max(int(math.floor(v0 - margin)), 0)
    x1, y1 = min(int(math.ceil(u1 + margin)) + 1, w), min(int(math.ceil(v1 + margin)) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _label_hole(canvas: _Canvas, conic, window, coverage, hole: SceneHole, total_area: float):
    x0, y0, x1, y1 = window
    h, w = canvas.shape
    region = canvas.instance_map[y0:y1, x0:x1]
    inside = coverage >= 0.5
    n = int(inside.sum())
    if n == 0:
        return
    canvas.holes.append(hole)
    k = len(canvas.holes)
    region[inside] = k
    canvas.drawn_px.append(n)
    canvas.in_frame.append(float(min(1.0, coverage.sum() / max(total_area, 1e-9))))
    bu0, bv0, bu1, bv1 = ellipse_bbox(hole.center, hole.axes, hole.angle_deg)
    hole.on_border = bool(bu0 < -0.5 or bv0 < -0.5 or bu1 > w - 0.5 or bv1 > h - 0.5)


# --------------------------------------------------------------------------------------- photo parts

def _blend(win: np.ndarray, color: np.ndarray, alpha: np.ndarray) -> None:
    """win = win * (1 - alpha) + color * alpha, in place (float32 BGR, alpha HxW)."""
    alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    win[:] = cv2.blendLinear(np.ascontiguousarray(win), np.ascontiguousarray(color, dtype=np.float32),
                             1.0 - alpha, alpha)


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a large sigma, done at reduced resolution (the result is smooth anyway)."""
    factor = int(max(1, sigma // 3))
    if factor == 1:
        return cv2.GaussianBlur(mask, (0, 0), sigma)
    h, w = mask.shape
    small = cv2.resize(mask, (max(w // factor, 1), max(h // factor, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _part_pose(rng, width, height, n_parts):
    extent = rng.uniform(0.35, 1.25) if n_parts == 1 else rng.uniform(0.25, 0.6)
    extent_px = extent * min(width, height)
    size_mm = float(math.exp(rng.uniform(math.log(30), math.log(250))))
    scale = extent_px / size_mm
    spread = 0.55 if rng.random() < 0.7 else 0.95
    center = (width / 2 + rng.uniform(-spread, spread) * width / 2,
              height / 2 + rng.uniform(-spread, spread) * height / 2)
    tilt = float(min(abs(rng.normal(0, 13)), 30.0))
    return size_mm, scale, center, float(rng.uniform(0, 360)), tilt, float(rng.uniform(0, 180))


def _texture_frame(design: PartDesign, scale: float, max_side_px: float):
    """Texture pixel -> part-plane mm map S, and texture size; the texture covers the outline."""
    lo, hi = design.outline_mm.min(0) - 2.0, design.outline_mm.max(0) + 2.0
    tex_scale = min(scale, min(_MAX_TEX, max_side_px) / float(max(hi - lo)))
    tw, th = int(math.ceil((hi[0] - lo[0]) * tex_scale)), int(math.ceil((hi[1] - lo[1]) * tex_scale))
    S = np.array([[1 / tex_scale, 0, lo[0]], [0, 1 / tex_scale, lo[1]], [0, 0, 1.0]])
    return S, (max(th, 2), max(tw, 2)), tex_scale


def _outline_mask(design: PartDesign, S, tex_shape):
    pts = (design.outline_mm - S[:2, 2]) / S[0, 0]
    m = np.zeros(tex_shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return m.astype(np.float32) / 255.0


def _surface_shading(rng, design, S, tex_shape, camera: PlaneCamera, light_part, albedo, mat):
    """Lit top surface in texture space: point light diffuse falloff + Blinn-Phong glare."""
    th, tw = tex_shape
    gh, gw = max(th // 8, 2), max(tw // 8, 2)
    ty, tx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    x = S[0, 0] * (tx * (tw / gw)) + S[0, 2]
    y = S[1, 1] * (ty * (th / gh)) + S[1, 2]
    C = camera.center_part
    lx, ly, lz = light_part[0] - x, light_part[1] - y, light_part[2] + 0 * x
    ln = np.sqrt(lx * lx + ly * ly + lz * lz)
    vx, vy, vz = C[0] - x, C[1] - y, C[2] + 0 * x
    vn = np.sqrt(vx * vx + vy * vy + vz * vz)
    hx, hy, hz = lx / ln + vx / vn, ly / ln + vy / vn, lz / ln + vz / vn
    hn = np.sqrt(hx * hx + hy * hy + hz * hz)
    diffuse = (lz / ln) * np.sqrt(np.clip(light_part[2] / ln, 0.0, 1.0))
    spec = (hz / hn) ** mat["shininess"]
    diffuse = cv2.resize(diffuse.astype(np.float32), (tw, th), interpolation=cv2.INTER_LINEAR)
    spec = cv2.resize(spec.astype(np.float32), (tw, th), interpolation=cv2.INTER_LINEAR)
    ambient = mat["ambient"]
    rel = albedo / max(mat["base_albedo"], 1e-3)
    return albedo * (ambient + mat["diffuse"] * diffuse) + mat["specular"] * spec * rel ** 2


def _render_part(rng, canvas: _Canvas, background: np.ndarray, part_index: int, n_parts: int,
                 K, light: dict, cad: bool, cad_params: dict | None) -> dict:
    h, w = canvas.shape
    size_mm, scale, center, rot, tilt, tilt_axis = _part_pose(rng, w, h, n_parts)
    if cad:
        tilt = float(min(abs(rng.normal(0, 15)), 35.0))
    camera = PlaneCamera.looking_at(K=K, center_px=center, scale_px_per_mm=scale, rotation_deg=rot,
                                    tilt_deg=tilt, tilt_axis_deg=tilt_axis)
    design = random_design(rng, scale, size_mm)
    R, t = camera.R_cam_part, camera.t_cam_part
    to_light_part = R.T @ light["to_light_cam"]
    to_light_part[2] = max(to_light_part[2], 0.25)  # the light is above every part's top surface
    to_light_part = _unit(to_light_part)
    light_part = to_light_part * float(np.linalg.norm(t)) * light["distance_factor"]
    S, tex_shape, tex_scale = _texture_frame(design, scale, 1.2 * max(w, h))
    material = "cad" if cad else str(rng.choice(MATERIALS, p=[0.45, 0.2, 0.2, 0.15]))
    if cad:
        base = cad_params["part_grey"]
        albedo = np.full(tex_shape, base, np.float32)
        mat = dict(base_albedo=base, specular=0.05, shininess=8.0, ambient=0.55, diffuse=0.45, finish="cad")
        tint = cad_params["tint"]
    else:
        albedo, mat = material_albedo(rng, material, tex_shape, tex_scale)
        add_scratches_and_oil(rng, albedo, tex_scale)
        mat.update(ambient=float(rng.uniform(*light["ambient"])), diffuse=float(rng.uniform(*light["diffuse"])))
        mat["specular"] *= light["specular_scale"]
        tint = {"machined": np.float32([1.02, 1.0, 0.97]), "cast": np.float32([0.9, 0.97, 1.05]),
                "sheet": np.float32([1.04, 1.01, 0.96]),
                "anodized": np.float32(rng.choice([[1, 1, 1], [1.5, 0.9, 0.5], [0.5, 0.6, 1.6], [0.6, 1.3, 0.9]]))}[material]
        tint = tint * np.float32(1 + rng.normal(0, 0.03, 3))
    shaded = _surface_shading(rng, design, S, tex_shape, camera, light_part, albedo, mat)
    mask_tex = _outline_mask(design, S, tex_shape)
    image = canvas.image
    to_light = _unit(R @ to_light_part)
    shadow_off = 0.0 if cad else design.thickness_mm * scale * 0.8 / max(-to_light[2], 0.2)
    # Work only in the part's window of the frame (top, bottom silhouette and cast shadow).
    corners = np.vstack([camera.project(np.column_stack([design.outline_mm, np.full(len(design.outline_mm), z)]))
                         for z in (0.0, -design.thickness_mm)])
    margin = 3 + shadow_off * 1.0 + 3 * max(shadow_off * 0.3, 1.0)
    crop = _window((*corners.min(0), *corners.max(0)), (h, w), margin)
    top = np.zeros((h, w), np.float32)
    if crop is not None:
        x0, y0, x1, y1 = crop
        size = (x1 - x0, y1 - y0)
        shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
        H_top = shift @ camera.H_img_plane(0.0) @ S
        H_bottom = shift @ camera.H_img_plane(-design.thickness_mm) @ S
        top_crop = cv2.warpPerspective(mask_tex, H_top, size, flags=cv2.INTER_LINEAR)
        footprint = np.maximum(top_crop, cv2.warpPerspective(mask_tex, H_bottom, size, flags=cv2.INTER_LINEAR))
        win = image[y0:y1, x0:x1]
        if not cad:  # cast shadow of the part on what it lies on
            M = np.float32([[1, 0, -to_light[0] * shadow_off], [0, 1, -to_light[1] * shadow_off]])
            shadow = _soft(cv2.warpAffine(footprint, M, size), max(shadow_off * 0.3, 1.0))
            win *= (1.0 - rng.uniform(0.3, 0.7) * shadow * (1 - footprint))[:, :, None]
        side_value = float(mat["base_albedo"] * (rng.uniform(0.25, 0.7) if not cad else 0.7))
        _blend(win, np.full(win.shape, side_value * tint, np.float32), footprint)
        surface = cv2.warpPerspective(shaded, H_top, size, flags=cv2.INTER_LINEAR)
        _blend(win, cv2.merge([surface * float(c) for c in tint]), top_crop)
        canvas.occlude(crop, footprint)  # a later part hides earlier parts' holes
        top[y0:y1, x0:x1] = top_crop
    if cad:
        _cad_part_edges(canvas, camera, design, cad_params)

    # Through holes show what lies behind: the table in the part's shadow, darkness, or a backlight.
    behind_mode = "backlight" if background.mean() > 0.75 else str(rng.choice(["dark", "background"], p=[0.5, 0.5]))
    behind_gain = {"backlight": 1.0, "dark": 0.0, "background": float(rng.uniform(0.1, 0.45))}[behind_mode]
    interior_albedo = float(mat["base_albedo"] * rng.uniform(0.6, 1.2))
    holes_meta = []
    H0 = camera.H_img_plane(0.0)
    C = camera.center_part
    for index, dh in enumerate(design.holes):
        hs = dh.shape
        try:
            conic = transform_conic(H0, circle_conic((hs.x, hs.y), hs.opening_radius))
            center_px, axes, angle = ellipse_from_conic(conic)
        except ConicError:
            continue
        holes_meta.append(dict(index=index, x_mm=round(hs.x, 4), y_mm=round(hs.y, 4),
                               diameter_mm=round(2 * hs.bore_radius, 4),
                               opening_diameter_mm=round(2 * hs.opening_radius, 4),
                               kind=hs.kind, through=hs.through, depth_mm=round(hs.depth, 3),
                               drilled=dh.drilled, center_px=[round(center_px[0], 4), round(center_px[1], 4)],
                               axes_px=[round(axes[0], 4), round(axes[1], 4)], angle_deg=round(angle, 3)))
        if not dh.drilled:
            continue
        glare_w = max(0.7, 0.03 * axes[1])
        window = _window(ellipse_bbox(center_px, axes, angle), (h, w), 3 + 2 * glare_w)
        if window is None:
            continue
        x0, y0, x1, y1 = window
        vv, uu = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        coverage = conic_coverage(conic, uu, vv, supersample=4)
        px, py, wx, wy = camera.plane_drift(uu, vv)
        qx, qy = px - hs.x, py - hs.y
        p_hole = np.array([hs.x, hs.y, 0.0])
        to_light = _unit(light_part - p_hole)
        to_cam = _unit(C - p_hole)
        half = _unit(to_light + to_cam)
        if cad:
            lighting = Lighting(to_light=to_light, half_vector=half, ambient=0.35, diffuse=0.5, specular=0.03,
                                shininess=8.0, albedo=float(mat["base_albedo"]) * 0.7, shadows=False)
            behind_bgr = (np.float32(cad_params["background_grey"]) if cad_params["see_through"]
                          else np.float32(0.12)) * np.ones(3, np.float32)
        else:
            lighting = Lighting(to_light=to_light, half_vector=half, ambient=mat["ambient"] * 0.8,
                                diffuse=mat["diffuse"],
                                specular=float(rng.uniform(0.1, 0.7)) * light["specular_scale"],
                                shininess=float(rng.uniform(6, 40)), albedo=interior_albedo, shadows=True)
            if behind_mode == "dark":
                behind_bgr = np.float32(rng.uniform(0.01, 0.06)) * np.ones(3, np.float32)
            else:
                behind_bgr = background[y0:y1, x0:x1] * np.float32(behind_gain)
        px_per_mm = math.sqrt(axes[0] * axes[1]) / (2 * hs.opening_radius)
        value, behind_weight = shade_hole(qx, qy, wx, wy, hs, lighting, px_per_mm)
        color = value.astype(np.float32)[:, :, None] * tint[None, None, :] \
            + behind_weight.astype(np.float32)[:, :, None] * behind_bgr
        if cad and cad_params["mode"] == "wireframe":
            color = np.broadcast_to(np.float32(cad_params["part_grey"]) * tint, color.shape)
        win = image[y0:y1, x0:x1]
        win[:] = win * (1 - coverage[:, :, None]) + color * coverage[:, :, None]
        if not cad:
            _rim_glare(rng, win, conic, uu, vv, qx, qy, half, glare_w, mat)
        if cad:
            _cad_hole_edges(rng, canvas, camera, hs, cad_params)
        visible_part = top[y0:y1, x0:x1] >= 0.5
        scene_hole = SceneHole(center=(center_px[0], center_px[1]), axes=axes, angle_deg=angle,
                               kind="cad" if cad else hs.kind, visible=1.0, occluded=False, on_border=False,
                               design_index=index, diameter_mm=2 * hs.bore_radius,
                               opening_diameter_mm=2 * hs.opening_radius, part_index=part_index)
        _label_hole(canvas, conic, window, np.where(visible_part, coverage, 0.0),
                    scene_hole, math.pi * axes[0] * axes[1] / 4)
    return dict(index=part_index, shape=design.shape, material=material, finish=mat.get("finish", ""),
                style="cad" if cad else "photo", width_mm=round(design.width_mm, 3),
                height_mm=round(design.height_mm, 3), thickness_mm=round(design.thickness_mm, 3),
                center_px=[round(center[0], 3), round(center[1], 3)], rotation_deg=round(rot, 3),
                tilt_deg=round(tilt, 3), tilt_axis_deg=round(tilt_axis, 3), scale_px_per_mm=round(scale, 5),
                through_holes_show=behind_mode if not cad else "cad",
                holes=holes_meta, missing=[m["index"] for m in holes_meta if not m["drilled"]])


def _rim_glare(rng, win, conic, uu, vv, qx, qy, half, width_px, mat):
    """Specular highlight on the rounded top edge, on the side whose edge normal faces the half vector."""
    dist = conic_signed_distance(conic, uu, vv)
    band = np.exp(-((dist + 0.4 * width_px) / width_px) ** 2)
    hn = math.hypot(half[0], half[1])
    if hn < 1e-6:
        return
    rho = np.sqrt(qx * qx + qy * qy) + 1e-9
    facing = np.clip(-(qx * half[0] + qy * half[1]) / (rho * hn), 0.0, 1.0) ** 2
    strength = float(rng.uniform(0.0, 1.2)) * (0.3 + mat["specular"])
    win += (strength * band * facing).astype(np.float32)[:, :, None]


# ------------------------------------------------------------------------------------------ CAD view

def _cad_params(rng) -> dict:
    mode = str(rng.choice(["shaded_edges", "shaded", "wireframe"], p=[0.55, 0.2, 0.25]))
    if rng.random() < 0.15:  # dark viewport theme
        top, bottom = rng.uniform(0.12, 0.35), rng.uniform(0.03, 0.2)
    else:
        top, bottom = rng.uniform(0.75, 1.0), rng.uniform(0.6, 0.95)
    return dict(mode=mode, background_top=float(top), background_bottom=float(bottom),
                background_grey=float((top + bottom) / 2),
                part_grey=float(rng.uniform(0.92, 1.0) if mode == "wireframe" else rng.uniform(0.45, 0.85)),
                tint=np.float32(rng.choice([[1, 1, 1], [1.1, 1.0, 0.9], [1.15, 1.05, 0.95], [0.9, 1.0, 1.05]])),
                edge_px=int(rng.integers(1, 3)), edge_grey=float(rng.uniform(0.0, 0.25)),
                center_marks=bool(rng.random() < 0.5), hidden_lines=bool(rng.random() < 0.3),
                see_through=bool(rng.random() < 0.4),
                edges=mode != "shaded")


def _cad_line_color(cad):
    return (int(cad["edge_grey"] * 255),) * 3


def _draw_on_float(canvas: _Canvas, draw, grey):
    """Draw anti-aliased shapes into the float image via an 8-bit alpha mask; returns (window, alpha)."""
    h, w = canvas.shape
    m = np.zeros((h, w), np.uint8)
    draw(m)
    x0, y0, bw, bh = cv2.boundingRect(m)
    if bw == 0 or bh == 0:
        return None
    x1, y1 = x0 + bw, y0 + bh
    alpha = m[y0:y1, x0:x1].astype(np.float32) / 255.0
    a = alpha[:, :, None]
    win = canvas.image[y0:y1, x0:x1]
    win[:] = win * (1 - a) + np.asarray(grey, np.float32) * a
    return (x0, y0, x1, y1), alpha


def _cv_ellipse(m, center, axes, angle, thickness, start=0, end=360, dashed=False):
    c = (int(round(center[0] * 16)), int(round(center[1] * 16)))
    ax = (max(int(round(axes[0] * 8)), 1), max(int(round(axes[1] * 8)), 1))
    if not dashed:
        cv2.ellipse(m, c, ax, angle, start, end, 255, thickness, cv2.LINE_AA, 4)
        return
    for a in range(int(start), int(end), 20):
        cv2.ellipse(m, c, ax, angle, a, a + 11, 255, thickness, cv2.LINE_AA, 4)


def _cad_part_edges(canvas, camera, design, cad):
    if not cad["edges"]:
        return
    top = camera.project(np.column_stack([design.outline_mm, np.zeros(len(design.outline_mm))]))
    bot = camera.project(np.column_stack([design.outline_mm, -design.thickness_mm * np.ones(len(design.outline_mm))]))

    # Silhouette of the prism: the union of top, bottom and side faces, traced at 2x resolution.
    h, w = canvas.shape
    pad = 4
    lo = np.floor(np.minimum(top.min(0), bot.min(0))).clip([-pad, -pad], [w + pad, h + pad]) - pad
    hi = np.ceil(np.maximum(top.max(0), bot.max(0))).clip([-pad, -pad], [w + pad, h + pad]) + pad
    size = ((hi - lo) * 2).astype(int) + 1
    union = np.zeros((size[1], size[0]), np.uint8)
    t2, b2 = (top - lo) * 2 * 16, (bot - lo) * 2 * 16
    quads = [np.round(np.array([t2[i], t2[(i + 1) % len(t2)], b2[(i + 1) % len(t2)], b2[i]])).astype(np.int32)
             for i in range(len(t2))]
    cv2.fillPoly(union, [np.round(t2).astype(np.int32), np.round(b2).astype(np.int32), *quads], 255, cv2.LINE_8, 4)
    contours, _ = cv2.findContours(union, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    silhouettes = [np.round((c.reshape(-1, 2) / 2.0 + lo) * 16).astype(np.int32) for c in contours]

    def draw(m):
        cv2.polylines(m, [np.round(top * 16).astype(np.int32)], True, 255, cad["edge_px"], cv2.LINE_AA, 4)
        cv2.polylines(m, silhouettes, True, 255, cad["edge_px"], cv2.LINE_AA, 4)
    _draw_on_float(canvas, draw, cad["edge_grey"])


def _cad_hole_edges(rng, canvas, camera, hs: HoleShape, cad):
    if not cad["edges"]:
        return
    ell = ellipse_from_conic(transform_conic(camera.H_img_plane(0.0), circle_conic((hs.x, hs.y), hs.opening_radius)))
    rings = [ell]
    if hs.opening_radius > hs.bore_radius:
        cone = hs.opening_radius - hs.bore_radius
        rings.append(ellipse_from_conic(transform_conic(camera.H_img_plane(-cone), circle_conic((hs.x, hs.y), hs.bore_radius))))

    def draw(m):
        for c, ax, ang in rings:
            _cv_ellipse(m, c, ax, ang, cad["edge_px"])
        if hs.thread_pitch > 0:  # cosmetic thread: a 3/4 arc at the major diameter
            c, ax, ang = ellipse_from_conic(transform_conic(camera.H_img_plane(0.0),
                                                            circle_conic((hs.x, hs.y), hs.bore_radius * 1.15)))
            _cv_ellipse(m, c, ax, ang, 1, start=0, end=270)
        if cad["hidden_lines"] and hs.through:
            c, ax, ang = ellipse_from_conic(transform_conic(camera.H_img_plane(-hs.depth - (hs.opening_radius - hs.bore_radius)),
                                                            circle_conic((hs.x, hs.y), hs.bore_radius)))
            _cv_ellipse(m, c, ax, ang, 1, dashed=True)
        if cad["center_marks"]:
            ext = hs.opening_radius * 1.25
            for dx, dy in ((1, 0), (0, 1)):
                p = camera.project(np.array([[hs.x - ext * dx, hs.y - ext * dy, 0], [hs.x + ext * dx, hs.y + ext * dy, 0]]))
                cv2.line(m, tuple(np.round(p[0] * 16).astype(int)), tuple(np.round(p[1] * 16).astype(int)),
                         255, 1, cv2.LINE_AA, 4)
    _draw_on_float(canvas, draw, cad["edge_grey"])


def _cad_decorations(rng, canvas: _Canvas, cad):
    """Things on CAD screenshots that are not holes: bosses, dimension text and lines, an axis triad."""
    h, w = canvas.shape

    def marks(img8):
        for _ in range(int(rng.integers(0, 4))):  # dimension text and leader lines
            x, y = rng.uniform(0, w * 0.8), rng.uniform(20, h)
            text = f"{rng.choice(['D', 'M', 'R', ''])}{rng.uniform(2, 60):.1f}"
            cv2.putText(img8, text, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.35, 0.8), 255, 1,
                        cv2.LINE_AA)
            cv2.line(img8, (int(x), int(y) + 4), (int(x + rng.uniform(30, 150)), int(y + rng.uniform(-40, 40))),
                     255, 1, cv2.LINE_AA)
        if rng.random() < 0.5:  # axis triad in a corner
            ox, oy = int(rng.uniform(20, 60)), int(h - rng.uniform(20, 60))
            for ang in (0, -90, -135):
                cv2.arrowedLine(img8, (ox, oy), (int(ox + 25 * math.cos(math.radians(ang))),
                                                int(oy + 25 * math.sin(math.radians(ang)))), 255, 1, cv2.LINE_AA)
    _draw_on_float(canvas, marks, cad["edge_grey"])
    for _ in range(int(rng.integers(0, 3))):  # a boss: raised cylinder, a circle that is NOT a hole
        c = (rng.uniform(0, w), rng.uniform(0, h))
        r = rng.uniform(5, 60)
        sq = rng.uniform(0.6, 1.0)
        ang = rng.uniform(0, 180)
        shade = cad["part_grey"] * rng.uniform(0.9, 1.15) * cad["tint"]
        window = _draw_on_float(canvas, lambda mm: _cv_ellipse(mm, c, (2 * r, 2 * r * sq), ang, -1), shade)
        if window is not None:
            canvas.occlude(*window)
        if cad["edges"]:
            _draw_on_float(canvas, lambda mm: _cv_ellipse(mm, c, (2 * r, 2 * r * sq), ang, cad["edge_px"]),
                           cad["edge_grey"])


# ------------------------------------------------------------------------------------------- scenes

def _random_light(rng, cad: bool) -> dict:
    """Machine-vision lighting: a directional spot, a ring light around the lens, or a diffuse dome.

    ``to_light_cam`` points toward the light in the camera frame (z < 0 is toward the camera); the light
    sits ``distance_factor`` times each part's distance away from it.
    """
    kind = "spot" if cad else str(rng.choice(["spot", "ring", "dome"], p=[0.55, 0.25, 0.2]))
    if kind == "ring":
        elevation, distance, ambient, diffuse, spec = rng.uniform(78, 90), rng.uniform(0.3, 0.9), (0.05, 0.2), (0.7, 1.0), 1.0
    elif kind == "dome":
        elevation, distance, ambient, diffuse, spec = rng.uniform(50, 90), rng.uniform(1.0, 3.0), (0.45, 0.75), (0.25, 0.5), 0.3
    else:
        elevation, distance, ambient, diffuse, spec = rng.uniform(25, 88), rng.uniform(0.5, 3.0), (0.1, 0.35), (0.6, 1.0), 1.0
    azimuth = rng.uniform(0, 2 * math.pi)
    el = math.radians(elevation)
    to_light = np.array([math.cos(el) * math.cos(azimuth), math.cos(el) * math.sin(azimuth), -math.sin(el)])
    return dict(kind=kind, elevation_deg=float(elevation), to_light_cam=to_light, distance_factor=float(distance),
                ambient=ambient, diffuse=diffuse, specular_scale=float(spec))


def _clutter_center(rng: np.random.Generator, placed: list, width: int, height: int) -> tuple[float, float]:
    """Where an item of clutter goes: beside one of the ``placed`` hole centers about a third of the
    time (where it covers holes), anywhere in the frame otherwise."""
    if placed and rng.random() < 0.35:
        base = placed[int(rng.integers(len(placed)))]
        return base[0] + rng.normal(0, 20), base[1] + rng.normal(0, 20)
    return rng.uniform(0, width), rng.uniform(0, height)


def _paint_square_lookalikes(rng: np.random.Generator, canvas: _Canvas, placed: list, to_light_2d: np.ndarray) -> None:
    """One to three square look-alikes (clutter.SQUARE_KINDS; a chessboard in half the scenes), some
    beside the holes, occluding what they cover."""
    height, width = canvas.image.shape[:2]
    kinds = ["checkerboard"] if rng.random() < 0.5 else []
    kinds += ["square"] * int(rng.integers(0 if kinds else 1, 3))
    for kind in kinds:
        center = _clutter_center(rng, placed, width, height)
        largest = (0.6 if kind == "checkerboard" else 0.2) * min(width, height)
        size = math.exp(rng.uniform(math.log(6 if kind == "square" else 24), math.log(max(largest, 25))))
        result = paint_clutter(rng, canvas.image, kind, center, size, to_light_2d)
        if result is not None:
            canvas.occlude(*result)


def render_scene(seed: int, width: int = 640, height: int = 512, style: str = "photo", squares: bool = False) -> Scene:
    """Render one synthetic image of parts with holes; deterministic in all arguments.

    ``style``: ``photo`` (metal parts under real-ish light and camera), ``cad`` (a CAD screenshot),
    or ``mixed`` (one of the two, chosen by the seed).
    ``squares``: photo-style scenes also get square look-alikes (a calibration chessboard, dark square
    labels and pockets; clutter.SQUARE_KINDS), drawn from a random stream of their own, so the rest of
    the scene is the one rendered without them.
    """
    if style not in STYLES + ("mixed",):
        raise ValueError(f"style must be one of {STYLES + ('mixed',)}, got {style!r}")
    if width < 32 or height < 32:
        raise ValueError(f"image size must be at least 32x32, got {width}x{height}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), width, height]))
    if style == "mixed":
        style = "cad" if rng.random() < 0.3 else "photo"
    cad = style == "cad"
    focal = width * (rng.uniform(3.0, 12.0) if cad else rng.uniform(0.9, 3.0))
    K = np.array([[focal, 0, width / 2 + rng.normal(0, width * 0.02)],
                  [0, focal, height / 2 + rng.normal(0, height * 0.02)], [0, 0, 1.0]])
    cad_params = _cad_params(rng) if cad else None
    if cad:
        ramp = np.linspace(cad_params["background_top"], cad_params["background_bottom"], height, dtype=np.float32)
        bg = np.repeat(ramp[:, None], width, 1)[:, :, None] * np.float32([1.0, 0.98, 0.96])[None, None, :]
        background_kind = "cad_gradient"
    else:
        background_kind = str(rng.choice(BACKGROUNDS, p=[0.3, 0.1, 0.15, 0.1, 0.15, 0.2]))
        bg = background_image(rng, background_kind, (height, width))
    canvas = _Canvas(bg.copy())
    # Light: direction in the camera frame (toward the light, z < 0 is toward the camera), point source.
    light = _random_light(rng, cad)
    to_light_cam = light["to_light_cam"]
    elevation = math.radians(light["elevation_deg"])
    n_parts = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
    parts = [_render_part(rng, canvas, bg, k, n_parts, K, light, cad, cad_params) for k in range(n_parts)]
    if cad:
        _cad_decorations(rng, canvas, cad_params)
    else:
        n_clutter = int(rng.poisson(2.5))
        placed = [h.center for h in canvas.holes]
        to_light_2d = _unit(to_light_cam[:2]) if np.linalg.norm(to_light_cam[:2]) > 1e-6 else np.zeros(2)
        for _ in range(n_clutter):
            kind = str(rng.choice(CLUTTER_KINDS, p=[0.12, 0.12, 0.14, 0.14, 0.1, 0.08, 0.14, 0.04, 0.12]))
            center = _clutter_center(rng, placed, width, height)
            size = math.exp(rng.uniform(math.log(6), math.log(0.25 * min(width, height))))
            result = paint_clutter(rng, canvas.image, kind, center, size, to_light_2d)
            if result is not None:
                canvas.occlude(*result)
        if squares:
            _paint_square_lookalikes(np.random.default_rng(np.random.SeedSequence([int(seed), width, height, 1])),
                                     canvas, placed, to_light_2d)
    holes, instance_map = canvas.finish()
    if cad:
        image, effects = apply_camera(rng, canvas.image, noise_scale=0.0 if rng.random() < 0.7 else 0.3,
                                      allow_blur=rng.random() < 0.2, allow_jpeg=True)
    else:
        image, effects = apply_camera(rng, canvas.image)
    meta = dict(seed=int(seed), style=style, width=width, height=height, background=background_kind,
                focal_px=round(float(focal), 3), light=light["kind"],
                light_elevation_deg=round(math.degrees(elevation), 2),
                effects=effects)
    return Scene(image=image, holes=holes, instance_map=instance_map, parts=parts, meta=meta)


def _spec_fields(spec, index):
    if isinstance(spec, Mapping):
        center, axes, angle = spec["center"], spec["axes"], spec.get("angle_deg", 0.0)
        extra = spec
    else:
        center, axes, angle = spec[0], spec[1], spec[2] if len(spec) > 2 else 0.0
        extra = {}
    try:
        center = (float(center[0]), float(center[1]))
        axes = (float(axes[0]), float(axes[1]))
        angle = float(angle)
    except (TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"holes_spec[{index}]: expected center (u, v), axes (major, minor), angle_deg; {exc}") from exc
    if not (axes[0] >= axes[1] > 0):
        raise ValueError(f"holes_spec[{index}].axes: need major >= minor > 0, got {axes}")
    return center, axes, angle, extra


def render_holes(holes_spec: Iterable, width: int, height: int, seed: int, style: str = "photo") -> Scene:
    """Render the given ellipses as holes on a part surface filling the frame.

    ``holes_spec``: items ``{"center": (u, v), "axes": (major, minor), "angle_deg": a, ["kind"],
    ["diameter_mm"]}`` or tuples ``((u, v), (major, minor), angle_deg)``, in pixels. ``style``:
    ``photo`` (textured metal, shaded hole interiors, noise), ``cad`` (flat grey, dark edge line) or
    ``plain`` (uniform 0.8 grey, uniform black discs, no noise: for exact measurement tests).
    The ground truth is the given ellipses, exactly.
    """
    if style not in ("photo", "cad", "plain"):
        raise ValueError(f"style must be photo, cad or plain, got {style!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), width, height, 7]))
    shape = (height, width)
    if style == "photo":
        material = str(rng.choice(["machined", "cast", "sheet"]))
        albedo, mat = material_albedo(rng, material, shape, 8.0)
        add_scratches_and_oil(rng, albedo, 8.0)
        gradient = 0.8 + 0.4 * fractal_noise(rng, shape, max(width, height) / 2, 1)
        image = np.repeat((albedo * gradient)[:, :, None], 3, 2)
    elif style == "cad":
        material, mat = "cad", {}
        image = np.full((height, width, 3), rng.uniform(0.6, 0.85), np.float32)
    else:
        material, mat = "plain", {}
        image = np.full((height, width, 3), 0.8, np.float32)
    canvas = _Canvas(image)
    azimuth = rng.uniform(0, 2 * math.pi)
    for index, spec in enumerate(holes_spec):
        center, axes, angle, extra = _spec_fields(spec, index)
        conic = conic_from_ellipse(center, axes, angle)
        window = _window(ellipse_bbox(center, axes, angle), shape, 4)
        if window is None:
            continue
        x0, y0, x1, y1 = window
        vv, uu = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        coverage = conic_coverage(conic, uu, vv, supersample=4)
        kind = str(extra.get("kind", rng.choice(["through", "blind", "threaded"]) if style == "photo" else style))
        if style == "plain":
            value = np.full(coverage.shape, 0.05, np.float32)
        else:
            # Plane coordinates in units of the hole radius: the ellipse is the affine image of a unit circle.
            a, b = axes[0] / 2, axes[1] / 2
            t = math.radians(angle)
            du, dv = uu - center[0], vv - center[1]
            qx = (du * math.cos(t) + dv * math.sin(t)) / a
            qy = (-du * math.sin(t) + dv * math.cos(t)) / b
            tilt_tan = math.tan(math.acos(min(b / a, 1.0))) + 0.15
            wx, wy = 0.0 * qx, tilt_tan + 0.0 * qy
            shape_ = HoleShape(x=0.0, y=0.0, bore_radius=1.0, opening_radius=1.0, depth=float(rng.uniform(1, 4)),
                               kind=kind if kind in ("through", "blind", "threaded") else "through",
                               through=kind in ("through", "cad"), thread_pitch=0.3 if kind == "threaded" else 0.0)
            L = np.array([math.cos(azimuth), math.sin(azimuth), 1.2])
            L = _unit(L)
            lighting = Lighting(to_light=L, half_vector=_unit(L + np.array([0, 0, 1.0])), ambient=0.25, diffuse=0.7,
                                specular=0.3, shininess=20.0, albedo=0.5, shadows=style == "photo")
            value, behind_weight = shade_hole(qx, qy, wx, wy, shape_, lighting, math.sqrt(a * b))
            value = (value + 0.04 * behind_weight).astype(np.float32)
        win = canvas.image[y0:y1, x0:x1]
        win[:] = win * (1 - coverage[:, :, None]) + value[:, :, None] * coverage[:, :, None]
        hole = SceneHole(center=center, axes=axes, angle_deg=angle % 180.0, kind=kind, visible=1.0, occluded=False,
                         on_border=False, design_index=index, diameter_mm=float(extra.get("diameter_mm", 0.0)),
                         opening_diameter_mm=float(extra.get("diameter_mm", 0.0)))
        _label_hole(canvas, conic, window, coverage, hole, math.pi * axes[0] * axes[1] / 4)
        if style == "cad":
            _draw_on_float(canvas, lambda m: _cv_ellipse(m, center, axes, angle, 1), 0.05)
    holes, instance_map = canvas.finish()
    if style == "plain":
        image8 = np.clip(canvas.image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        effects = {}
    else:
        image8, effects = apply_camera(rng, canvas.image, noise_scale=1.0 if style == "photo" else 0.0,
                                       allow_blur=False, allow_jpeg=False)
    meta = dict(seed=int(seed), style=style, width=width, height=height, material=material, effects=effects)
    return Scene(image=image8, holes=holes, instance_map=instance_map, parts=[], meta=meta)
