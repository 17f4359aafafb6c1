"""TensorRT plans: importable and named consistently without TensorRT; built only where it is installed."""

from __future__ import annotations

import pytest

from holevision.export import tensorrt_build
from holevision.runtime.bundle import plan_file_name


def test_module_imports_and_reports_tensorrt_presence():
    try:
        import tensorrt  # noqa: F401
        present = True
    except ImportError:
        present = False
    assert tensorrt_build.tensorrt_available() is present


def test_plan_names_agree_with_the_runtime_engine_lookup():
    engine = pytest.importorskip("holevision.runtime.engines.tensorrt_engine")
    for precision in ("fp32", "fp16", "int8"):
        assert plan_file_name("10.8.1", (8, 9), precision) == engine.plan_name("10.8.1", (8, 9), precision)


def test_without_tensorrt_build_plan_says_how_to_get_it(tmp_path):
    if tensorrt_build.tensorrt_available():
        pytest.skip("TensorRT is installed here")
    with pytest.raises(tensorrt_build.TensorRTError, match="holevision\\[tensorrt\\]"):
        tensorrt_build.build_plan(tmp_path / "model.onnx", tmp_path)


def test_export_command_refuses_tensorrt_without_it(capsys):
    if tensorrt_build.tensorrt_available():
        pytest.skip("TensorRT is installed here")
    from holevision.runtime.cli import main

    assert main(["export", "no-such-run", "--out", "x", "--tensorrt"]) == 3
    assert "TensorRT" in capsys.readouterr().err


def test_build_plan_on_a_gpu(tmp_path):
    pytest.importorskip("tensorrt")
    pytest.importorskip("torch")
    try:
        tensorrt_build.gpu_compute_capability()
    except tensorrt_build.TensorRTError:
        pytest.skip("no CUDA GPU")
    from export_fixtures import HEIGHT, WIDTH, DiscDetector

    from holevision.export.onnx_export import export_onnx

    exported = export_onnx(DiscDetector(), tmp_path / "model.onnx", HEIGHT, WIDTH)
    built = tensorrt_build.build_plan(exported.path, tmp_path, precision="fp32")
    assert built.path.is_file() and built.path.stat().st_size > 0
    assert built.path.name == plan_file_name(built.tensorrt, built.compute_capability, "fp32")
