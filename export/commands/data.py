"""`holevision data check DIR`: read a dataset in any supported format and report every problem;
`holevision data subset DIR`: the images a model fails on, as a COCO file."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    registry.group("data", help="inspect labelled datasets (COCO, YOLO-seg, mask folders, synthetic)",
                   examples="  holevision data check data/train\n"
                            "  holevision data subset data/pool --out data/hard --missed-in data/pool_eval.json --others 2000")
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
    register_subset(registry)


def run(args: argparse.Namespace) -> int:
    from holevision.export.datasets import check_dataset

    report = check_dataset(args.path)
    print(report.format(max_problems=args.max_problems))
    return 1 if report.problems else 0


SUBSET_DESCRIPTION = """\
Write a COCO file (OUT/annotations.json) listing the images of PATH where a model misses holes, as an
`eval --per-image` report says, plus --others images drawn at random from the rest; the images stay
where they are. Train on it (`train --data OUT --init-from ...`) to spend a fine-tune on the scenes the
model gets wrong (hard-example mining) while it still sees ordinary ones."""

SUBSET_EXAMPLES = """\
  holevision synth --out data/pool --count 8000 --seed 444 --size 320x256 --style mixed
  holevision eval --model default --data data/pool --no-verifier --threshold 0.3 --per-image data/pool_eval.json
  holevision data subset data/pool --out data/hard --missed-in data/pool_eval.json --others 2000 --seed 0
  holevision train --data data/hard --val data/val --init-from default --mode full --size 256 --out runs/hard
"""


def register_subset(registry) -> None:
    p = registry.command("subset", group="data", help="the images a model misses holes on (+ random others) as a COCO file",
                         description=SUBSET_DESCRIPTION, examples=SUBSET_EXAMPLES)
    p.add_argument("path", help="the dataset the report was written for (folder or COCO JSON)")
    p.add_argument("--out", required=True, help="folder for annotations.json (created)")
    p.add_argument("--missed-in", required=True, metavar="JSON", help="an `eval --per-image` report on PATH")
    p.add_argument("--min-missed", type=int, default=1, help="an image is hard with at least this many missed holes "
                                                            "(default: 1)")
    p.add_argument("--others", type=int, default=0, help="also this many of the other images, drawn at random "
                                                         "(default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw (default: 0)")
    p.set_defaults(func=run_subset)


def run_subset(args: argparse.Namespace) -> int:
    from holevision.export.datasets import load_dataset
    from holevision.export.datasets.subset import choose_images, read_per_image, select_samples, write_subset

    rows = read_per_image(args.missed_in)
    hard, others = choose_images(rows, min_missed=args.min_missed, others=args.others, seed=args.seed)
    dataset = load_dataset(args.path)
    subset = select_samples(dataset, hard + others, source=args.missed_in)
    path = write_subset(subset, args.out, info={"subset_of": str(args.path), "missed_in": str(args.missed_in),
                                                "min_missed": args.min_missed, "hard_images": len(hard),
                                                "other_images": len(others), "seed": args.seed})
    missed = sum(row["missed"] for row in rows if row["missed"] >= args.min_missed)
    print(f"{len(hard)} of {len(rows)} images with >= {args.min_missed} missed hole(s) ({missed} holes) + "
          f"{len(others)} others -> {path}")
    return 0
