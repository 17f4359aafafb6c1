"""The pipeline's inspect step: the active recipe of a cell judges each frame's holes.

``Pipeline(..., inspector=InspectStep(library))``: called with the frame's ``Holes`` (after the
geometry step, so mm recipes see ``points_base``), it returns ``None`` when no recipe is active
(recipe number 0), else ``(report, statuses)``: the JSON-ready inspection report for the result
schema, the Modbus map and the journal, and the overlay statuses marking what failed.
"""

from __future__ import annotations

from holevision.runtime.detections import Holes
from holevision.runtime.inspect.library import RecipeLibrary
from holevision.runtime.inspect.measure import inspect_holes, overlay_statuses


class InspectStep:
    """Callable ``(holes) -> (report dict, statuses) | None`` using the library's active recipe."""

    def __init__(self, library: RecipeLibrary, frame_size: tuple[int, int] | None = None, seed: int = 0):
        self.library = library
        self.frame_size = frame_size      # (width, height) px: holes outside the frame are unchecked
        self.seed = seed

    def __call__(self, holes: Holes):
        number = self.library.active_number
        recipe = self.library.get(number)
        if recipe is None:
            return None
        inspection = inspect_holes(recipe, holes, frame_size=self.frame_size, seed=self.seed)
        report = inspection.to_dict()
        report["recipe_number"] = number
        return report, overlay_statuses(inspection, holes)
