"""The FrameSource interface and the Frame every source produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SourceError(OSError):
    """A source cannot be opened or has failed (the capture thread then reopens it with backoff)."""


@dataclass
class Frame:
    """One captured image. ``seq`` counts frames from this service's start (1, 2, ...)."""

    image: np.ndarray          # (H, W, 3) uint8 BGR
    seq: int
    capture_epoch: float       # wall clock at capture, seconds since the Unix epoch
    capture_monotonic: float   # monotonic clock at capture (for latency and staleness)
    camera: str
    repeated: bool = False     # same content as the previous frame (a frozen or stuck camera)
    source_index: int = -1     # position in a folder/video, -1 for live cameras
    name: str = ""             # file name for folder sources


class FrameSource:
    """A camera or file stream. ``read()`` blocks until the next image (BGR uint8) and raises
    SourceError when the device has gone; ``None`` means "nothing this time, ask again"."""

    name = "source"
    live = True                # False for files: their pace is set by ``fps``

    def open(self) -> None:
        """Open the device; raise SourceError naming the device when it is not there."""

    def read(self) -> np.ndarray | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the device; safe to call twice."""

    def describe(self) -> str:
        return self.name


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Gray or BGRA -> BGR uint8 (cameras deliver all three)."""
    import cv2

    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        raise SourceError(f"frames must be 8-bit, got {image.dtype}")
    return image
