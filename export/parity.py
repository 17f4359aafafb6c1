"""The parity gate: the exported ONNX graph must compute what the trained torch model computes.

On every gate image, torch (the trained model in eval mode, uint8 BGR in, nothing baked) and ONNX Runtime
(the exported file) must agree on the logits to ``LOGIT_TOLERANCE`` (max absolute difference) and on the
holes extracted from their probabilities (hole F1 between the two lists exactly 1.0). ``require`` turns a
failed report into a ``GateError`` whose message says what differed and by how much.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from holevision.export.gate_images import GateImages
from holevision.export.gate_metrics import HoleAgreement, hole_agreement, truth_agreement

LOGIT_TOLERANCE = 1e-3


class GateError(ValueError):
    """An exported model failed one of its gates; the message is the report."""


@dataclass
class ImageHoles:
    """Holes found in one image: centers (K, 2) u, v px and diameters (K,) px."""

    centers: np.ndarray
    diameters: np.ndarray


class OrtModel:
    """One ONNX file in an ONNX Runtime CPU session; ``run(image_bgr)`` -> {output name: array}."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, image_bgr: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(image_bgr[None])})
        return dict(zip(self.output_names, outputs))


def holes_from_probabilities(prob_hole: np.ndarray, threshold: float = 0.5, min_area_px: float = 6.0) -> ImageHoles:
    """The runtime's own hole extraction (mask only, no subpixel refinement) on one probability map."""
    from holevision.runtime.holes import extract_holes

    holes = extract_holes(np.ascontiguousarray(prob_hole, dtype=np.float32), None, threshold=threshold,
                          min_area_px=min_area_px, refine=False)
    return ImageHoles(holes.centers.copy(), holes.axes.mean(axis=1) if len(holes) else np.zeros(0))


def agreement_between(preds: Sequence[ImageHoles], refs: Sequence[ImageHoles]) -> HoleAgreement:
    return hole_agreement([p.centers for p in preds], [r.centers for r in refs], [r.diameters for r in refs])


def agreement_with_truth(preds: Sequence[ImageHoles], images: GateImages, min_area_px: float = 0.0) -> HoleAgreement:
    """``preds`` vs the labels of ``images``, scored as ``holevision eval`` scores (see ``truth_agreement``)."""
    if not images.labeled:
        raise ValueError(f"{images.source}: no ground-truth holes to compare with")
    return truth_agreement([p.centers for p in preds], [p.diameters for p in preds], images.truth, min_area_px)


@dataclass
class ParityReport:
    """torch vs ONNX Runtime on the gate images."""

    onnx_path: str
    image_count: int
    max_abs_logit_diff: float
    max_abs_prob_diff: float
    holes: HoleAgreement                          # ONNX holes (pred) vs torch holes (reference)
    logit_tolerance: float = LOGIT_TOLERANCE
    onnx_holes: list[ImageHoles] = field(default_factory=list, repr=False)
    truth: HoleAgreement | None = None            # ONNX holes vs ground truth, when the images are labeled

    @property
    def problems(self) -> list[str]:
        problems = []
        if not np.isfinite(self.max_abs_logit_diff) or self.max_abs_logit_diff > self.logit_tolerance:
            problems.append(f"max |logit torch - logit onnx| = {self.max_abs_logit_diff:.3g} "
                            f"> {self.logit_tolerance:g}")
        if self.holes.f1 < 1.0:
            problems.append(f"hole lists differ: F1 torch vs onnx = {self.holes.f1:.4f} "
                            f"({self.holes.false_positives} only in onnx, {self.holes.false_negatives} only in torch)")
        if self.image_count == 0:
            problems.append("no gate images")
        return problems

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"parity gate {verdict}: {self.onnx_path} vs torch on {self.image_count} images",
                 f"  max |logit diff| {self.max_abs_logit_diff:.3g} (limit {self.logit_tolerance:g}), "
                 f"max |prob diff| {self.max_abs_prob_diff:.3g}",
                 f"  holes torch vs onnx: F1 {self.holes.f1:.4f}, {self.holes.true_positives} matched, "
                 f"center diff RMS {self.holes.center_rms_px:.4f} px"]
        if self.truth is not None:
            lines.append(f"  onnx vs ground truth: F1 {self.truth.f1:.4f}, center error RMS "
                         f"{self.truth.center_rms_px:.3f} px")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        out = {"passed": self.passed, "images": self.image_count,
               "max_abs_logit_diff": float(self.max_abs_logit_diff),
               "max_abs_prob_diff": float(self.max_abs_prob_diff),
               "logit_tolerance": self.logit_tolerance, "holes_torch_vs_onnx": self.holes.as_dict()}
        if self.truth is not None:
            out["onnx_vs_truth"] = self.truth.as_dict()
        return out


def check_parity(model, onnx_path: str | Path, images: GateImages, *, hole_class: int = 1,
                 threshold: float = 0.5, min_area_px: float = 6.0,
                 logit_tolerance: float = LOGIT_TOLERANCE) -> ParityReport:
    """Run ``model`` (the trained torch segmenter) and ``onnx_path`` on ``images`` and compare them."""
    import torch
    from tqdm import tqdm

    from holevision.export.onnx_export import CameraInputModel

    reference = CameraInputModel(copy.deepcopy(model).eval()).eval()
    session = OrtModel(onnx_path)
    if "logits" not in session.output_names or "probs" not in session.output_names:
        raise GateError(f"{onnx_path}: graph outputs {session.output_names} lack 'logits' and 'probs'")
    logit_diff = prob_diff = 0.0
    torch_holes, onnx_holes = [], []
    for image in tqdm(images.images, desc="parity torch vs onnx", unit="img", disable=len(images) < 20, leave=False):
        with torch.no_grad():
            torch_out = reference(torch.from_numpy(np.ascontiguousarray(image[None])))
        torch_logits, torch_probs = torch_out[0].numpy(), torch_out[-1].numpy()
        onnx_out = session.run(image)
        if onnx_out["logits"].shape != torch_logits.shape:
            raise GateError(f"{onnx_path}: logits shape {onnx_out['logits'].shape} != torch {torch_logits.shape}")
        logit_diff = max(logit_diff, float(np.max(np.abs(onnx_out["logits"] - torch_logits))))
        prob_diff = max(prob_diff, float(np.max(np.abs(onnx_out["probs"] - torch_probs))))
        torch_holes.append(holes_from_probabilities(torch_probs[0, hole_class], threshold, min_area_px))
        onnx_holes.append(holes_from_probabilities(onnx_out["probs"][0, hole_class], threshold, min_area_px))
    report = ParityReport(str(onnx_path), len(images), logit_diff, prob_diff,
                          agreement_between(onnx_holes, torch_holes), logit_tolerance, onnx_holes)
    if images.labeled:
        report.truth = agreement_with_truth(onnx_holes, images, min_area_px)
    return report


def require(report) -> None:
    """Raise GateError with the report's summary when it did not pass."""
    if not report.passed:
        raise GateError(report.summary())
