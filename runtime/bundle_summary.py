"""Human-readable summary of a bundle manifest (pure: Manifest in, text out)."""

from __future__ import annotations

from pathlib import Path

from holevision.runtime.bundle import Manifest


def _figure(value, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def describe_manifest(manifest: Manifest, path: str | Path | None = None) -> str:
    m = manifest
    lines = [f"bundle     {m.name}" + (f"  ({path})" if path else ""),
             f"model      {m.architecture}",
             f"size       {m.parameters / 1e6:.2f} M parameters, {m.gflops:.2f} GFLOPs at {m.input.height}x{m.input.width}",
             f"input      {m.input.dtype} {m.input.color} {m.input.layout} ({m.input.batch}, {m.input.height}, "
             f"{m.input.width}, 3); normalization inside the graph",
             f"outputs    {', '.join(m.outputs.names)}; classes {', '.join(m.outputs.classes)}; "
             f"probabilities in '{m.outputs.probabilities}'",
             f"post       threshold {m.postprocess.threshold}, min area {m.postprocess.min_area_px} px"
             + ("" if m.postprocess.verifier is None else
                f"; hole verifier {m.postprocess.verifier.file}"
                + ("" if m.postprocess.verifier.context_file is None else
                   f" + {m.postprocess.verifier.context_file} (next to the frame's other candidates)")
                + f" keeps scores >= {m.postprocess.verifier.min_score}"),
             f"tiling     {m.tiling.tile_height}x{m.tiling.tile_width} tiles, overlap {m.tiling.overlap_px} px"]
    metrics = m.metrics
    parity = metrics.get("parity_fp32")
    if parity:
        lines.append(f"parity     torch vs onnx: max |logit diff| {_figure(parity.get('max_abs_logit_diff'), '.2e')}, "
                     f"hole F1 {_figure(parity.get('holes_torch_vs_onnx', {}).get('f1'))} "
                     f"on {parity.get('images')} images")
    if metrics.get("fp32"):
        fp32 = metrics["fp32"]
        lines.append(f"fp32       vs ground truth: hole F1 {_figure(fp32.get('f1'))}, "
                     f"center RMS {_figure(fp32.get('center_rms_px'), '.3f')} px")
    if metrics.get("int8"):
        int8 = metrics["int8"]
        lines.append(f"int8       gate {'PASS' if int8.get('passed') else 'FAIL'} (reference {int8.get('reference')}): "
                     f"F1 drop {_figure(int8.get('f1_drop'), '+.4f')}, center error {_figure(int8.get('center_increase_px'), '+.3f')} px")
    for set_name, figures in (metrics.get("quality") or {}).items():
        for precision in ("fp32", "int8"):
            if isinstance(figures.get(precision), dict):
                q = figures[precision]
                lines.append(f"quality    {set_name} ({figures.get('images')} images) {precision}: hole F1 "
                             f"{_figure(q.get('f1'))}, center RMS {_figure(q.get('center_rms_px'), '.3f')} px")
    verifier = metrics.get("verifier")
    if verifier:
        before, after = verifier.get("val_without_verifier") or {}, verifier.get("val_with_verifier") or {}
        lines.append(f"verifier   val hole F1 {_figure(before.get('f1'))} without (threshold "
                     f"{verifier.get('val_threshold_without_verifier')}) -> {_figure(after.get('f1'))} with it "
                     f"(candidates >= {verifier.get('candidate_threshold')}"
                     + (f"; crop pass alone {_figure(verifier['val_with_crop_verifier'].get('f1'))}"
                        if verifier.get("val_with_crop_verifier") else "") + f"); {verifier.get('val')}")
    if metrics.get("fp16"):
        fp16 = metrics["fp16"]
        lines.append(f"fp16       {fp16.get('detail')}; hole F1 vs fp32 {_figure(fp16.get('hole_f1_vs_fp32'))}")
    budget = metrics.get("size_budget")
    if budget and budget.get("left_out"):
        lines.append(f"budget     {budget.get('max_mb')} MB: left out {', '.join(budget['left_out'])} (gate figures above)")
    prov = m.provenance
    if prov:
        git = prov.get("git") or {}
        lines.append(f"made       {prov.get('date', '-')} from {prov.get('run', '-')}, seed {prov.get('seed', '-')}, "
                     f"git {str(git.get('revision', '-'))[:12]}{' (dirty)' if git.get('dirty') else ''}")
        if prov.get("note"):
            lines.append(f"note       {prov['note']}")
    total = 0
    for name in sorted(m.files):
        size = (Path(path) / name).stat().st_size if path and (Path(path) / name).is_file() else None
        total += size or 0
        lines.append(f"file       {name:32s} {(f'{size / 1e6:8.2f} MB') if size is not None else '  missing'}  "
                     f"sha256 {m.files[name][:16]}...")
    if path:
        lines.append(f"total      {total / 1e6:.2f} MB")
    return "\n".join(lines)
