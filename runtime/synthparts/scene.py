"""The rendered scene and its exact ground truth."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

HOLE_KINDS = ("through", "blind", "threaded", "countersunk", "chamfered", "cad", "plain")  # plain: render_holes(style="plain")


@dataclass
class SceneHole:
    """Ground truth for one hole in the image.

    The label is the hole's opening in the part's top surface: the image of the circle where the hole
    breaks the top surface. For countersunk and chamfered holes that is the OUTER edge of the cone (the
    bore is inside it); ``diameter_mm`` is still the nominal bore, ``opening_diameter_mm`` the labelled
    edge. ``center`` is the exact center of the projected ellipse (not the projection of the circle's
    center), pixel centers at integer coordinates.
    """

    center: tuple[float, float]        # (u, v) px, exact
    axes: tuple[float, float]          # full (major, minor) px
    angle_deg: float                   # major axis from +u toward +v, [0, 180)
    kind: str                          # one of HOLE_KINDS
    visible: float                     # fraction of the labelled ellipse that is visible in the image
    occluded: bool                     # something (clutter, another part) covers part of it
    on_border: bool                    # the ellipse is cut by the image border
    design_index: int                  # index into its part's ``holes`` layout
    diameter_mm: float                 # nominal bore diameter
    opening_diameter_mm: float = 0.0   # diameter of the labelled opening (== diameter_mm unless chamfered)
    part_index: int = 0                # which part of ``Scene.parts``

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Scene:
    """An image, its holes, and the per-pixel instance map (0 = background, k = holes[k - 1])."""

    image: np.ndarray                  # (H, W, 3) uint8 BGR
    holes: list[SceneHole]
    instance_map: np.ndarray           # (H, W) int32
    parts: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def part(self) -> dict:
        """Metadata of the main part (material, style, hole layout in mm and px, missing holes, pose)."""
        return self.parts[0] if self.parts else {}

    @property
    def missing(self) -> list[tuple[int, int]]:
        """(part_index, design_index) of every designed hole that was left undrilled."""
        return [(p["index"], h["index"]) for p in self.parts for h in p["holes"] if not h["drilled"]]
