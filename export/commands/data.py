"""`holevision data check DIR`: read a dataset in any supported format and report every problem."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    registry.group("data", help="inspect labelled datasets (COCO, YOLO-seg, mask folders, synthetic)",
                   examples="  holevision data check data/train")
    p = registry.command(
        "check", group="data",
        help="count images and holes, show class and hole-size histograms, list every problem",
        description="Read a dataset (COCO instance-segmentation JSON from CVAT / Labelme / Roboflow, YOLO-seg "
                    "txt, image + mask PNG folders, or `holevision synth` output) and report counts, the class "
                    "histogram, the hole-size histogram and every problem as `file: problem` lines. Exit status "
                    "1 when there is any problem.",
        examples="  holevision data check data/train\n"
                 "  holevision data check export/annotations.json      # a COCO file\n"
                 "  holevision data check roboflow-yolo/                # images/ + labels/ + data.yaml")
    p.add_argument("path", help="dataset folder or COCO JSON file")
    p.add_argument("--max-problems", type=int, default=200, help="print at most this many problem lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.export.datasets import check_dataset

    report = check_dataset(args.path)
    print(report.format(max_problems=args.max_problems))
    return 1 if report.problems else 0
