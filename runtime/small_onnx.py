"""ONNX Runtime sessions for the small per-candidate networks (the hole verifier and its context pass)."""

from __future__ import annotations

from pathlib import Path


def small_model_session(path: str | Path, threads: int = 1):
    """A CPU session of ``threads`` threads (at least 1) that do not spin between runs.

    One thread by default: a second thread pool next to the segmentation model's, spinning after each
    run, took the model's cores (bench detect 320x256: model 38 -> 76 ms with two verifier threads).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(int(threads), 1)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
