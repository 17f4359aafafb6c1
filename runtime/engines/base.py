"""The one inference interface the runtime uses, whatever executes the model."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np


class EngineError(ValueError):
    """An engine cannot be created or was fed something that does not match the model's input."""


class Engine(ABC):
    """Runs a bundle's model: a uint8 BGR NHWC batch in, named float arrays out.

    ``input_shape`` is the model's fixed (N, H, W, 3); frames of other sizes are padded or tiled
    before they get here (holevision.runtime.tiling).
    """

    name: str = "engine"
    input_shape: tuple[int, int, int, int]
    output_names: tuple[str, ...]

    @abstractmethod
    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Execute the model on a checked batch."""

    def run(self, batch_uint8_nhwc: np.ndarray) -> dict[str, np.ndarray]:
        """Execute the model; ``batch_uint8_nhwc`` must be exactly ``input_shape`` and uint8."""
        batch = np.asarray(batch_uint8_nhwc)
        if batch.dtype != np.uint8:
            raise EngineError(f"{self.name}: input must be uint8 BGR NHWC, got dtype {batch.dtype}")
        if tuple(batch.shape) != tuple(self.input_shape):
            raise EngineError(f"{self.name}: input shape {tuple(batch.shape)} does not match the model's "
                              f"{tuple(self.input_shape)} (pad or tile frames first)")
        return self._run(np.ascontiguousarray(batch))

    def warm_up(self, iterations: int = 2) -> float:
        """Run the model on blank input so the first real frame is not slow; returns seconds taken."""
        start = time.perf_counter()
        blank = np.zeros(self.input_shape, dtype=np.uint8)
        for _ in range(max(iterations, 1)):
            self._run(blank)
        return time.perf_counter() - start

    def describe(self) -> dict:
        """What runs the model, for logs, benchmarks and the service's status."""
        return {"engine": self.name, "input_shape": list(self.input_shape)}
