"""GenICam (GigE Vision / USB3 Vision) cameras through `harvesters` (the `genicam` extra)."""

from __future__ import annotations

import numpy as np

from holevision.runtime.sources.base import FrameSource, SourceError


class GenICamSource(FrameSource):
    """``uri`` is "CTI_FILE" or "CTI_FILE#SERIAL": the GenTL producer (.cti) and optionally the
    camera's serial number (first camera otherwise)."""

    def __init__(self, uri: str, timeout_s: float = 1.0):
        cti, _, serial = uri.partition("#")
        self.cti, self.serial, self.timeout_s = cti, serial, timeout_s
        self.name = f"genicam:{uri}"
        self._harvester = None
        self._acquirer = None

    def open(self) -> None:
        try:
            from harvesters.core import Harvester
        except ImportError:
            raise SourceError("source.kind = 'genicam' needs harvesters: pip install 'holevision[genicam]'") from None
        harvester = Harvester()
        harvester.add_file(self.cti)
        harvester.update()
        if not harvester.device_info_list:
            harvester.reset()
            raise SourceError(f"source.uri: no GenICam camera found through {self.cti}")
        try:
            acquirer = (harvester.create({"serial_number": self.serial}) if self.serial
                        else harvester.create(0))
        except (ValueError, IndexError) as exc:
            harvester.reset()
            raise SourceError(f"source.uri: camera {self.serial!r} not found: {exc}") from None
        acquirer.start()
        self._harvester, self._acquirer = harvester, acquirer

    def read(self) -> np.ndarray | None:
        if self._acquirer is None:
            raise SourceError(f"{self.name} is closed")
        try:
            with self._acquirer.fetch(timeout=self.timeout_s) as buffer:
                component = buffer.payload.components[0]
                image = component.data.reshape(component.height, component.width, -1).copy()
        except Exception as exc:  # noqa: BLE001 - harvesters raises its own timeout/transport errors
            if "timeout" in type(exc).__name__.lower():
                return None
            raise SourceError(f"{self.name}: {exc}") from None
        return image[..., 0] if image.shape[2] == 1 else image

    def close(self) -> None:
        if self._acquirer is not None:
            try:
                self._acquirer.stop()
                self._acquirer.destroy()
            finally:
                self._acquirer = None
        if self._harvester is not None:
            self._harvester.reset()
            self._harvester = None
