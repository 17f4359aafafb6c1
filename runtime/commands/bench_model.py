"""`holevision bench model [BUNDLE]`: median latency per frame (fp32, INT8) and GFLOP/s vs a matmul peak."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision bench model                                 the packaged default bundle
  holevision bench model bundles/nano --json bench.json  also write the figures as JSON
  holevision bench model bundles/nano --threads 1        one core
"""


def register(registry) -> None:
    registry.group("bench", help="benchmarks: print a table of timings and write JSON (never pass/fail)",
                   examples="  holevision bench model")
    p = registry.command("model", group="bench", examples=EXAMPLES,
                         help="time a bundle's ONNX models on this CPU (median ms/frame, GFLOP/s, matmul peak)")
    p.add_argument("bundle", nargs="?", default="default", help="bundle folder (default: the packaged default)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (default: all CPUs)")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames first (default: 5)")
    p.add_argument("--repeats", type=int, default=30, help="timed frames per model (default: 30)")
    p.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.benchmarks.model_bench import bench_model, format_table
    from holevision.runtime.cli import require

    require("onnxruntime", "runtime")
    if args.repeats < 1 or args.warmup < 0:
        raise ValueError("--repeats must be >= 1 and --warmup >= 0")
    result = bench_model(None if args.bundle == "default" else args.bundle, threads=args.threads or None,
                         warmup=args.warmup, repeats=args.repeats)
    print(format_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
        print(f"wrote {args.json}")
    return 0
