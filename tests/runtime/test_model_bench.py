"""`holevision bench model`: runs on a bundle and reports every precision; figures are printed, not judged."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from holevision.runtime.benchmarks.model_bench import bench_model, format_table, matmul_peak_gflops  # noqa: E402
from holevision.runtime.bundle import DEFAULT_BUNDLE_DIR  # noqa: E402
from holevision.runtime.cli import main  # noqa: E402


def test_matmul_peak_is_a_positive_rate():
    peak = matmul_peak_gflops(size=128, repeats=2)
    assert peak["gflops"] > 0 and peak["size"] == 128


def test_bench_model_reports_each_model_file_of_the_bundle(tmp_path, capsys):
    result = bench_model(DEFAULT_BUNDLE_DIR, threads=1, warmup=0, repeats=1, peak_size=64, progress=False)
    files = sorted(json.loads((DEFAULT_BUNDLE_DIR / "manifest.json").read_text())["files"])
    onnx_files = [f for f in files if f.startswith("model") and f.endswith(".onnx")]   # not verifier.onnx
    assert sorted(row["file"] for row in result["models"]) == onnx_files
    fp32 = next(row for row in result["models"] if row["precision"] == "fp32")
    assert fp32["median_ms"] > 0 and fp32["vs_fp32"] == 1.0 and fp32["achieved_gflops"] > 0
    table = format_table(result)
    assert "median ms" in table and "matmul" in table and "fp32" in table


def test_bench_model_command_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "model", "--repeats", "1", "--warmup", "0", "--threads", "1", "--json", str(out)]) == 0
    assert "median ms" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["models"][0]["precision"] == "fp32" and data["matmul_peak"]["gflops"] > 0
