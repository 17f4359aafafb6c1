"""ONNX Runtime engine: CPU everywhere; CUDA and TensorRT execution providers when installed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from holevision.runtime.engines.base import Engine, EngineError

log = logging.getLogger(__name__)

# Preference order when providers are chosen automatically.
AUTO_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def default_trt_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "holevision" / "tensorrt"


def choose_providers(available: list[str], requested: list[str] | None, precision: str,
                     trt_cache_dir: Path | None = None) -> list:
    """Execution providers to pass to ONNX Runtime, best first, always ending with the CPU."""
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise EngineError(f"onnxruntime: execution provider(s) {missing} are not available here; "
                              f"available: {available} (the 'gpu' extra installs onnxruntime-gpu)")
        names = list(requested)
    else:
        names = [p for p in AUTO_PROVIDERS if p in available]
    if "CPUExecutionProvider" not in names:
        names.append("CPUExecutionProvider")
    providers: list = []
    for name in names:
        if name == "TensorrtExecutionProvider":
            cache = trt_cache_dir or default_trt_cache_dir()
            providers.append((name, {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
                "trt_fp16_enable": precision == "fp16",
                "trt_int8_enable": False,  # INT8 comes from the QDQ model itself
            }))
        else:
            providers.append(name)
    return providers


class OnnxRuntimeEngine(Engine):
    """An ``onnxruntime.InferenceSession`` behind the Engine interface.

    threads: intra-op threads (0 = ONNX Runtime's default, one per physical core);
    inter_op_threads: threads across independent graph branches (0 = default).
    """

    def __init__(self, model_path: str | Path, *, providers: list[str] | None = None, threads: int = 0,
                 inter_op_threads: int = 0, precision: str = "fp32", output_names: list[str] | None = None,
                 trt_cache_dir: Path | None = None):
        import onnxruntime as ort

        model_path = Path(model_path)
        if not model_path.is_file():
            raise EngineError(f"{model_path}: model file not found")
        if threads < 0 or inter_op_threads < 0:
            raise EngineError(f"threads must be >= 0, got threads={threads}, inter_op_threads={inter_op_threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = int(inter_op_threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        chosen = choose_providers(ort.get_available_providers(), providers, precision, trt_cache_dir)
        if any(isinstance(p, tuple) and p[0] == "TensorrtExecutionProvider" for p in chosen):
            (trt_cache_dir or default_trt_cache_dir()).mkdir(parents=True, exist_ok=True)
        try:
            self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EngineError(f"{model_path}: onnxruntime could not load the model: {exc}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EngineError(f"{model_path}: expected one input (uint8 BGR NHWC), the graph has {len(inputs)}")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape) or shape[3] != 3:
            raise EngineError(f"{model_path}: input {self.input_name!r} must have a fixed (N, H, W, 3) shape, got {shape}")
        if inputs[0].type != "tensor(uint8)":
            raise EngineError(f"{model_path}: input {self.input_name!r} must be uint8, got {inputs[0].type}")
        self.input_shape = tuple(int(d) for d in shape)
        graph_outputs = [o.name for o in self.session.get_outputs()]
        wanted = list(output_names) if output_names else graph_outputs
        unknown = [n for n in wanted if n not in graph_outputs]
        if unknown:
            raise EngineError(f"{model_path}: outputs {unknown} are not in the graph (it has {graph_outputs})")
        self.output_names = tuple(wanted)
        self.providers = self.session.get_providers()
        self.model_path = model_path
        self.threads = threads
        self.name = f"onnxruntime[{self.providers[0].replace('ExecutionProvider', '')}]"

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(list(self.output_names), {self.input_name: batch})
        return dict(zip(self.output_names, values))

    def describe(self) -> dict:
        return {**super().describe(), "providers": list(self.providers), "model": self.model_path.name,
                "threads": self.threads}
