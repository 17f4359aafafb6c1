"""The synthetic camera: a new rendered part every frame (demo, tests, benchmarks).

It uses the project's part renderer (``holevision.runtime.synthparts.render_scene``) when available
and otherwise draws dark discs on a lit plate (``render_discs``), which is also what the pipeline
benchmark uses because its hole count and positions are exact.
"""

from __future__ import annotations

import numpy as np

from holevision.runtime.sources.base import FrameSource


def render_discs(seed: int, width: int = 1280, height: int = 1024, holes: int = 20,
                 diameter_px: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A gray plate with ``holes`` dark anti-aliased discs on a jittered grid, plus sensor noise.

    Diameters default to 18-40 px at 1280x1024, scaled with the image. Returns (image BGR uint8,
    truth (N, 3): u, v, diameter px).
    """
    import cv2

    rng = np.random.default_rng(seed)
    scale = min(width / 1280.0, height / 1024.0)
    if diameter_px is None:
        diameter_px = (max(6.0, 18.0 * scale), max(8.0, 40.0 * scale))
    image = np.full((height, width, 3), 170, np.uint8)
    margin = max(diameter_px[1], 60 * scale)
    cols = int(np.ceil(np.sqrt(holes * width / height)))
    rows = int(np.ceil(holes / cols))
    xs = np.linspace(margin, width - margin, cols)
    ys = np.linspace(margin, height - margin, rows)
    grid = np.array([(x, y) for y in ys for x in xs])[:holes]
    centers = grid + rng.uniform(-8 * scale, 8 * scale, size=grid.shape)
    diameters = rng.uniform(*diameter_px, size=len(centers))
    shift = 4  # subpixel drawing: coordinates in 1/16 px
    for (u, v), d in zip(centers, diameters):
        cv2.circle(image, (int(round(u * 16)), int(round(v * 16))), int(round(d / 2 * 16)), (35, 35, 35),
                   thickness=-1, lineType=cv2.LINE_AA, shift=shift)
    noise = rng.integers(-6, 7, size=(height // 4, width // 4), dtype=np.int16)
    noise = cv2.resize(noise.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)
    image = np.clip(image.astype(np.int16) + noise[..., None].astype(np.int16), 0, 255).astype(np.uint8)
    return image, np.column_stack([centers, diameters])


class SyntheticSource(FrameSource):
    live = False

    def __init__(self, seed: int = 0, width: int = 1280, height: int = 1024, style: str = "photo",
                 renderer: str = "auto"):
        self.seed, self.width, self.height, self.style = seed, width, height, style
        self.name = f"synthetic:seed={seed}"
        self.position = -1
        self._render_scene = None
        if renderer not in ("auto", "synthparts", "discs"):
            raise ValueError(f"synthetic renderer must be auto, synthparts or discs, got {renderer!r}")
        if renderer in ("auto", "synthparts"):
            try:
                from holevision.runtime.synthparts import render_scene
                self._render_scene = render_scene
            except ImportError:
                if renderer == "synthparts":
                    raise
        self.last_truth: np.ndarray | None = None  # (N, 3) u, v, diameter px of the last frame (disc renderer)

    def read(self) -> np.ndarray:
        self.position += 1
        frame_seed = self.seed * 1_000_003 + self.position
        if self._render_scene is not None:
            scene = self._render_scene(frame_seed, self.width, self.height, self.style)
            return scene.image
        image, self.last_truth = render_discs(frame_seed, self.width, self.height)
        return image
