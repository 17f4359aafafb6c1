"""`holevision detect IMAGE...`: find, measure and number the holes in image files."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm")
SCHEMA_VERSION = 1

EXAMPLES = """\
  holevision detect part.png                                   table of holes (packaged default model)
  holevision detect part.png --overlay out/                    + out/part_holes.png, numbered holes
  holevision detect 'shots/*.jpg' cad/ --json holes.json       globs and folders; one JSON list
  holevision detect part.png --model runs/bundle --min-diameter 6 --threshold 0.6
"""


def register(registry) -> None:
    p = registry.command(
        "detect", examples=EXAMPLES,
        help="find, measure (subpixel) and number the holes in images; table, JSON and overlay",
        description="Find the holes in each image with a model bundle, measure each one to a fraction of "
                    "a pixel (edge fit on the full-resolution image) and number them left-to-right, "
                    "top-to-bottom. Unreadable files are reported and skipped; the exit status is 0 only "
                    "when every image was processed.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders (their images) or glob patterns")
    p.add_argument("--model", default="default", metavar="BUNDLE",
                   help="model bundle folder (default: the packaged default model)")
    p.add_argument("--json", dest="json_out", metavar="OUT",
                   help="write results as JSON to OUT ('-' = stdout): one object for one image, a list for several")
    p.add_argument("--overlay", metavar="DIR", help="write DIR/<image>_holes.png with each hole outlined and numbered")
    p.add_argument("--min-diameter", type=float, default=0.0, metavar="PX", help="drop holes smaller than this (px)")
    p.add_argument("--threshold", type=float, default=None,
                   help="hole probability threshold in (0, 1) (default: the bundle's)")
    p.add_argument("--engine", default="auto", choices=("auto", "onnxruntime", "tensorrt"),
                   help="inference engine (default: auto = TensorRT plan if one matches, else ONNX Runtime)")
    p.add_argument("--threads", type=int, default=0, help="inference threads (default 0: all cores)")
    p.add_argument("--flips", type=int, default=1, choices=(1, 2, 4),
                   help="average the model over 1 (default), 2 or 4 mirror views of each image: fewer false and "
                        "missed holes for 2x or 4x the model time (pick --threshold with eval --flips --sweep)")
    p.add_argument("--no-verifier", action="store_true",
                   help="skip the bundle's hole verifier (holevision train-verifier), if it has one: every candidate "
                        "at the threshold is reported")
    p.set_defaults(func=run)


def expand_images(patterns: list[str]) -> tuple[list[Path], list[str]]:
    """Image paths from files, folders and globs (in the order given), and problems found on the way."""
    paths: list[Path] = []
    problems: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{pattern}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif glob.has_magic(pattern):
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
            if not found:
                problems.append(f"{pattern}: no files match")
            paths.extend(found)
        else:
            paths.append(path)
    unique: list[Path] = []
    seen = set()
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique, problems


def read_image(path: Path):
    """BGR uint8 image, or raise ValueError naming the file."""
    import cv2
    import numpy as np

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{path}: not a readable image (empty, truncated or unsupported format)")
    return image


def detection_document(image: str, detection, model_name: str, model_sha256: str, decode_s: float = 0.0) -> dict:
    """The JSON document of one image's result (schema v1, hole rows as in the service result)."""
    timings = {"decode": decode_s, **detection.timings}
    return {
        "v": SCHEMA_VERSION,
        "image": image,
        "width": int(detection.width),
        "height": int(detection.height),
        "model": {"name": model_name, "sha256": model_sha256},
        "holes": detection.holes.to_rows(),
        "timings_ms": {k: round(1e3 * float(v), 3) for k, v in timings.items()},
    }


def format_table(document: dict) -> str:
    head = (f"{document['image']}  {document['width']}x{document['height']}  {len(document['holes'])} holes  "
            f"(model {document['timings_ms'].get('model', 0):.1f} ms, "
            f"extract {document['timings_ms'].get('extract', 0):.1f} ms"
            + (f", verify {document['timings_ms']['verify']:.1f} ms" if "verify" in document["timings_ms"] else "") + ")")
    lines = [head]
    if document["holes"]:
        lines.append(f"  {'id':>4} {'u':>10} {'v':>10} {'diameter':>9} {'score':>6}  note")
        for row in document["holes"]:
            note = ", ".join(n for n, on in (("cut by border", row["on_border"]), ("model outline", not row["refined"])) if on)
            lines.append(f"  {row['id']:>4} {row['u']:>10.3f} {row['v']:>10.3f} {row['diameter_px']:>9.3f} "
                         f"{row['score']:>6.3f}  {note}")
    return "\n".join(lines)


def _overlay_path(folder: Path, image: Path, used: set[str]) -> Path:
    name = f"{image.stem}_holes.png"
    k = 2
    while name in used:
        name = f"{image.stem}_{k}_holes.png"
        k += 1
    used.add(name)
    return folder / name


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.cli import require

    require("onnxruntime", "runtime")
    import cv2

    from holevision.runtime.detector import Detector
    from holevision.runtime.overlay import draw_overlay

    if args.min_diameter < 0:
        raise ValueError(f"--min-diameter must be >= 0, got {args.min_diameter}")
    paths, problems = expand_images(args.images)
    for problem in problems:
        print(f"holevision detect: {problem}", file=sys.stderr)
    if not paths:
        raise ValueError("no images to process: " + "; ".join(problems or args.images))
    detector = Detector(args.model, engine=args.engine, threads=args.threads, threshold=args.threshold,
                        min_diameter_px=args.min_diameter, keep_probability=False, flips=args.flips,
                        verify=not args.no_verifier)
    overlay_dir = Path(args.overlay) if args.overlay else None
    if overlay_dir:
        overlay_dir.mkdir(parents=True, exist_ok=True)
    documents, failed, used_names = [], len(problems), set()
    for path in paths:
        start = time.perf_counter()
        try:
            image = read_image(path)
        except ValueError as exc:
            print(f"holevision detect: skipped {exc}", file=sys.stderr)
            failed += 1
            continue
        decode_s = time.perf_counter() - start
        detection = detector.detect(image)
        document = detection_document(str(path), detection, detector.model_name, detector.model_sha256, decode_s)
        documents.append(document)
        if args.json_out != "-":
            print(format_table(document))
        if overlay_dir:
            out = _overlay_path(overlay_dir, path, used_names)
            if not cv2.imwrite(str(out), draw_overlay(image, detection.holes, title=f"{path.name}: {len(detection.holes)} holes")):
                print(f"holevision detect: could not write {out}", file=sys.stderr)
                failed += 1
    if args.json_out:
        payload = documents[0] if len(documents) == 1 and len(paths) == 1 else documents
        text = json.dumps(payload, indent=2, allow_nan=False)
        if args.json_out == "-":
            print(text)
        else:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    if failed:
        print(f"holevision detect: {len(documents)} of {len(documents) + failed} images processed", file=sys.stderr)
        return 1
    return 0
