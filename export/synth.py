"""Write a synthetic training/test dataset of parts with holes (``holevision synth``).

Layout of ``out``::

    images/000000.png     the rendered image (BGR PNG)
    masks/000000.png      uint16 instance ids: 0 = background, k = the k-th annotation of that image
    annotations.json      COCO instance segmentation + exact ground truth (see below)
    preview.png           optional contact sheet with the ground truth drawn on

Per annotation, besides COCO's polygon ``segmentation``/``bbox``/``area``: ``center_uv`` (exact
ellipse center, pixel centers at integers), ``axes`` (full major, minor px), ``angle_deg``, and
``attributes``: kind, visible (fraction), occluded, on_border, diameter_mm (nominal bore),
opening_diameter_mm (the labelled edge), design_index, part_index, instance_id (value in the mask).
Per image: ``seed`` (regenerates that image alone with ``render_scene(seed, w, h, style, squares)``; ``info.squares``
is present and true where square look-alikes were drawn),
``style``, ``mask_file``, ``parts`` (hole design in mm and px, ``missing`` = undrilled design holes,
material, pose) and ``scene`` (background, light, camera effects).

Deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from holevision.export.datasets.coco import write_coco
from holevision.export.datasets.model import Dataset, Instance, Sample, polygons_from_mask
from holevision.runtime.synthparts import Scene, render_scene

PREVIEW_TILES = 16


def image_seed(seed: int, index: int) -> int:
    """The render seed of image ``index`` of a dataset made with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])


def scene_instances(scene: Scene) -> list[Instance]:
    """One ``Instance`` per visible hole of a scene, polygons traced from its instance map."""
    from scipy import ndimage

    instances = []
    slices = ndimage.find_objects(scene.instance_map)
    for k, hole in enumerate(scene.holes, start=1):
        box = slices[k - 1] if k - 1 < len(slices) else None
        if box is None:
            continue
        crop = scene.instance_map[box] == k
        polys = polygons_from_mask(crop)
        if not polys:
            continue
        offset = np.array([box[1].start, box[0].start], dtype=np.float64)
        polys = [p + offset for p in polys]
        instances.append(Instance(
            class_name="hole", polygon=polys[0], extra_polygons=polys[1:], center=hole.center, axes=hole.axes,
            angle_deg=hole.angle_deg,
            attributes={"kind": hole.kind, "visible": hole.visible, "occluded": hole.occluded,
                        "on_border": hole.on_border, "diameter_mm": round(hole.diameter_mm, 4),
                        "opening_diameter_mm": round(hole.opening_diameter_mm, 4),
                        "design_index": hole.design_index, "part_index": hole.part_index, "instance_id": k}))
    return instances


def write_synthetic_dataset(out: str | Path, *, count: int, seed: int, width: int = 640, height: int = 512,
                            style: str = "mixed", squares: bool = False, preview: bool = False,
                            progress: bool = True) -> dict:
    """Render ``count`` images into ``out`` (see the module docstring). Returns a summary dict."""
    from tqdm import tqdm

    if count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    if style not in ("photo", "cad", "mixed"):
        raise ValueError(f"--style must be photo, cad or mixed, got {style!r}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    samples: list[Sample] = []
    tiles: list[np.ndarray] = []
    n_holes = n_missing = 0
    for index in tqdm(range(count), desc="synth", unit="img", disable=not progress):
        s = image_seed(seed, index)
        scene = render_scene(s, width, height, style, squares=squares)
        name = f"{index:06d}.png"
        if not cv2.imwrite(str(out / "images" / name), scene.image):
            raise OSError(f"{out / 'images' / name}: could not write image")
        mask = scene.instance_map.astype(np.uint16)
        if not cv2.imwrite(str(out / "masks" / name), mask):
            raise OSError(f"{out / 'masks' / name}: could not write mask")
        instances = scene_instances(scene)
        n_holes += len(instances)
        n_missing += len(scene.missing)
        samples.append(Sample(image_path=out / "images" / name, width=width, height=height, instances=instances,
                              meta={"seed": s, "style": scene.meta["style"], "mask_file": f"masks/{name}",
                                    "parts": scene.parts, "scene": scene.meta}))
        if preview and len(tiles) < PREVIEW_TILES:
            tiles.append(preview_tile(scene))
    dataset = Dataset(root=out, classes=["hole"], samples=samples, format="coco")
    write_coco(dataset, out / "annotations.json",
               info={"generator": "holevision synth", "seed": int(seed), "count": int(count),
                     "size": [int(width), int(height)], "style": style, **({"squares": True} if squares else {}),
                     "label": "the hole's opening in the part's top surface (outer edge of a chamfer or countersink)"})
    if preview:
        cv2.imwrite(str(out / "preview.png"), contact_sheet(tiles))
    _remove_stale(out, count)
    return {"images": count, "holes": n_holes, "missing": n_missing, "seconds": time.perf_counter() - start,
            "out": str(out)}


def _remove_stale(out: Path, count: int) -> None:
    """Remove numbered images/masks beyond ``count`` left by an earlier, larger run into the same folder,
    so the folder holds exactly what annotations.json describes."""
    for sub in ("images", "masks"):
        for path in (out / sub).glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            if int(path.stem) >= count:
                path.unlink()


def preview_tile(scene: Scene, tile_width: int = 400) -> np.ndarray:
    """The image with ground truth: green = visible hole, orange = occluded, magenta = cut by the border,
    blue cross = designed hole left undrilled."""
    image = scene.image.copy()
    for hole in scene.holes:
        color = (255, 0, 255) if hole.on_border else (0, 140, 255) if hole.occluded else (0, 220, 0)
        center = (int(round(hole.center[0] * 16)), int(round(hole.center[1] * 16)))
        axes = (max(int(round(hole.axes[0] * 8)), 1), max(int(round(hole.axes[1] * 8)), 1))
        cv2.ellipse(image, center, axes, hole.angle_deg, 0, 360, color, 1, cv2.LINE_AA, 4)
        cv2.drawMarker(image, (int(round(hole.center[0])), int(round(hole.center[1]))), color, cv2.MARKER_CROSS, 5, 1)
    for part in scene.parts:
        for designed in part["holes"]:
            if not designed["drilled"]:
                u, v = designed["center_px"]
                cv2.drawMarker(image, (int(round(u)), int(round(v))), (255, 80, 0), cv2.MARKER_TILTED_CROSS, 9, 2)
    scale = tile_width / image.shape[1]
    tile = cv2.resize(image, (tile_width, int(round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    cv2.putText(tile, f"seed {scene.meta['seed']} {scene.meta['style']} holes {len(scene.holes)}", (4, 14),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(tiles: list[np.ndarray], columns: int = 4) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.zeros((rows * h, columns * w, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * h:r * h + tile.shape[0], c * w:c * w + tile.shape[1]] = tile
    return sheet
