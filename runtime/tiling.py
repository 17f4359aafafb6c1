"""Frames of any size on a model with a fixed input: pad small frames, tile large ones, stitch.

A frame no larger than the model input is padded at the right and bottom (mirrored, never cropped or
resized). A larger frame is cut into input-sized tiles that overlap by at least ``overlap_px``; the
tiles' probability maps are blended back with weights that ramp down towards inner tile edges, so a
hole across a seam appears once, from the tiles that saw it whole. Everything the caller gets back is
in the frame's original pixels. Pure computation: no model, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

PAD_MODE = cv2.BORDER_REFLECT_101


class TilingError(ValueError):
    """A frame or a tile result does not fit the tile plan."""


@dataclass(frozen=True)
class TilePlan:
    frame_height: int
    frame_width: int
    tile_height: int
    tile_width: int
    overlap_px: int
    origins: tuple[tuple[int, int], ...]   # (y, x) of each tile's top-left corner in the padded frame

    @property
    def padded_height(self) -> int:
        return max(self.frame_height, self.tile_height)

    @property
    def padded_width(self) -> int:
        return max(self.frame_width, self.tile_width)

    def __len__(self) -> int:
        return len(self.origins)


def _axis_origins(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise TilingError(f"overlap {overlap} px must be smaller than the tile ({tile} px)")
    count = math.ceil((length - overlap) / step)
    count = max(count, 2)
    # Spread the tiles evenly over the frame: the last one ends exactly at the frame edge.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def plan_tiles(frame_height: int, frame_width: int, tile_height: int, tile_width: int, overlap_px: int) -> TilePlan:
    """Tile origins covering the frame with at least ``overlap_px`` of overlap between neighbours."""
    if min(frame_height, frame_width) <= 0:
        raise TilingError(f"frame must be at least 1x1 px, got {frame_width}x{frame_height}")
    if overlap_px < 0:
        raise TilingError(f"overlap_px must be >= 0, got {overlap_px}")
    ys = _axis_origins(frame_height, tile_height, overlap_px)
    xs = _axis_origins(frame_width, tile_width, overlap_px)
    return TilePlan(frame_height, frame_width, tile_height, tile_width, overlap_px,
                    tuple((y, x) for y in ys for x in xs))


def pad_frame(image: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Mirror-pad the frame at the right and bottom up to the tile size where it is smaller."""
    bottom = plan.padded_height - plan.frame_height
    right = plan.padded_width - plan.frame_width
    if bottom == 0 and right == 0:
        return image
    if bottom >= plan.frame_height or right >= plan.frame_width:
        # Mirroring needs a frame at least as large as the padding; repeat the edge instead.
        return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, PAD_MODE)


def cut_tiles(image: np.ndarray, plan: TilePlan) -> np.ndarray:
    """(T, tile_h, tile_w, C) tiles of the (padded) frame, in plan order."""
    if image.shape[0] != plan.frame_height or image.shape[1] != plan.frame_width:
        raise TilingError(f"frame is {image.shape[1]}x{image.shape[0]}, the plan is for "
                          f"{plan.frame_width}x{plan.frame_height}")
    padded = pad_frame(image, plan)
    if padded.ndim == 2:
        padded = padded[..., None]
    return np.stack([padded[y:y + plan.tile_height, x:x + plan.tile_width] for y, x in plan.origins])


def _ramp(length: int, ramp: int, start_open: bool, end_open: bool) -> np.ndarray:
    """1 in the middle, falling linearly towards an edge that borders another tile."""
    weight = np.ones(length, dtype=np.float32)
    if ramp <= 0:
        return weight
    position = np.arange(length, dtype=np.float32) + 0.5
    if start_open:
        weight = np.minimum(weight, position / ramp)
    if end_open:
        weight = np.minimum(weight, (length - position) / ramp)
    return weight


def tile_weights(plan: TilePlan, index: int) -> np.ndarray:
    """(tile_h, tile_w) blending weight of one tile: ramps only on sides shared with a neighbour."""
    y, x = plan.origins[index]
    wy = _ramp(plan.tile_height, plan.overlap_px, y > 0, y + plan.tile_height < plan.padded_height)
    wx = _ramp(plan.tile_width, plan.overlap_px, x > 0, x + plan.tile_width < plan.padded_width)
    return wy[:, None] * wx[None, :]


def stitch(tile_maps: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Blend (T, C, tile_h, tile_w) per-tile maps into (C, frame_h, frame_w), original pixels."""
    tile_maps = np.asarray(tile_maps)
    expected = (len(plan), plan.tile_height, plan.tile_width)
    if tile_maps.ndim != 4 or (tile_maps.shape[0], *tile_maps.shape[2:]) != expected:
        raise TilingError(f"tile maps have shape {tile_maps.shape}, expected ({len(plan)}, C, "
                          f"{plan.tile_height}, {plan.tile_width})")
    channels = tile_maps.shape[1]
    if len(plan) == 1:
        return np.ascontiguousarray(tile_maps[0, :, :plan.frame_height, :plan.frame_width], dtype=np.float32)
    total = np.zeros((channels, plan.padded_height, plan.padded_width), dtype=np.float32)
    weight_sum = np.zeros((plan.padded_height, plan.padded_width), dtype=np.float32)
    weights: dict[tuple, np.ndarray] = {}   # tiles with the same open sides share a weight map
    for index, (y, x) in enumerate(plan.origins):
        key = (y > 0, y + plan.tile_height < plan.padded_height, x > 0, x + plan.tile_width < plan.padded_width)
        if key not in weights:
            weights[key] = tile_weights(plan, index)
        weight = weights[key]
        window = total[:, y:y + plan.tile_height, x:x + plan.tile_width]
        window += tile_maps[index] * weight
        weight_sum[y:y + plan.tile_height, x:x + plan.tile_width] += weight
    total /= np.maximum(weight_sum, 1e-12)
    return total[:, :plan.frame_height, :plan.frame_width]
