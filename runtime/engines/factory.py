"""`create_engine`: the engine a bundle should run on, chosen by config or automatically."""

from __future__ import annotations

import logging
from typing import Literal

from holevision.runtime.bundle import Bundle, BundleError
from holevision.runtime.engines.base import Engine, EngineError
from holevision.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine
from holevision.runtime.engines.tensorrt_engine import TensorRTEngine, find_plan

log = logging.getLogger(__name__)

ENGINES = ("auto", "onnxruntime", "tensorrt")
PRECISIONS = ("fp32", "int8", "fp16")


def create_engine(bundle: Bundle, engine: Literal["auto", "onnxruntime", "tensorrt"] = "auto", *,
                  providers: list[str] | None = None, threads: int = 0, inter_op_threads: int = 0,
                  precision: Literal["fp32", "int8", "fp16"] = "fp32") -> Engine:
    """An engine for ``bundle``.

    auto: a native TensorRT plan when one matches this machine's TensorRT and GPU, else ONNX Runtime
    with the best execution provider installed (TensorRT EP, CUDA, CPU).
    tensorrt: the matching plan; without one, ONNX Runtime with a warning saying why.
    onnxruntime: ONNX Runtime (``providers`` picks execution providers; ``threads`` its intra-op threads).
    """
    if engine not in ENGINES:
        raise EngineError(f"engine must be one of {ENGINES}, got {engine!r}")
    if precision not in PRECISIONS:
        raise EngineError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    outputs = bundle.manifest.outputs.names
    if engine in ("auto", "tensorrt"):
        plan, reason = find_plan(bundle.plans(), precision)
        if plan is not None:
            try:
                return _checked(TensorRTEngine(bundle.path / plan), bundle)
            except EngineError as exc:
                reason = str(exc)
        if engine == "tensorrt":
            log.warning("no usable TensorRT plan, falling back to onnxruntime: %s", reason)
    try:
        model = bundle.model_file(precision)
    except BundleError as exc:
        raise EngineError(str(exc)) from None
    return _checked(OnnxRuntimeEngine(model, providers=providers, threads=threads, inter_op_threads=inter_op_threads,
                                      precision=precision, output_names=outputs), bundle)


def _checked(engine: Engine, bundle: Bundle) -> Engine:
    """The graph's input must be what the manifest promises; a mismatch is a broken bundle."""
    spec = bundle.manifest.input
    expected = (spec.batch, spec.height, spec.width, 3)
    if tuple(engine.input_shape) != expected:
        raise BundleError(f"{bundle.path}: manifest input is {expected} (batch, height, width, 3) but the "
                          f"model takes {tuple(engine.input_shape)}")
    missing = [n for n in bundle.manifest.outputs.names if n not in engine.output_names]
    if missing:
        raise BundleError(f"{bundle.path}: manifest outputs {missing} are not produced by the model")
    return engine
