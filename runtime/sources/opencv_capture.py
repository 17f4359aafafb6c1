"""OpenCV VideoCapture: USB index ("0"), V4L2 path (/dev/video0), RTSP/HTTP/GStreamer URL, or a video file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from holevision.runtime.sources.base import FrameSource, SourceError


class OpenCVSource(FrameSource):
    """``uri``: "0" / "/dev/video0" (live), "rtsp://..." (live), "... ! appsink" (GStreamer, live), or a
    video file (not live: paced by the service's fps, restarted at the end when ``loop``)."""

    def __init__(self, uri: str, loop: bool = True, width: int = 0, height: int = 0):
        self.uri = uri
        self.loop = loop
        self.width, self.height = width, height
        self.is_file = Path(uri).is_file() and not uri.startswith("/dev/")
        self.live = not self.is_file
        self.name = f"opencv:{uri}"
        self._capture = None
        self.position = -1

    def open(self) -> None:
        import cv2

        if self.uri.isdigit():
            capture = cv2.VideoCapture(int(self.uri))
        elif "!" in self.uri:
            capture = cv2.VideoCapture(self.uri, cv2.CAP_GSTREAMER)
        else:
            capture = cv2.VideoCapture(self.uri)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"source.uri: cannot open {self.uri!r} with OpenCV")
        if self.live and self.width and self.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._capture = capture
        self.position = -1

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            raise SourceError(f"{self.name} is closed")
        ok, image = self._capture.read()
        if not ok:
            if self.is_file:
                if not self.loop:
                    raise SourceError(f"{self.uri}: end of video (source.loop = false)")
                import cv2

                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self.position = -1
                ok, image = self._capture.read()
                if not ok:
                    raise SourceError(f"{self.uri}: cannot read any frame")
            else:
                raise SourceError(f"{self.uri}: read failed (camera unplugged or stream ended)")
        self.position += 1
        return image

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
