"""`holevision synth`: render a synthetic dataset of parts with holes (images, masks, COCO labels)."""

from __future__ import annotations

import argparse

EXAMPLES = """\
  holevision synth --out data/train --count 2000 --seed 1 --style mixed
  holevision synth --out /tmp/s --count 200 --seed 1 --style mixed --preview
  holevision synth --out data/cad --count 500 --seed 7 --style cad --size 1280x1024
  holevision synth --out data/squares --count 2000 --seed 8 --size 320x256 --squares   + chessboards, square labels
  holevision data check data/train              # then check what was written"""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 640x512, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"--size must be at least 32x32, got {text!r}")
    return w, h


def register(registry) -> None:
    p = registry.command(
        "synth", help="render synthetic parts with holes: images, instance masks, COCO labels with exact GT",
        description="Render synthetic parts with holes. Writes images/NNNNNN.png, masks/NNNNNN.png "
                    "(uint16 instance ids), annotations.json (COCO instance segmentation plus exact hole "
                    "center/axes/angle, kind, visibility, and per image the part's hole design and its "
                    "missing holes) and optionally preview.png. Same arguments -> identical files.",
        examples=EXAMPLES)
    p.add_argument("--out", required=True, help="output folder (created; files of an earlier run there are replaced)")
    p.add_argument("--count", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="seed; image i uses a seed derived from (seed, i)")
    p.add_argument("--size", type=_size, default=(640, 512), help="WIDTHxHEIGHT (default 640x512)")
    p.add_argument("--style", choices=("photo", "cad", "mixed"), default="mixed",
                   help="photo-like metal parts, CAD screenshots, or a mix (default, about 30%% CAD)")
    p.add_argument("--squares", action="store_true",
                   help="photo-style scenes also get square look-alikes (a calibration chessboard lying in the "
                        "cell, dark square labels and pockets) as hard negatives; the rest of each scene is "
                        "the one rendered without them")
    p.add_argument("--preview", action="store_true", help="also write preview.png, a contact sheet with GT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.export.synth import write_synthetic_dataset

    width, height = args.size
    summary = write_synthetic_dataset(args.out, count=args.count, seed=args.seed, width=width, height=height,
                                      style=args.style, squares=args.squares, preview=args.preview,
                                      progress=not args.no_progress)
    print(f"{args.out}: {summary['images']} images, {summary['holes']} holes "
          f"({summary['missing']} designed holes left undrilled), {summary['seconds']:.1f} s")
    return 0
