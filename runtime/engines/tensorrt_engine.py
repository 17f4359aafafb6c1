"""Native TensorRT engine for a bundle's prebuilt plan.

A plan only runs on the TensorRT version and GPU architecture it was built for, so bundles name plans
``model.trt<major>.<minor>-sm<cc>.plan`` (``model.trt10.8-sm89.plan``: TensorRT 10.8, compute
capability 8.9). This module imports without TensorRT; ``find_plan`` says which plan would match and
``TensorRTEngine`` needs the ``tensorrt`` extra (tensorrt + cuda-python) only when constructed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from holevision.runtime.bundle import plan_file_name
from holevision.runtime.engines.base import Engine, EngineError

def plan_name(trt_version: str, compute_capability: tuple[int, int], precision: str = "fp32") -> str:
    """The file name a plan for this TensorRT version and GPU gets inside a bundle (the bundle
    contract's `plan_file_name`, which the exporter uses too)."""
    return plan_file_name(trt_version, compute_capability, precision)


def installed_tensorrt_version() -> str | None:
    try:
        import tensorrt
    except ImportError:
        return None
    return str(tensorrt.__version__)


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            return None
    return cudart


def gpu_compute_capability(device: int = 0) -> tuple[int, int] | None:
    cudart = _cudart()
    if cudart is None:
        return None
    err, props = cudart.cudaGetDeviceProperties(device)
    if int(err) != 0:
        return None
    return int(props.major), int(props.minor)


def find_plan(plan_files: list[str], precision: str = "fp32") -> tuple[str | None, str]:
    """The plan among ``plan_files`` that matches this machine, or None and the reason why not."""
    version = installed_tensorrt_version()
    if version is None:
        return None, "tensorrt is not installed (pip install 'holevision[tensorrt]')"
    capability = gpu_compute_capability()
    if capability is None:
        return None, "no CUDA GPU found (or cuda-python is not installed)"
    wanted = plan_name(version, capability, precision)
    if wanted in plan_files:
        return wanted, ""
    return None, (f"the bundle has no plan for TensorRT {version} on sm{capability[0]}{capability[1]} "
                  f"(wanted {wanted}; it has {plan_files or 'none'}); build one on this machine")


def _check(result, what: str):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise EngineError(f"tensorrt: CUDA call {what} failed with error {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRTEngine(Engine):
    """Deserialises a plan and runs it with device buffers allocated once (fixed input shape)."""

    def __init__(self, plan_path: str | Path):
        try:
            import tensorrt as trt
        except ImportError:
            raise EngineError("tensorrt is not installed (pip install 'holevision[tensorrt]')") from None
        cudart = _cudart()
        if cudart is None:
            raise EngineError("cuda-python is not installed (pip install 'holevision[tensorrt]')")
        plan_path = Path(plan_path)
        self._trt, self._cudart = trt, cudart
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(plan_path.read_bytes())
        if engine is None:
            raise EngineError(f"{plan_path}: TensorRT could not deserialise the plan (built for another "
                              f"TensorRT version or GPU?)")
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._buffers: dict[str, tuple[int, np.ndarray]] = {}
        inputs, outputs = [], []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineError(f"{plan_path}: tensor {name!r} has a dynamic shape {shape}; plans must be fixed")
            host = np.empty(shape, dtype=trt.nptype(engine.get_tensor_dtype(name)))
            device = _check(cudart.cudaMalloc(host.nbytes), "cudaMalloc")
            self._context.set_tensor_address(name, int(device))
            self._buffers[name] = (device, host)
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
        if len(inputs) != 1:
            raise EngineError(f"{plan_path}: expected one input, the plan has {inputs}")
        self.input_name = inputs[0]
        self.input_shape = tuple(self._buffers[self.input_name][1].shape)
        if self._buffers[self.input_name][1].dtype != np.uint8:
            raise EngineError(f"{plan_path}: input must be uint8, got {self._buffers[self.input_name][1].dtype}")
        self.output_names = tuple(outputs)
        self.plan_path = plan_path
        self.name = "tensorrt"

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        cudart = self._cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        device, _ = self._buffers[self.input_name]
        _check(cudart.cudaMemcpyAsync(device, batch.ctypes.data, batch.nbytes, h2d, self._stream), "cudaMemcpyAsync")
        if not self._context.execute_async_v3(int(self._stream)):
            raise EngineError(f"{self.plan_path}: TensorRT execution failed")
        results = {}
        for name in self.output_names:
            device, host = self._buffers[name]
            out = np.empty_like(host)
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, device, out.nbytes, d2h, self._stream), "cudaMemcpyAsync")
            results[name] = out
        _check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return results

    def describe(self) -> dict:
        return {**super().describe(), "plan": self.plan_path.name, "tensorrt": installed_tensorrt_version()}

    def __del__(self):  # pragma: no cover - needs a GPU
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for device, _ in getattr(self, "_buffers", {}).values():
            cudart.cudaFree(device)
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
