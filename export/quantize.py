"""INT8: static QDQ quantization with calibration images, and the task-metric gate that guards it.

Conv / MatMul / Gemm get int8 weights (per output channel, symmetric) and uint8 activations calibrated on
real images; LayerNormalization, Softmax and everything else stay float, and so does the classifier
layer that produces the logits (the last Conv / MatMul before each graph output): 8-bit logits would put
quantization steps right where the hole threshold cuts. Where the CPU has no VNNI
(int8 dot-product instructions), weights use 7 bits (``reduce_range``) to avoid the saturation of the
older u8 x s8 multiply-add path.

Gate: on the gate images, hole F1 may drop by at most ``MAX_F1_DROP`` and the matched center error may
grow by at most ``MAX_CENTER_INCREASE_PX`` compared with fp32 (against the ground truth when the images
are labeled, otherwise against the fp32 model's own holes). A model that fails is not written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from holevision.export.gate_images import GateImages
from holevision.export.gate_metrics import HoleAgreement
from holevision.export.parity import (ImageHoles, OrtModel, agreement_between, agreement_with_truth,
                                      holes_from_probabilities)

log = logging.getLogger(__name__)

MAX_F1_DROP = 0.005
MAX_CENTER_INCREASE_PX = 0.05
QUANTIZED_OP_TYPES = ("Conv", "MatMul", "Gemm")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")  # x86 VNNI / AMX, Arm dot product


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """True when the CPU has int8 dot-product instructions (from /proc/cpuinfo; False if unknown)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("flags", "features")):
            flags.update(line.split(":", 1)[-1].split())
    return any(flag in flags for flag in VNNI_FLAGS)


@dataclass(frozen=True)
class QuantizeSettings:
    per_channel: bool = True
    reduce_range: bool | None = None          # None: decided from the CPU (no VNNI -> True)
    calibration_method: str = "minmax"        # minmax | entropy | percentile
    op_types: tuple[str, ...] = QUANTIZED_OP_TYPES
    keep_output_layers_float: bool = True     # the layer(s) producing the graph outputs stay float

    def resolved_reduce_range(self) -> bool:
        return (not cpu_has_vnni()) if self.reduce_range is None else self.reduce_range


def output_layers(graph, op_types=QUANTIZED_OP_TYPES) -> list[str]:
    """Names of the quantizable nodes nearest each graph output (walking back through resizes, slices,
    softmax...): the layers that produce the logits."""
    producers = {output: node for node in graph.graph.node for output in node.output}
    found, seen = [], set()
    frontier = [o.name for o in graph.graph.output]
    while frontier:
        name = frontier.pop()
        node = producers.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in op_types:
            found.append(node.name)
        else:
            frontier.extend(i for i in node.input if i)
    return sorted(found)


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration_images: Sequence[np.ndarray],
                  settings: QuantizeSettings = QuantizeSettings()) -> Path:
    """Write a static QDQ INT8 model calibrated on ``calibration_images`` (uint8 BGR at the export size)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if not len(calibration_images):
        raise ValueError("INT8 quantization needs calibration images (--calib DIR); got none")
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if settings.calibration_method not in methods:
        raise ValueError(f"calibration_method {settings.calibration_method!r} is not one of {sorted(methods)}")
    input_name = OrtModel(fp32_path).input_name

    class ImageReader(CalibrationDataReader):
        def __init__(self):
            self._images = iter(calibration_images)

        def get_next(self):
            image = next(self._images, None)
            return None if image is None else {input_name: np.ascontiguousarray(image[None])}

    import onnx

    excluded = output_layers(onnx.load(str(fp32_path)), settings.op_types) if settings.keep_output_layers_float else []
    out_path = Path(out_path)
    root = logging.getLogger()
    hint = _DropPreprocessHint()
    root.addFilter(hint)  # the exporter already folded shapes; ORT's "consider pre-processing" hint is noise
    try:
        quantize_static(str(fp32_path), str(out_path), ImageReader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=settings.per_channel, reduce_range=settings.resolved_reduce_range(),
                        op_types_to_quantize=list(settings.op_types), nodes_to_exclude=excluded,
                        calibrate_method=methods[settings.calibration_method],
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    finally:
        root.removeFilter(hint)
    return out_path


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()


@dataclass
class Int8Report:
    """INT8 vs fp32 on the gate images."""

    reference: str                      # "ground truth" or "fp32 holes"
    image_count: int
    fp32: HoleAgreement
    int8: HoleAgreement
    max_abs_prob_diff: float
    settings: dict = field(default_factory=dict)
    int8_vs_fp32: HoleAgreement | None = None   # int8 holes against fp32 holes (informational)
    max_f1_drop: float = MAX_F1_DROP
    max_center_increase_px: float = MAX_CENTER_INCREASE_PX

    @property
    def f1_drop(self) -> float:
        return self.fp32.f1 - self.int8.f1

    @property
    def center_increase_px(self) -> float:
        return self.int8.center_rms_px - self.fp32.center_rms_px

    @property
    def problems(self) -> list[str]:
        problems = []
        if self.f1_drop > self.max_f1_drop:
            problems.append(f"hole F1 drops by {self.f1_drop:.4f} (fp32 {self.fp32.f1:.4f} -> int8 "
                            f"{self.int8.f1:.4f}); limit {self.max_f1_drop}")
        if self.center_increase_px > self.max_center_increase_px:
            problems.append(f"center error RMS grows by {self.center_increase_px:.3f} px (fp32 "
                            f"{self.fp32.center_rms_px:.3f} -> int8 {self.int8.center_rms_px:.3f}); "
                            f"limit {self.max_center_increase_px} px")
        if self.image_count == 0:
            problems.append("no gate images")
        return problems

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL (INT8 model not written)"
        lines = [f"int8 gate {verdict}: {self.image_count} images, reference = {self.reference}",
                 f"  fp32: F1 {self.fp32.f1:.4f}, center RMS {self.fp32.center_rms_px:.3f} px",
                 f"  int8: F1 {self.int8.f1:.4f}, center RMS {self.int8.center_rms_px:.3f} px, "
                 f"max |prob diff| vs fp32 {self.max_abs_prob_diff:.3g}",
                 f"  F1 drop {self.f1_drop:+.4f} (limit {self.max_f1_drop}), center increase "
                 f"{self.center_increase_px:+.3f} px (limit {self.max_center_increase_px})"]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"passed": self.passed, "reference": self.reference, "images": self.image_count,
                "fp32": self.fp32.as_dict(), "int8": self.int8.as_dict(),
                "f1_drop": round(self.f1_drop, 6), "center_increase_px": round(self.center_increase_px, 6),
                "max_abs_prob_diff": float(self.max_abs_prob_diff),
                "int8_vs_fp32": self.int8_vs_fp32.as_dict() if self.int8_vs_fp32 is not None else None,
                "limits": {"max_f1_drop": self.max_f1_drop, "max_center_increase_px": self.max_center_increase_px},
                "settings": self.settings}


def int8_gate(int8_path: str | Path, fp32_path: str | Path, images: GateImages, *, hole_class: int = 1,
              threshold: float = 0.5, min_area_px: float = 6.0, settings: dict | None = None) -> Int8Report:
    """Compare ``int8_path`` with ``fp32_path`` on ``images`` by the task metric (holes, centers)."""
    from tqdm import tqdm

    fp32, int8 = OrtModel(fp32_path), OrtModel(int8_path)
    fp32_holes: list[ImageHoles] = []
    int8_holes: list[ImageHoles] = []
    prob_diff = 0.0
    for image in tqdm(images.images, desc="int8 gate", unit="img", disable=len(images) < 20, leave=False):
        p32 = fp32.run(image)["probs"][0, hole_class]
        p8 = int8.run(image)["probs"][0, hole_class]
        prob_diff = max(prob_diff, float(np.max(np.abs(p32 - p8))))
        fp32_holes.append(holes_from_probabilities(p32, threshold, min_area_px))
        int8_holes.append(holes_from_probabilities(p8, threshold, min_area_px))
    if images.labeled:
        reference = "ground truth"
        fp32_agreement = agreement_with_truth(fp32_holes, images, min_area_px)
        int8_agreement = agreement_with_truth(int8_holes, images, min_area_px)
    else:
        reference = "fp32 holes"
        fp32_agreement = agreement_between(fp32_holes, fp32_holes)
        int8_agreement = agreement_between(int8_holes, fp32_holes)
    return Int8Report(reference, len(images), fp32_agreement, int8_agreement, prob_diff, settings or {},
                      int8_vs_fp32=agreement_between(int8_holes, fp32_holes))


def quantize_with_gate(fp32_path: str | Path, out_path: str | Path, calibration_images: Sequence[np.ndarray],
                       gate_images: GateImages, settings: QuantizeSettings = QuantizeSettings(), *,
                       hole_class: int = 1, threshold: float = 0.5, min_area_px: float = 6.0) -> Int8Report:
    """Quantize, gate, and move the INT8 file to ``out_path`` only when the gate passes."""
    out_path = Path(out_path)
    staging = out_path.with_name(out_path.name + ".staging")
    try:
        quantize_int8(fp32_path, staging, calibration_images, settings)
        report = int8_gate(staging, fp32_path, gate_images, hole_class=hole_class, threshold=threshold,
                           min_area_px=min_area_px, settings={
                               "per_channel": settings.per_channel,
                               "reduce_range": settings.resolved_reduce_range(),
                               "cpu_has_vnni": cpu_has_vnni(),
                               "calibration_method": settings.calibration_method,
                               "calibration_images": len(calibration_images),
                               "quantized_op_types": list(settings.op_types)})
        if report.passed:
            os.replace(staging, out_path)
        return report
    finally:
        if staging.exists():
            staging.unlink()
        for leftover in out_path.parent.glob(out_path.name + ".staging*"):
            leftover.unlink()
