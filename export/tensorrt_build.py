"""TensorRT plans from the bundle's ONNX files, with the documented TensorRT (10.x) Python API.

A plan only runs on the TensorRT version and GPU architecture it was built with, so it is named after
both: ``model.trt10.8-sm89.plan`` (from model.onnx, FP16 kernels allowed) and
``model.int8.trt10.8-sm89.plan`` (from the QDQ model: explicit quantization, the scales come from the
ONNX file). The runtime's engine factory picks the plan whose name matches its TensorRT and GPU. Build on the target device:
``holevision export RUN --out BUNDLE --tensorrt`` there, or ``build_plan`` from Python.

``tensorrt`` is imported inside the functions only; this module imports without it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from holevision.runtime.bundle import plan_file_name

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_BYTES = 2 << 30


class TensorRTError(RuntimeError):
    """TensorRT is missing, or it could not parse the ONNX file or build the plan."""


def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def tensorrt_version() -> str:
    """``major.minor`` of the installed TensorRT, e.g. ``10.8``."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTError("TensorRT is not installed: pip install 'holevision[tensorrt]' on the GPU machine") from exc
    return ".".join(trt.__version__.split(".")[:2])


def gpu_compute_capability(device: int = 0) -> str:
    """Compute capability of GPU ``device`` without the decimal point (``89`` for an RTX 4090 / L4)."""
    try:  # cuda-python (the `tensorrt` extra)
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        err, props = cudart.cudaGetDeviceProperties(device)
        if int(err) == 0:
            return f"{props.major}{props.minor}"
    except ImportError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader", f"--id={device}"],
                             capture_output=True, text=True, timeout=20)
        text = out.stdout.strip()
        if out.returncode == 0 and text:
            return text.replace(".", "")
    raise TensorRTError("cannot find the GPU's compute capability (no cuda-python, no nvidia-smi)")


@dataclass(frozen=True)
class PlanBuild:
    path: Path
    precision: str
    tensorrt: str
    compute_capability: str


def build_plan(onnx_path: str | Path, out_dir: str | Path, *, precision: str = "fp32",
               workspace_bytes: int = DEFAULT_WORKSPACE_BYTES, device: int = 0) -> PlanBuild:
    """Parse ``onnx_path`` and build a serialized TensorRT engine into ``out_dir``.

    precision: ``fp32`` (the fp32 ONNX; FP16 kernels allowed, TensorRT picks per layer), ``fp16`` (the
    fp16 ONNX) or ``int8`` (a QDQ ONNX; FP16 allowed for the layers that stay float).
    """
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision must be 'fp32', 'fp16' or 'int8', got {precision!r}")
    version = tensorrt_version()
    import tensorrt as trt

    capability = gpu_compute_capability(device)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"{onnx_path}: TensorRT could not parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit quantization: Q/DQ scales from the graph
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"{onnx_path}: TensorRT failed to build a {precision} engine (see its log above)")
    out = Path(out_dir) / plan_file_name(version, capability, precision)
    out.write_bytes(bytes(serialized))
    log.info("wrote %s", out)
    return PlanBuild(out, precision, version, capability)
