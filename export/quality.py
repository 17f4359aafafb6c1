"""Quality of the exported files on labeled sets: hole F1 and center error vs ground truth.

Centers come from the mask alone (no subpixel refinement), so the figures measure the model, not the
edge fit. They are scored as ``holevision eval`` scores (tiny labelled holes ignored, center errors of
exactly labelled holes only): for images of the export size they equal ``holevision eval --model BUNDLE
--data DIR --no-verifier --no-refine``. ``holevision export --eval NAME=DIR`` stores them in the
manifest's ``metrics.quality``.
"""

from __future__ import annotations

from pathlib import Path

from holevision.export.gate_images import GateImages
from holevision.export.gate_metrics import HoleAgreement
from holevision.export.parity import OrtModel, agreement_with_truth, holes_from_probabilities


def onnx_vs_truth(onnx_path: str | Path, images: GateImages, *, hole_class: int = 1, threshold: float = 0.5,
                  min_area_px: float = 6.0, label: str = "") -> HoleAgreement:
    """Agreement of one ONNX file's holes with the ground truth of a labeled image set."""
    from tqdm import tqdm

    if not images.labeled:
        raise ValueError(f"{images.source}: quality figures need a labeled dataset (ground-truth holes)")
    session = OrtModel(onnx_path)
    preds = [holes_from_probabilities(session.run(image)["probs"][0, hole_class], threshold, min_area_px)
             for image in tqdm(images.images, desc=label or Path(onnx_path).name, unit="img",
                               disable=len(images) < 20, leave=False)]
    return agreement_with_truth(preds, images, min_area_px)


def quality_figures(model_files: dict[str, Path], images: GateImages, **kwargs) -> dict:
    """{'images', 'source', precision: agreement dict} for each model file (e.g. fp32, int8)."""
    out = {"images": len(images), "source": images.source}
    for precision, path in model_files.items():
        out[precision] = onnx_vs_truth(path, images, label=f"{precision} vs truth", **kwargs).as_dict()
    return out
