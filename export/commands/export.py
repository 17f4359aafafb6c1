"""`holevision export RUN --out BUNDLE`: ONNX (+ INT8, FP16, TensorRT) behind parity and accuracy gates."""

from __future__ import annotations

import argparse
import re
import sys

EXAMPLES = """\
  holevision export runs/nano --out bundles/nano --val data/val
        fp32 ONNX, 512x640 (HxW); fails unless ONNX Runtime matches torch on data/val
  holevision export runs/nano --out bundles/nano --size 480x640 --int8 --calib data/calib --val data/val
        + INT8 (static QDQ, calibrated on data/calib); written only if hole F1 and centers hold up
  holevision export runs/vits16 --out bundles/vits16 --fp16 --tensorrt --val data/val
        + FP16 ONNX and TensorRT plans (on the GPU machine that will run them)
  holevision export runs/nano --out bundles/nano --size 256x320 --val data/val --eval photo=data/test_photo
        + hole F1 and center error of the written files on a labeled test set, kept in the manifest
"""


def parse_size(text: str) -> tuple[int, int]:
    """'512x640' -> (512, 640) as (height, width), each a positive multiple of 32."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--size must look like HxW, e.g. 512x640; got {text!r}")
    height, width = int(match[1]), int(match[2])
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise argparse.ArgumentTypeError(f"--size {text}: height and width must be positive multiples of 32")
    return height, width


def register(registry) -> None:
    p = registry.command("export", help="export a trained run to a verified model bundle (ONNX, INT8, FP16, TensorRT)",
                         examples=EXAMPLES)
    p.add_argument("run", help="training or distillation run folder (config.json + best.pt)")
    p.add_argument("--out", required=True, help="bundle folder to write (replaced if it is a bundle)")
    p.add_argument("--size", type=parse_size, default=(512, 640), metavar="HxW",
                   help="fixed input size of the graph, multiples of 32 (default: 512x640); larger frames are tiled")
    p.add_argument("--val", help="images for the gates: a labeled dataset (gates vs ground truth) or an image "
                                 "folder (default: the run's val set, else --calib)")
    p.add_argument("--gate-images", type=int, default=32, metavar="N", help="gate on the first N images (default: 32)")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx if it passes its gate")
    p.add_argument("--calib", help="calibration images for --int8 (a folder, or a dataset with images/)")
    p.add_argument("--calib-images", type=int, default=64, metavar="N", help="calibrate on N images (default: 64)")
    p.add_argument("--calibration-method", choices=("minmax", "entropy", "percentile"), default="minmax")
    p.add_argument("--reduce-range", choices=("auto", "on", "off"), default="auto",
                   help="7-bit INT8 weights: auto = on when the CPU has no VNNI (default: auto)")
    p.add_argument("--fp16", action="store_true", help="also write model.fp16.onnx (for GPUs)")
    p.add_argument("--tensorrt", action="store_true", help="also build TensorRT plans (needs TensorRT and a GPU)")
    p.add_argument("--eval", action="append", default=[], metavar="NAME=DIR",
                   help="also record hole F1 / center error vs ground truth on this labeled set (repeatable)")
    p.add_argument("--max-mb", type=float, metavar="MB",
                   help="size budget of the bundle: optional files (fp16, then int8) are left out to meet it")
    p.add_argument("--name", help="bundle name in the manifest (default: MODEL-HxW)")
    p.add_argument("--note", help="free text stored in the manifest's provenance (e.g. 'placeholder')")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default: 18)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which weights of the run: best.pt (best validation epoch, default) or last.pt (last epoch)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="hole probability threshold the runtime uses with this bundle (post-processing default, "
                        "stored in the manifest; pick it on validation images with `holevision eval --threshold`; "
                        "default: 0.5)")
    p.add_argument("--min-area", type=float, default=6.0,
                   help="smallest hole in px the runtime reports with this bundle (default: 6)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from holevision.runtime.cli import require

    require("torch", "export")
    require("onnxruntime", "export")
    from holevision.export.bundle_writer import collect_provenance
    from holevision.export.exporter import ExportOptions, export_bundle
    from holevision.runtime.bundle import PostprocessSpec
    from holevision.export.gate_images import load_gate_images
    from holevision.export.parity import GateError
    from holevision.export.train import load_run

    height, width = args.size
    if args.int8 and not args.calib:
        raise ValueError("--int8 needs --calib DIR (calibration images)")
    if args.tensorrt:
        from holevision.export.tensorrt_build import tensorrt_available

        if not tensorrt_available():
            print("holevision: --tensorrt needs TensorRT on this machine: pip install 'holevision[tensorrt]' "
                  "(build plans on the GPU machine that runs them)", file=sys.stderr)
            return 3
    model, run_config = load_run(args.run, checkpoint=f"{args.checkpoint}.pt")
    gate_source = args.val or run_config.get("val") or args.calib
    if not gate_source:
        raise ValueError(f"{args.run}: no images for the parity gate: give --val DIR (the run has no val set)")
    gate = load_gate_images(gate_source, height, width, limit=args.gate_images)
    print(f"gate images: {len(gate)} from {gate_source} ({'labeled' if gate.labeled else 'unlabeled'})")
    calibration = None
    if args.int8:
        calibration = load_gate_images(args.calib, height, width, limit=args.calib_images).images
    quality = {}
    for item in args.eval:
        set_name, sep, folder = item.partition("=")
        if not sep or not set_name or not folder:
            raise ValueError(f"--eval {item!r}: expected NAME=DIR, e.g. photo=data/test_photo")
        quality[set_name] = load_gate_images(folder, height, width)
        if not quality[set_name].labeled:
            raise ValueError(f"--eval {item}: {folder} has no labels (needs a labeled dataset)")
    options = ExportOptions(height=height, width=width, name=args.name, int8=args.int8, fp16=args.fp16,
                            tensorrt=args.tensorrt, opset=args.opset,
                            reduce_range={"auto": None, "on": True, "off": False}[args.reduce_range],
                            calibration_method=args.calibration_method, max_bundle_mb=args.max_mb,
                            postprocess=PostprocessSpec(threshold=args.threshold, min_area_px=args.min_area))
    dataset = {"run_data": run_config.get("data") or run_config.get("images"), "val": run_config.get("val"),
               "teacher": run_config.get("teacher"), "train_size": run_config.get("size"),
               "gate_images": str(gate_source), "calibration_images": args.calib}
    provenance = collect_provenance(run=Path(args.run).resolve(), run_config=run_config,
                                    dataset={k: v for k, v in dataset.items() if v is not None},
                                    note=args.note)
    try:
        export_bundle(model, args.out, gate, options=options, calibration_images=calibration, provenance=provenance,
                      quality_sets=quality)
    except GateError as exc:
        print(f"holevision: export refused, nothing written to {args.out}:\n{exc}", file=sys.stderr)
        return 1
    return 0
