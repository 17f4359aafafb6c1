"""`holevision recipe create|from-cad|check|inspect` and `holevision inspect`: QA recipes and inspection."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

INSPECT_EXIT_CODES = {"OK": 0, "NG": 1, "NONE": 4}

RECIPE_EXAMPLES = """\
  holevision recipe create --image golden.png --out bracket.toml        from a golden part (px), then edit
  holevision recipe from-cad --csv holes.csv --out bracket.toml         from a CAD hole table (x, y, diameter)
  holevision recipe check bracket.toml                                  validate; errors name the field
  holevision inspect part.png --recipe bracket.toml --overlay out/      OK / NG / NONE per part"""

INSPECT_EXAMPLES = """\
  holevision inspect part.png --recipe bracket.toml
  holevision inspect part.png --recipe bracket.toml --overlay out/ --json out/part.json
  holevision inspect part.png --recipe bracket.toml --model bundles/student-v3
exit status: 0 OK, 1 NG, 4 NONE (part not found / too few matches), 2 error"""


def register(registry) -> None:
    registry.group("recipe", help="QA recipes: expected holes and tolerances of a part", examples=RECIPE_EXAMPLES)

    p = registry.command("create", group="recipe", help="make a recipe from a golden part's image",
                         description="Detect the holes on a golden (known good) part and write them as a recipe "
                                     "in pixels: hole 1 (left-to-right, top-to-bottom) is the origin. Edit ids, "
                                     "types and tolerances afterwards, then `holevision recipe check`.",
                         examples="  holevision recipe create --image golden.png --out bracket.toml\n"
                                  "  holevision recipe create --image golden.png --name bracket-a "
                                  "--position-tol 2 --diameter-tol 0.04 --out bracket.toml\n"
                                  "  holevision recipe create --image golden.png --config /etc/holevision/holevision.toml "
                                  "--out bracket-mm.toml   (mm)")
    p.add_argument("--image", required=True, help="image of a golden part (BGR, any format OpenCV reads)")
    p.add_argument("--model", default="default", help="model bundle folder (default: the packaged one)")
    p.add_argument("--config", default=None, metavar="TOML",
                   help="service config whose [calibration] (eye-to-hand) turns holes into mm on the work plane: "
                        "the recipe is then in mm")
    p.add_argument("--out", required=True, help="recipe file to write (.toml or .json)")
    p.add_argument("--name", default=None, help="recipe name (default: the output file's stem)")
    p.add_argument("--position-tol", type=float, default=None,
                   help="position tolerance (default 1.5 px, or 0.3 mm with --config)")
    p.add_argument("--diameter-tol", type=float, default=0.03,
                   help="diameter tolerance +/- as a fraction of each hole's diameter (default 0.03)")
    p.add_argument("--transform", choices=("rigid", "similarity", "fixed"), default="rigid",
                   help="how parts may lie: rigid (moved/rotated), similarity (+ height change), fixed (fixtured)")
    p.set_defaults(func=_create)

    p = registry.command("from-cad", group="recipe", help="make a recipe from a CAD hole table (CSV)",
                         description="CSV with a header naming x, y, diameter (optional: id, type, position_tol, "
                                     "diameter_tol, diameter_tol_minus, diameter_tol_plus). Comma, semicolon or "
                                     "tab separated.",
                         examples="  holevision recipe from-cad --csv holes.csv --out bracket.toml\n"
                                  "  holevision recipe from-cad --csv holes.csv --units mm --position-tol 0.3 "
                                  "--diameter-tol 0.05 --out bracket.toml")
    p.add_argument("--csv", required=True, help="hole table exported from CAD")
    p.add_argument("--out", required=True, help="recipe file to write (.toml or .json)")
    p.add_argument("--name", default=None, help="recipe name (default: the CSV's stem)")
    p.add_argument("--units", choices=("mm", "px"), default="mm", help="units of the table (default mm)")
    p.add_argument("--position-tol", type=float, default=0.5, help="default position tolerance (units)")
    p.add_argument("--diameter-tol", type=float, default=0.1, help="default diameter tolerance +/- (units)")
    p.add_argument("--transform", choices=("rigid", "similarity", "fixed"), default="rigid")
    p.set_defaults(func=_from_cad)

    p = registry.command("check", group="recipe", help="validate recipe files and summarize them",
                         examples="  holevision recipe check bracket.toml\n"
                                  "  holevision recipe check recipes/*.toml")
    p.add_argument("files", nargs="+", help="recipe files (.toml or .json)")
    p.set_defaults(func=_check)

    for name, group in (("inspect", "recipe"), ("inspect", None)):
        p = registry.command(name, group=group, help="inspect a part in an image against a recipe: OK / NG / NONE",
                             description="Detect the holes, fit the recipe to them (parts need not be fixtured) and "
                                         "judge each expected hole: ok, missing or out of tolerance; unexpected "
                                         "holes on the part are extra.",
                             examples=INSPECT_EXAMPLES)
        p.add_argument("image", help="image of the part")
        p.add_argument("--recipe", required=True, help="recipe file (.toml or .json)")
        p.add_argument("--model", default="default", help="model bundle folder (default: the packaged one)")
        p.add_argument("--config", default=None, metavar="TOML",
                       help="service config whose [calibration] gives mm on the work plane (needed for mm recipes)")
        p.add_argument("--overlay", default=None, metavar="DIR", help="write an overlay marking what failed here")
        p.add_argument("--json", default=None, metavar="FILE", help="write the inspection report as JSON")
        p.set_defaults(func=_inspect)


# ------------------------------------------------------------------------------------------- commands


def _create(args: argparse.Namespace) -> int:
    from holevision.runtime.inspect.recipe import recipe_from_holes, save_recipe

    import numpy as np

    from holevision.runtime.inspect.measure import hole_measurements

    image = _read_image(args.image)
    holes = _detect(image, args.model)
    units = "px"
    if args.config:
        holes, units = _to_mm(holes, args.config), "mm"
    holes = holes.numbered() if len(holes) else holes
    centers, diameters = hole_measurements(holes, units)
    usable = np.all(np.isfinite(centers), axis=1) & np.isfinite(diameters)
    if not usable.any():
        raise ValueError(f"{args.image}: no holes found on the golden part (none away from the image border)")
    position_tol = args.position_tol if args.position_tol is not None else (1.5 if units == "px" else 0.3)
    out = Path(args.out)
    recipe = recipe_from_holes(centers[usable], diameters[usable], name=args.name or out.stem, units=units,
                               position_tol=position_tol, diameter_tol_fraction=args.diameter_tol,
                               transform=args.transform, origin="none" if args.transform == "fixed" else "first",
                               description=f"from golden part {Path(args.image).name}")
    save_recipe(recipe, out)
    print(f"{out}: {len(recipe.holes)} holes from {args.image} ({units}); edit ids, types and tolerances, "
          f"then: holevision recipe check {out}")
    return 0


def _from_cad(args: argparse.Namespace) -> int:
    from holevision.runtime.inspect.recipe import recipe_from_cad_csv, save_recipe

    recipe = recipe_from_cad_csv(args.csv, name=args.name, units=args.units, position_tol=args.position_tol,
                                 diameter_tol=args.diameter_tol, transform=args.transform)
    save_recipe(recipe, args.out)
    print(f"{args.out}: {len(recipe.holes)} holes from {args.csv} ({recipe.units})")
    return 0


def _check(args: argparse.Namespace) -> int:
    from holevision.runtime.inspect.recipe import load_recipe

    for number, file in enumerate(args.files, start=1):
        recipe = load_recipe(file)
        d = recipe.diameters
        print(f"{file}: OK  #{number} name={recipe.name!r} units={recipe.units} holes={len(recipe.holes)} "
              f"diameters {d.min():.4g}..{d.max():.4g} {recipe.units} "
              f"position_tol {recipe.position_tols.min():.4g}..{recipe.position_tols.max():.4g} "
              f"registration={recipe.registration.transform}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from holevision.runtime.inspect.measure import inspect_holes, overlay_statuses
    from holevision.runtime.inspect.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    image = _read_image(args.image)
    holes = _detect(image, args.model).numbered()
    if args.config:
        holes = _to_mm(holes, args.config)
    report = inspect_holes(recipe, holes, frame_size=(image.shape[1], image.shape[0]))
    print(format_inspection(report))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if args.overlay:
        import cv2

        from holevision.runtime.overlay import draw_overlay

        folder = Path(args.overlay)
        folder.mkdir(parents=True, exist_ok=True)
        drawn = draw_overlay(image, holes, statuses=overlay_statuses(report, holes))
        out = folder / f"{Path(args.image).stem}.{report.verdict.lower()}.png"
        if not cv2.imwrite(str(out), drawn):
            raise OSError(f"{out}: cannot write the overlay image")
        print(f"overlay: {out}")
    return INSPECT_EXIT_CODES[report.verdict]


# ------------------------------------------------------------------------------------------- helpers


def format_inspection(report) -> str:
    """A table an operator can read: one line per expected hole that is not ok, then the verdict."""
    c = report.counts
    reg = report.registration
    lines = [f"recipe {report.recipe!r} ({report.units}): {c['expected']} expected, {c['ok']} ok, "
             f"{c['missing']} missing, {c['out_of_tolerance']} out of tolerance, {c['extra']} extra"]
    if reg.found:
        lines.append(f"fit: rotation {reg.rotation_deg:.2f} deg, scale {reg.scale:.4f}, "
                     f"residual {reg.fit_residual:.3g} {report.units} over {reg.inliers} holes")
    for h in report.holes:
        if h.status == "missing":
            lines.append(f"  hole {h.id:>3}{' ' + h.type if h.type else ''}: MISSING (expected at "
                         f"{h.expected_xy[0]:.2f}, {h.expected_xy[1]:.2f})")
        elif h.status == "out_of_tolerance":
            parts = []
            if "position" in h.failed:
                parts.append(f"position off {h.position_error:.3g} (tol {h.position_tol:.3g}, "
                             f"over by {h.position_excess:.3g})")
            if "diameter" in h.failed:
                parts.append(f"diameter {h.measured_diameter:.4g} vs {h.nominal_diameter:.4g} "
                             f"({'over' if h.diameter_excess > 0 else 'under'}size by {abs(h.diameter_excess):.3g} "
                             f"beyond tolerance)")
            lines.append(f"  hole {h.id:>3}: OUT OF TOLERANCE: " + "; ".join(parts))
    for row, xy, d in zip(report.extra, report.extra_xy, report.extra_diameters):
        lines.append(f"  extra hole at {xy[0]:.2f}, {xy[1]:.2f} (diameter {d:.4g})")
    reasons = f" ({', '.join(report.reasons)})" if report.reasons else ""
    lines.append(f"verdict: {report.verdict}{reasons}")
    return "\n".join(lines)


def _read_image(path: str):
    import cv2

    if not Path(path).is_file():
        raise ValueError(f"{path}: image not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    return image


def _detect(image_bgr, model: str):
    """The runtime's detector on one BGR image -> Holes."""
    from holevision.runtime.bundle import load_bundle
    from holevision.runtime.cli import require

    Detector = require("holevision.runtime.detector", "runtime").Detector
    return Detector(load_bundle(model)).detect(image_bgr).holes


def _to_mm(holes, config_path: str):
    """Fill ``points_base`` / ``diameters_mm`` with the config's eye-to-hand calibration."""
    from holevision.runtime.config import load_config
    from holevision.runtime.hole_geometry import HoleGeometry

    geometry = HoleGeometry.from_config(load_config(config_path).calibration, config_path)
    if geometry is None:
        raise ValueError(f"{config_path}: calibration.mode is \"none\": no mm without a calibrated camera")
    if geometry.needs_robot_pose:
        raise ValueError(f"{config_path}: calibration.mode is eye-in-hand: a still image has no robot pose; "
                         "make the recipe from a CAD table (recipe from-cad) or in px")
    return geometry(holes) if len(holes) else holes
