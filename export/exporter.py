"""Export a trained segmenter into a model bundle, every file behind its gate.

1. ONNX fp32 (uint8 BGR NHWC in, normalization inside, RoPE baked) -> parity gate vs torch (always).
2. Optional INT8 (static QDQ, calibration images) -> task-metric gate; not written if it fails.
3. Optional FP16 ONNX (for GPUs); its agreement with fp32 is recorded where the CPU can run it.
4. Optional TensorRT plans (on a machine with TensorRT and a GPU).
5. Optional quality figures of the written ONNX files on labeled sets (hole F1, center error vs truth).
6. manifest.json with the gate figures and provenance; the folder is swapped into place at the end.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from holevision.export.bundle_writer import build_manifest, publish_bundle, staging_folder
from holevision.export.gate_images import GateImages
from holevision.export.parity import ParityReport, check_parity, require
from holevision.runtime.bundle import Manifest, PostprocessSpec

log = logging.getLogger(__name__)


@dataclass
class ExportOptions:
    height: int = 512
    width: int = 640
    name: str | None = None           # bundle name; default "<model>-<H>x<W>"
    int8: bool = False
    fp16: bool = False
    tensorrt: bool = False
    opset: int = 18
    postprocess: PostprocessSpec = field(default_factory=PostprocessSpec)
    reduce_range: bool | None = None  # INT8: None = decide from the CPU's VNNI support
    calibration_method: str = "minmax"
    max_bundle_mb: float | None = None  # size budget: optional files (fp16, then int8) are left out to meet it


# Optional files in the order they are left out when a bundle is over its size budget.
OPTIONAL_FILES = ("model.fp16.onnx", "model.int8.onnx")


def apply_size_budget(folder: Path, max_mb: float) -> list[str]:
    """Delete optional model files from ``folder`` until it fits ``max_mb`` (10^6 bytes); return their names."""
    def total() -> int:
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())

    left_out = []
    for name in OPTIONAL_FILES:
        if total() <= max_mb * 1e6:
            break
        if (folder / name).exists():
            (folder / name).unlink()
            left_out.append(name)
    if total() > max_mb * 1e6:
        raise ValueError(f"bundle is {total() / 1e6:.1f} MB with only its required files; the budget is "
                         f"{max_mb} MB (a smaller model or a larger --max-mb is needed)")
    return left_out


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    parity: ParityReport
    int8: object | None = None        # quantize.Int8Report
    fp16: object | None = None        # fp16.Fp16Report
    plans: list = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def hole_class_index(classes) -> int:
    classes = list(classes)
    if "hole" not in classes:
        raise ValueError(f"the model's classes {classes} have no 'hole' class; the gates measure holes")
    return classes.index("hole")


def export_bundle(model, out_dir: str | Path, gate_images: GateImages, *, options: ExportOptions = ExportOptions(),
                  calibration_images: list[np.ndarray] | None = None, provenance: dict | None = None,
                  quality_sets: dict[str, GateImages] | None = None, report=print) -> ExportResult:
    """Write a verified bundle for ``model`` to ``out_dir``; raise GateError if fp32 parity fails."""
    from holevision.export.models import count_parameters, estimate_gflops
    from holevision.export.onnx_export import export_onnx

    hole_class = hole_class_index(model.classes)
    post = options.postprocess
    gate_kwargs = dict(hole_class=hole_class, threshold=post.threshold, min_area_px=post.min_area_px)
    out_dir = Path(out_dir)
    staging = staging_folder(out_dir)
    messages: list[str] = []

    def say(text: str) -> None:
        messages.append(text)
        report(text)

    try:
        exported = export_onnx(model, staging / "model.onnx", options.height, options.width, opset=options.opset)
        parity = check_parity(model, exported.path, gate_images, **gate_kwargs)
        say(parity.summary())
        require(parity)
        metrics: dict = {"gate_images": {"source": gate_images.source, "count": len(gate_images),
                                         "labeled": gate_images.labeled},
                         "parity_fp32": parity.as_dict()}
        if parity.truth is not None:
            metrics["fp32"] = parity.truth.as_dict()

        int8_report = fp16_report = None
        if options.int8:
            from holevision.export.quantize import QuantizeSettings, quantize_with_gate

            if not calibration_images:
                raise ValueError("--int8 needs calibration images (--calib DIR)")
            settings = QuantizeSettings(reduce_range=options.reduce_range,
                                        calibration_method=options.calibration_method)
            int8_report = quantize_with_gate(exported.path, staging / "model.int8.onnx", calibration_images,
                                             gate_images, settings, **gate_kwargs)
            say(int8_report.summary())
            metrics["int8"] = int8_report.as_dict()
        if options.fp16:
            from holevision.export.fp16 import convert_fp16, fp16_agreement

            convert_fp16(exported.path, staging / "model.fp16.onnx")
            fp16_report = fp16_agreement(staging / "model.fp16.onnx", exported.path, gate_images, **gate_kwargs)
            say(f"fp16: {fp16_report.detail}; max |prob diff| vs fp32 {fp16_report.max_abs_prob_diff:.3g}, "
                f"hole F1 vs fp32 {fp16_report.hole_f1_vs_fp32:.4f}")
            metrics["fp16"] = fp16_report.as_dict()
        plans = []
        if options.tensorrt:
            from holevision.export.tensorrt_build import build_plan

            plans.append(build_plan(exported.path, staging, precision="fp32"))
            if (staging / "model.int8.onnx").exists():
                plans.append(build_plan(staging / "model.int8.onnx", staging, precision="int8"))
            for plan in plans:
                say(f"tensorrt: built {plan.path.name} (TensorRT {plan.tensorrt}, sm{plan.compute_capability})")
            metrics["tensorrt"] = [{"file": p.path.name, "precision": p.precision, "tensorrt": p.tensorrt,
                                    "compute_capability": p.compute_capability} for p in plans]

        if quality_sets:
            from holevision.export.quality import quality_figures

            files = {p: staging / f for p, f in (("fp32", "model.onnx"), ("int8", "model.int8.onnx"))
                     if (staging / f).exists()}
            metrics["quality"] = {}
            for set_name, images in quality_sets.items():
                figures = quality_figures(files, images, **gate_kwargs)
                metrics["quality"][set_name] = figures
                say(f"quality {set_name} ({len(images)} images, centers before refinement): " + "; ".join(
                    f"{p} F1 {figures[p]['f1']:.4f}, center RMS {figures[p]['center_rms_px']:.3f} px" for p in files))

        if options.max_bundle_mb is not None:
            left_out = apply_size_budget(staging, options.max_bundle_mb)
            metrics["size_budget"] = {"max_mb": options.max_bundle_mb, "left_out": left_out}
            for file in left_out:
                say(f"size budget {options.max_bundle_mb} MB: {file} left out of the bundle "
                    f"(its gate figures stay in the manifest)")

        name = options.name or f"{getattr(model, 'name', 'model')}-{options.height}x{options.width}"
        manifest = build_manifest(model, name=name, height=options.height, width=options.width,
                                  output_names=exported.output_names, parameters=count_parameters(model),
                                  gflops=estimate_gflops(model, options.height, options.width),
                                  metrics=metrics, provenance=provenance, postprocess=post)
        written = publish_bundle(staging, out_dir, manifest)
        say(f"bundle written: {out_dir} ({', '.join(sorted(written.files))})")
        return ExportResult(out_dir, written, parity, int8_report, fp16_report, plans, messages)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
