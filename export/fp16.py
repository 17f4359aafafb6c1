"""FP16 ONNX for GPUs: float tensors and weights in half precision, uint8 input and float32 outputs kept.

The conversion is ONNX Runtime's own (``onnxruntime.transformers.float16``). The result is meant for the
CUDA / TensorRT execution providers; ``fp16_agreement`` checks it where it can run (the CPU provider
lacks half-precision kernels for some ops, in which case the check reports that it could not run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from holevision.export.gate_images import GateImages
from holevision.export.parity import OrtModel, agreement_between, holes_from_probabilities

log = logging.getLogger(__name__)

# Ops kept in float32: reductions and normalizations whose range or precision matters most in half.
KEEP_FLOAT_OPS = ("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt", "Resize", "Erf")


def convert_fp16(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Write a half-precision copy of ``fp32_path`` with the same inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(fp32_path))
    half = convert_float_to_float16(model, keep_io_types=True,
                                    op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(KEEP_FLOAT_OPS))
    _sort_topologically(half.graph)
    del half.graph.value_info[:]  # stale type hints from before the conversion; shapes are re-inferred
    out_path = Path(out_path)
    onnx.save(half, str(out_path))
    onnx.checker.check_model(str(out_path), full_check=True)
    return out_path


def _sort_topologically(graph) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs (the converter
    appends its Cast nodes at the end)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        still = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                still.append(node)
        if len(still) == len(pending):
            names = ", ".join(n.name for n in still[:5])
            raise ValueError(f"fp16 graph has a cycle or a missing input around: {names}")
        pending = still
    del graph.node[:]
    graph.node.extend(ordered)


@dataclass
class Fp16Report:
    ran: bool
    detail: str
    max_abs_prob_diff: float = float("nan")
    hole_f1_vs_fp32: float = float("nan")

    def as_dict(self) -> dict:
        return {"ran": self.ran, "detail": self.detail, "max_abs_prob_diff": self.max_abs_prob_diff,
                "hole_f1_vs_fp32": self.hole_f1_vs_fp32}


def fp16_agreement(fp16_path: str | Path, fp32_path: str | Path, images: GateImages, *, hole_class: int = 1,
                   threshold: float = 0.5, min_area_px: float = 6.0) -> Fp16Report:
    """fp16 vs fp32 on the CPU provider: max probability difference and hole F1 (informational)."""
    try:
        half = OrtModel(fp16_path)
        full = OrtModel(fp32_path)
        diff = 0.0
        holes16, holes32 = [], []
        for image in images.images:
            p16 = half.run(image)["probs"][0, hole_class]
            p32 = full.run(image)["probs"][0, hole_class]
            diff = max(diff, float(np.max(np.abs(p16.astype(np.float32) - p32))))
            holes16.append(holes_from_probabilities(p16, threshold, min_area_px))
            holes32.append(holes_from_probabilities(p32, threshold, min_area_px))
    except Exception as exc:  # noqa: BLE001 - the CPU provider may lack fp16 kernels; report, do not fail
        return Fp16Report(False, f"could not run on ONNX Runtime CPU: {type(exc).__name__}: {exc}"[:300])
    f1 = agreement_between(holes16, holes32).f1
    return Fp16Report(True, f"ONNX Runtime CPU, {len(images)} images", diff, f1)
