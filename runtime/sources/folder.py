"""An image folder played as a camera (sorted by name; loops when ``loop``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from holevision.runtime.sources.base import FrameSource, SourceError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class FolderSource(FrameSource):
    live = False

    def __init__(self, folder: str | Path, loop: bool = True):
        self.folder = Path(folder)
        self.loop = loop
        self.name = f"folder:{self.folder}"
        self._files: list[Path] = []
        self.position = -1
        self.current_name = ""

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"source.uri: image folder {self.folder} does not exist")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"source.uri: no images ({', '.join(IMAGE_SUFFIXES)}) in {self.folder}")

    def read(self) -> np.ndarray | None:
        import cv2

        self.position += 1
        if self.position >= len(self._files):
            if not self.loop:
                raise SourceError(f"{self.folder}: end of folder (source.loop = false)")
            self.position = 0
        path = self._files[self.position]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            # the folder went away (unmounted share) or the file is unreadable
            raise SourceError(f"{path}: cannot read image")
        self.current_name = path.name
        return image
