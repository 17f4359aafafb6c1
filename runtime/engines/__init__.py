"""Inference engines: one `Engine` interface over ONNX Runtime and native TensorRT."""
