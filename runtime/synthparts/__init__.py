"""Synthetic parts with holes and exact ground truth: pure numpy + OpenCV (no torch).

Used by ``holevision synth`` (training data) and by the runtime's synthetic camera source.
"""

from holevision.runtime.synthparts.render import STYLES, render_holes, render_scene
from holevision.runtime.synthparts.scene import HOLE_KINDS, Scene, SceneHole

__all__ = ["HOLE_KINDS", "STYLES", "Scene", "SceneHole", "render_holes", "render_scene"]
