"""Engines: the ONNX Runtime engine on a tiny graph, the automatic choice, TensorRT fallback, errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from holevision.runtime.bundle import BundleError, load_bundle, read_manifest, write_manifest
from holevision.runtime.engines import (Engine, EngineError, OnnxRuntimeEngine, create_engine, find_plan,
                                        plan_name)

pytest.importorskip("onnxruntime")


def test_onnxruntime_engine_runs_the_model(make_bundle):
    bundle = load_bundle(make_bundle(height=64, width=96, batch=2))
    engine = create_engine(bundle, "onnxruntime", threads=1)
    assert isinstance(engine, OnnxRuntimeEngine) and isinstance(engine, Engine)
    assert engine.input_shape == (2, 64, 96, 3)
    assert engine.output_names == ("probabilities",)
    batch = np.full((2, 64, 96, 3), 250, np.uint8)
    batch[1, 10:20, 10:20] = 0
    out = engine.run(batch)["probabilities"]
    assert out.shape == (2, 2, 64, 96)
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-6)
    assert out[0, 1].max() < 0.01 and out[1, 1, 15, 15] > 0.99
    assert engine.warm_up(1) >= 0.0
    assert engine.describe()["providers"][-1] == "CPUExecutionProvider"


def test_auto_picks_onnxruntime_without_a_matching_plan(fake_bundle):
    engine = create_engine(load_bundle(fake_bundle), "auto")
    assert engine.name.startswith("onnxruntime")


def test_tensorrt_request_falls_back_to_onnxruntime_with_a_warning(fake_bundle, caplog):
    with caplog.at_level(logging.WARNING):
        engine = create_engine(load_bundle(fake_bundle), "tensorrt")
    assert engine.name.startswith("onnxruntime")
    assert "falling back to onnxruntime" in caplog.text


def test_plan_names_and_matching():
    assert plan_name("10.8.0.43", (8, 9)) == "model.trt10.8-sm89.plan"
    assert plan_name("10.3.0", (9, 0), "fp16") == "model.fp16.trt10.3-sm90.plan"
    plan, reason = find_plan(["model.trt10.8-sm89.plan"])
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert plan is None and "tensorrt is not installed" in reason


@pytest.mark.parametrize("dtype, shape, match", [
    (np.float32, (1, 128, 128, 3), "uint8"),
    (np.uint8, (1, 100, 128, 3), "does not match"),
    (np.uint8, (2, 128, 128, 3), "does not match"),
])
def test_wrong_input_is_refused(fake_bundle, dtype, shape, match):
    engine = create_engine(load_bundle(fake_bundle), "onnxruntime")
    with pytest.raises(EngineError, match=match):
        engine.run(np.zeros(shape, dtype))


def test_bad_requests_raise_clear_errors(fake_bundle):
    bundle = load_bundle(fake_bundle)
    with pytest.raises(EngineError, match="engine must be one of"):
        create_engine(bundle, "openvino")
    with pytest.raises(EngineError, match="no int8 model"):
        create_engine(bundle, "onnxruntime", precision="int8")
    with pytest.raises(EngineError, match="not available"):
        create_engine(bundle, "onnxruntime", providers=["NoSuchExecutionProvider"])
    with pytest.raises(EngineError, match="threads"):
        create_engine(bundle, "onnxruntime", threads=-1)


def test_manifest_that_does_not_match_the_graph_is_a_bundle_error(make_bundle):
    folder = make_bundle(height=64, width=64)
    manifest = read_manifest(folder)
    wrong = manifest.model_copy(update={"input": manifest.input.model_copy(update={"height": 96})})
    write_manifest(folder, wrong)
    with pytest.raises(BundleError, match="manifest input is"):
        create_engine(load_bundle(folder), "onnxruntime")


def test_a_file_that_is_not_onnx_is_refused(make_bundle):
    folder = make_bundle()
    (folder / "model.onnx").write_bytes(b"not a model")
    write_manifest(folder, read_manifest(folder))
    with pytest.raises(EngineError, match="could not load"):
        create_engine(load_bundle(folder), "onnxruntime")


def test_importing_engines_loads_no_inference_library():
    code = "import sys, holevision.runtime.engines; print(json.dumps([m in sys.modules for m in ('onnxruntime', 'tensorrt', 'torch')]))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, False, False]


def test_tensorrt_engine_without_tensorrt_says_what_to_install(tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    from holevision.runtime.engines import TensorRTEngine

    with pytest.raises(EngineError, match="holevision\\[tensorrt\\]"):
        TensorRTEngine(tmp_path / "model.trt10.8-sm89.plan")
