"""`holevision bench pipeline`: non-model time per frame and free-run throughput vs model latency."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision bench pipeline                          1280x1024, 20 holes, 50 ms stand-in model
  holevision bench pipeline --model default          the packaged model instead of the stand-in
  holevision bench pipeline --model-ms 20 --json bench_pipeline.json
"""


def register(registry) -> None:
    registry.group("bench", help="measure speed: model, detect, pipeline", examples="  holevision bench pipeline")
    p = registry.command("pipeline", group="bench", examples=EXAMPLES,
                         help="time the service's own work per frame (capture, extraction, geometry, journal, "
                              "publish) and free-run throughput")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=1024)
    p.add_argument("--holes", type=int, default=20, help="holes per synthetic frame (default 20)")
    p.add_argument("--frames", type=int, default=40, help="frames for the per-stage figures (default 40)")
    p.add_argument("--model-ms", type=float, default=50.0, help="latency of the stand-in model (default 50 ms)")
    p.add_argument("--model", default=None, metavar="BUNDLE", help="run a real bundle ('default' or a folder)")
    p.add_argument("--seconds", type=float, default=5.0, help="free-run measurement time (default 5 s)")
    p.add_argument("--threads", type=int, default=0, help="inference threads for --model (default: all cores)")
    p.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.benchmarks.pipeline_bench import bench_pipeline, format_table

    if args.frames < 2 or args.holes < 1 or args.model_ms < 0 or args.seconds <= 0:
        raise ValueError("--frames must be >= 2, --holes >= 1, --model-ms >= 0 and --seconds > 0")
    result = bench_pipeline(width=args.width, height=args.height, holes=args.holes, frames=args.frames,
                            model_ms=args.model_ms, bundle=args.model, throughput_s=args.seconds,
                            threads=args.threads)
    print(format_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        print(f"figures written to {args.json}")
    return 0
