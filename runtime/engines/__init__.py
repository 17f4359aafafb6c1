"""Inference engines: one `Engine` interface over ONNX Runtime and native TensorRT.

Importing this package imports neither onnxruntime nor tensorrt; engines import them when created.
"""

from holevision.runtime.engines.base import Engine, EngineError
from holevision.runtime.engines.factory import ENGINES, PRECISIONS, create_engine
from holevision.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine
from holevision.runtime.engines.tensorrt_engine import TensorRTEngine, find_plan, plan_name

__all__ = ["ENGINES", "PRECISIONS", "Engine", "EngineError", "OnnxRuntimeEngine", "TensorRTEngine",
           "create_engine", "find_plan", "plan_name"]
