"""Test doubles for the service tests: a classical disc detector and a small loopback config."""

from __future__ import annotations

import time
from types import SimpleNamespace

import cv2
import numpy as np

from holevision.runtime.config import parse_config
from holevision.runtime.detections import Holes


class DiscDetector:
    """Finds the synthetic source's dark discs (threshold + contours); ``delay_s`` plays a slow model."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.calls = 0

    def detect(self, image: np.ndarray):
        started = time.perf_counter()
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        _, mask = cv2.threshold(gray, 100, 255, cv2.THRESH_BINARY_INV)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        centers, axes = [], []
        for contour in contours:
            if len(contour) < 5:
                continue
            moments = cv2.moments(contour)
            if moments["m00"] < 10:
                continue
            centers.append((moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]))
            d = 2 * np.sqrt(moments["m00"] / np.pi)
            axes.append((d, d))
        n = len(centers)
        holes = Holes(centers=np.reshape(centers, (n, 2)), axes=np.reshape(axes, (n, 2)), angles=np.zeros(n),
                      scores=np.full(n, 0.9))
        return SimpleNamespace(holes=holes, timings={"model": time.perf_counter() - started})


class SplitDiscDetector(DiscDetector):
    """The same, split like the runtime Detector: ``probability`` (the "model") then ``extract``."""

    def __init__(self, delay_s: float = 0.0, fail_on_call: int | None = None):
        super().__init__(delay_s)
        self.fail_on_call = fail_on_call

    def probability(self, image, timings):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("model exploded")
        started = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        timings["model"] = time.perf_counter() - started
        return image

    def extract(self, probability, image):
        return DiscDetector().detect(image).holes


def loopback_config(state_dir, *, trigger: str = "free-run", fps: float = 50.0, width: int = 320, height: int = 256,
                    modbus: bool = True, zmq: bool = True, metrics: bool = False, **sections):
    data = {
        "source": {"kind": "synthetic", "fps": fps, "width": width, "height": height, "seed": 1,
                   "synthetic_style": "discs"},
        "trigger": {"mode": trigger},
        "publish": {"zmq": {"enabled": zmq, "pub": "tcp://127.0.0.1:*", "command": "tcp://127.0.0.1:*"},
                    "modbus": {"enabled": modbus, "port": 0, "max_holes": 8}},
        "journal": {"state_dir": str(state_dir)},
        "metrics": {"enabled": metrics, "port": 0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, "test.toml")
