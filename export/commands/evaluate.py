"""`holevision eval`: hole-level precision / recall / F1, mask IoU, center and diameter error."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision eval --model runs/teacher --data data/test                    a training run (best.pt)
  holevision eval --model runs/nano --data data/test --json runs/nano/test_metrics.json
  holevision eval --model bundles/nano --data data/test                    an exported bundle, through the runtime
  holevision eval --model runs/nano --data data/val --sweep 0.5,0.6,0.7,0.8,0.9   pick the threshold for export --threshold
  holevision eval --model default --data data/val --flips 4 --sweep 0.85,0.9,0.95   the threshold for detect --flips 4
  holevision eval --model default --data data/test --no-verifier            what the bundle's hole verifier adds
  holevision eval --model default --data data/train --no-verifier --threshold 0.3 --per-image hard.json
      which images hold holes the network misses (then: holevision data subset --missed-in hard.json)
"""


def register(registry) -> None:
    p = registry.command("eval", help="evaluate a run or bundle on a labeled set: hole F1, IoU, center error",
                         examples=EXAMPLES)
    p.add_argument("--model", required=True, help="run folder (config.json + best.pt), bundle folder (manifest.json), or 'default' for the packaged bundle")
    p.add_argument("--data", required=True, help="labeled dataset folder")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--per-image", metavar="JSON",
                   help="also write one row per image at the threshold (image, holes_true, found, missed, "
                        "false_positives) to this JSON file: where the model fails, input to `data subset`")
    p.add_argument("--threshold", type=float,
                   help="hole probability threshold (default: a bundle's own post-processing threshold, else 0.5)")
    p.add_argument("--min-area", type=float,
                   help="smallest hole in px (default: a bundle's own post-processing setting, else 6)")
    p.add_argument("--sweep", metavar="T1,T2,...",
                   help="also report precision / recall / F1 at these thresholds (one model pass); choose the "
                        "bundle's threshold on validation images, never on the test set")
    p.add_argument("--no-refine", action="store_true",
                   help="centers from the mask only (skip the runtime's subpixel edge fit)")
    p.add_argument("--flips", type=int, default=1, choices=(1, 2, 4),
                   help="a bundle only: average 1 (default), 2 or 4 mirror views as `detect --flips` does")
    p.add_argument("--no-verifier", action="store_true",
                   help="a bundle only: skip its hole verifier (train-verifier) and report every candidate at the "
                        "threshold, to see what the verifier adds")
    p.add_argument("--min-score", type=float,
                   help="a bundle only: drop candidates its hole verifier scores below this (default: the bundle's)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="a run's best.pt (default) or last.pt")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (runs only)")
    p.set_defaults(func=run)


def parse_thresholds(text: str) -> list[float]:
    """'0.5,0.7' -> [0.5, 0.7]; each in (0, 1)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"--sweep {text!r}: expected comma-separated numbers, e.g. 0.5,0.6,0.7") from exc
    bad = [v for v in values if not 0.0 < v < 1.0]
    if not values or bad:
        raise ValueError(f"--sweep {text!r}: thresholds must be in (0, 1)")
    return values


def _cell(value, width: int, digits: int) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}s}"


def run(args: argparse.Namespace) -> int:
    from holevision.export.evaluate import evaluate_path, write_metrics

    sweep = parse_thresholds(args.sweep) if args.sweep else ()
    metrics = evaluate_path(args.model, args.data, device=args.device, threshold=args.threshold,
                            min_area_px=args.min_area, refine=not args.no_refine, sweep=sweep,
                            checkpoint=f"{args.checkpoint}.pt", flips=args.flips, verify=not args.no_verifier,
                            min_score=args.min_score, per_image=bool(args.per_image))
    rows = metrics.pop("per_image", None)
    for key in ("images", "holes_true", "holes_predicted", "threshold", "precision", "recall", "f1", "mask_iou",
                "center_error_rms_px", "center_error_p95_px", "diameter_error_mean_abs_px"):
        print(f"{key:28s} {metrics.get(key)}")
    if metrics.get("by_size"):
        print(f"\n{'diameter px':>11s} {'true':>5s} {'recall':>7s} {'found':>5s} {'precision':>9s} {'ctr rms px':>10s} "
              f"{'diam err px':>11s}")
        for row in metrics["by_size"]:
            cells = [_cell(row[key], width, digits) for key, width, digits in
                     (("recall", 7, 4), ("precision", 9, 4), ("center_error_rms_px", 10, 3),
                      ("diameter_error_mean_px", 11, 2))]
            print(f"{row['diameter_px']:>11s} {row['holes_true']:5d} {cells[0]} {row['holes_predicted']:5d} {cells[1]} "
                  f"{cells[2]} {cells[3]}")
    if sweep:
        print(f"\n{'threshold':>9s} {'precision':>9s} {'recall':>7s} {'F1':>7s} {'ctr rms px':>10s}")
        for threshold, row in metrics["sweep"].items():
            print(f"{float(threshold):9.2f} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f} "
                  f"{row['center_error_rms_px'] if row['center_error_rms_px'] is not None else '-':>10}")
    if args.json:
        write_metrics(metrics, args.json)
        print(f"wrote {args.json}")
    if args.per_image:
        write_metrics({key: metrics[key] for key in ("model", "data", "threshold", "min_area_px", "verifier")}
                      | {"images": rows}, args.per_image)
        with_miss = sum(1 for row in rows if row["missed"])
        with_false = sum(1 for row in rows if row["false_positives"])
        print(f"wrote {args.per_image}: {with_miss} of {len(rows)} images have a missed hole, "
              f"{with_false} a false one")
    return 0
