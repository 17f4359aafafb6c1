"""Hole extraction: probability map + full-resolution image -> measured `Holes` (pure computation)."""

from holevision.runtime.holes.extract import HoleExtractionError, extract_holes, warm_up_extraction

__all__ = ["HoleExtractionError", "extract_holes", "warm_up_extraction"]
