"""`holevision eval`: hole-level precision / recall / F1, mask IoU, center and diameter error."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision eval --model runs/teacher --data data/test                    a training run (best.pt)
  holevision eval --model runs/nano --data data/test --json runs/nano/test_metrics.json
  holevision eval --model bundles/nano --data data/test                    an exported bundle, through the runtime
"""


def register(registry) -> None:
    p = registry.command("eval", help="evaluate a run or bundle on a labeled set: hole F1, IoU, center error",
                         examples=EXAMPLES)
    p.add_argument("--model", required=True, help="run folder (config.json + best.pt), bundle folder (manifest.json), or 'default' for the packaged bundle")
    p.add_argument("--data", required=True, help="labeled dataset folder")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--threshold", type=float,
                   help="hole probability threshold (default: a bundle's own post-processing threshold, else 0.5)")
    p.add_argument("--min-area", type=float,
                   help="smallest hole in px (default: a bundle's own post-processing setting, else 6)")
    p.add_argument("--no-refine", action="store_true",
                   help="centers from the mask only (skip the runtime's subpixel edge fit)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (runs only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.export.evaluate import evaluate_path, write_metrics

    metrics = evaluate_path(args.model, args.data, device=args.device, threshold=args.threshold,
                            min_area_px=args.min_area, refine=not args.no_refine)
    for key in ("images", "holes_true", "holes_predicted", "precision", "recall", "f1", "mask_iou",
                "center_error_rms_px", "center_error_p95_px", "diameter_error_mean_abs_px"):
        print(f"{key:28s} {metrics.get(key)}")
    if args.json:
        write_metrics(metrics, args.json)
        print(f"wrote {args.json}")
    return 0
