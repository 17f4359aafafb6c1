"""`holevision bench detect`: median and p95 latency of each detection stage, frames/s, extraction cost."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision bench detect                                    packaged default model, 1920x1200, 50 holes
  holevision bench detect --model runs/bundle --size 2448x2048 --json bench_detect.json
  holevision bench detect --frames 5 --threads 2 --engine onnxruntime
"""


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 1920x1200, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"--size must be positive, got {text!r}")
    return width, height


def register(registry) -> None:
    registry.group("bench", help="measure speed: model, detect, pipeline", examples="  holevision bench detect")
    p = registry.command("detect", group="bench", examples=EXAMPLES,
                         help="time decode, preprocess, model, stitch and hole extraction on synthetic frames")
    p.add_argument("--model", default="default", metavar="BUNDLE", help="bundle folder (default: packaged)")
    p.add_argument("--size", type=_size, default=(1920, 1200), metavar="WxH", help="frame size (default 1920x1200)")
    p.add_argument("--frames", type=int, default=20, help="timed frames (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames first (default 2)")
    p.add_argument("--holes", type=int, default=50, help="holes per synthetic frame (default 50)")
    p.add_argument("--engine", default="auto", choices=("auto", "onnxruntime", "tensorrt"))
    p.add_argument("--threads", type=int, default=0, help="inference threads (default 0: all cores)")
    p.add_argument("--flips", type=int, default=1, choices=(1, 2, 4),
                   help="mirror views averaged per frame, as `detect --flips` (default 1)")
    p.add_argument("--no-verifier", action="store_true",
                   help="skip the bundle's hole verifier (its time is part of the extract stage)")
    p.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.cli import require

    require("onnxruntime", "runtime")
    from holevision.runtime.benchmarks.detect_bench import bench_detect, format_table

    if args.frames < 1 or args.warmup < 0 or args.holes < 0:
        raise ValueError("--frames must be >= 1, --warmup >= 0 and --holes >= 0")
    result = bench_detect(args.model, size=args.size, frames=args.frames, warmup=args.warmup, holes=args.holes,
                          engine=args.engine, threads=args.threads, flips=args.flips, verify=not args.no_verifier)
    print(format_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
    return 0
