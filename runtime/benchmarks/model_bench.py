"""`holevision bench model`: median latency per frame of a bundle's models on this CPU, next to the CPU.

For each ONNX file in the bundle (fp32, INT8, fp16 when present) it times ONNX Runtime (CPU provider) on a
frame of the bundle's input size, and turns the median into achieved GFLOP/s with the manifest's GFLOPs.
For scale, it measures this machine's float32 matmul peak with numpy (large square matrices, all cores).
Timings go into the printed table and JSON, never into pass/fail tests.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from holevision.runtime.bundle import load_bundle

PRECISION_FILES = (("fp32", "model.onnx"), ("int8", "model.int8.onnx"), ("fp16", "model.fp16.onnx"))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_peak_gflops(size: int = 1024, repeats: int = 10) -> dict:
    """Best float32 GFLOP/s of ``A @ B`` (size x size) with numpy's BLAS over ``repeats`` runs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool, caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return {"gflops": 2.0 * size ** 3 / best / 1e9, "size": size, "best_ms": best * 1e3, "repeats": repeats}


def time_onnx_model(path: str | Path, shape: tuple[int, ...], *, threads: int, warmup: int, repeats: int) -> list[float]:
    """Per-frame latencies (ms) of ONNX Runtime CPU on a random uint8 frame of ``shape``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    frame = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    for _ in range(warmup):
        session.run(None, {name: frame})
    latencies = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {name: frame})
        latencies.append((time.perf_counter() - start) * 1e3)
    return latencies


def bench_model(bundle_path: str | Path | None = None, *, threads: int | None = None, warmup: int = 5,
                repeats: int = 30, peak_size: int = 1024, progress: bool = True) -> dict:
    """Time every ONNX precision of a bundle; returns the figures (see ``format_table``)."""
    import onnxruntime as ort
    from tqdm import tqdm

    bundle = load_bundle(bundle_path)
    manifest = bundle.manifest
    threads = threads or os.cpu_count() or 1
    spec = manifest.input
    shape = (spec.batch, spec.height, spec.width, 3)
    present = [(p, f) for p, f in PRECISION_FILES if bundle.has(f)]
    rows = []
    for precision, file in tqdm(present, desc="bench model", unit="model", disable=not progress):
        latencies = time_onnx_model(bundle.path / file, shape, threads=threads, warmup=warmup, repeats=repeats)
        median = statistics.median(latencies)
        rows.append({"precision": precision, "file": file, "median_ms": median,
                     "p90_ms": float(np.percentile(latencies, 90)), "min_ms": min(latencies),
                     "achieved_gflops": manifest.gflops / (median / 1e3) if median > 0 else 0.0})
    fp32 = next((r for r in rows if r["precision"] == "fp32"), None)
    for row in rows:
        row["vs_fp32"] = row["median_ms"] / fp32["median_ms"] if fp32 and fp32["median_ms"] > 0 else None
    peak = matmul_peak_gflops(peak_size)
    return {"bundle": str(bundle.path), "name": manifest.name, "input": f"{spec.height}x{spec.width}",
            "gflops_per_frame": manifest.gflops, "parameters": manifest.parameters, "threads": threads,
            "warmup": warmup, "repeats": repeats, "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "onnxruntime": ort.__version__, "numpy": np.__version__, "matmul_peak": peak, "models": rows}


def format_table(result: dict) -> str:
    peak = result["matmul_peak"]["gflops"]
    lines = [f"bundle {result['name']} ({result['bundle']}), input {result['input']} (HxW), "
             f"{result['gflops_per_frame']:.2f} GFLOPs/frame, {result['parameters'] / 1e6:.2f} M parameters",
             f"CPU {result['cpu']}, {result['threads']} threads, onnxruntime {result['onnxruntime']}, "
             f"median of {result['repeats']} frames after {result['warmup']} warm-up",
             "",
             f"{'precision':<10}{'median ms':>10}{'p90 ms':>9}{'min ms':>9}{'x fp32':>8}{'GFLOP/s':>10}{'% of peak':>11}"]
    for row in result["models"]:
        ratio = f"{row['vs_fp32']:.2f}" if row["vs_fp32"] is not None else "-"
        lines.append(f"{row['precision']:<10}{row['median_ms']:>10.1f}{row['p90_ms']:>9.1f}{row['min_ms']:>9.1f}"
                     f"{ratio:>8}{row['achieved_gflops']:>10.1f}{100 * row['achieved_gflops'] / peak:>10.1f}%")
    lines.append(f"{'matmul':<10}{'':>10}{'':>9}{result['matmul_peak']['best_ms']:>9.1f}{'':>8}{peak:>10.1f}"
                 f"{100.0:>10.1f}%   numpy float32 {result['matmul_peak']['size']}^3, this machine's peak")
    return "\n".join(lines)
