"""`holevision bench inspect`: the QA acceptance simulation (issue 8), figures as a table and JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(registry) -> None:
    registry.group("bench", help="measure speed: model, detect, pipeline",
                   examples="  holevision bench inspect --parts 1000 --seed 1")
    p = registry.command(
        "inspect", group="bench",
        help="simulate parts with missing and off-size holes; missing-hole recall, false NG, OOT rate",
        description="Random parts (random hole layouts or grids, random placement and rotation, ~10 % with "
                    "1-3 missing holes, measurement noise, clutter detections) are inspected against their "
                    "recipes; a second set has one hole 5 % over/undersize. Prints the acceptance figures "
                    "of issue 8 and writes them as JSON.",
        examples="  holevision bench inspect --parts 1000 --seed 1\n"
                 "  holevision bench inspect --parts 300 --seed 2 --json out/bench_inspect.json")
    p.add_argument("--parts", type=int, default=1000, help="parts with ~10%% missing holes (default 1000)")
    p.add_argument("--oot-parts", type=int, default=None, help="parts with one 5%% off hole (default: --parts)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default="bench_inspect.json", metavar="FILE", help="where to write the figures")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from holevision.runtime.benchmarks.inspect_bench import run_inspect_benchmark

    if args.parts < 1:
        raise ValueError("--parts must be at least 1")
    result = run_inspect_benchmark(parts=args.parts, seed=args.seed, oot_cases=args.oot_parts, progress=True)
    rows = [
        ("missing-hole recall", f"{result.missing_recall:.4f}", f"{result.missing_found}/{result.missing_holes}", ">= 0.999"),
        ("  located exactly", f"{result.missing_recall_located:.4f}",
         f"{result.missing_located}/{result.missing_holes}", "(rest: NG + ambiguous_pose)"),
        ("false NG rate (good parts)", f"{result.false_ng_rate:.4f}", f"{result.false_ng}/{result.good_parts}", "<= 0.001"),
        ("NONE rate (good parts)", f"{result.none_rate_good:.4f}", f"{result.none_good}/{result.good_parts}", ""),
        ("defective parts judged OK", str(result.missed_ng), f"of {result.defective_parts}", "0"),
        ("present holes called missing", str(result.false_missing), "", "0"),
        ("5% diameter flagged", f"{result.oot_rate:.4f}", f"{result.oot_flagged}/{result.oot_cases}", ">= 0.99"),
        ("  holes 20-30 px", f"{result.oot_rate_small:.4f}",
         f"{result.oot_small_flagged}/{result.oot_small_cases}", ""),
        ("inspect time per part", f"{result.ms_per_part:.2f} ms", "", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"holevision bench inspect: {args.parts} parts + {result.oot_cases} off-size parts, seed {args.seed}")
    for name, value, count, target in rows:
        print(f"  {name:<{width}}  {value:>10}  {count:>12}  {target}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"figures: {path}")
    return 0
