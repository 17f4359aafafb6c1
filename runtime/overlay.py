"""An annotated picture of the result: each hole outlined and labelled with its number.

Meant for operators and for a language model shown the picture ("drill hole 3"): labels sit on a
dark box next to each hole, sized to the image so they stay readable from 320 px to 20 MP. For QA,
per-hole statuses colour the holes and mark missing ones at their expected place. Pure drawing on a
copy of the frame; writing the file is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from holevision.runtime.detections import Holes

# BGR colours
DETECTED = (255, 255, 0)      # cyan: a hole, no judgement
STATUS_COLOURS = {
    "ok": (0, 200, 0),                 # green
    "missing": (0, 0, 255),            # red, drawn at the expected position
    "out_of_tolerance": (0, 140, 255), # orange
    "extra": (255, 0, 255),            # magenta
}
LABEL_TEXT = (255, 255, 255)
LABEL_BOX = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX
SHIFT = 4                      # cv2 fixed-point bits: outlines are drawn at 1/16 px


class OverlayError(ValueError):
    """Statuses that cannot be drawn (unknown status, malformed entry)."""


def _scale(image: np.ndarray) -> float:
    return max(0.5, min(image.shape[:2]) / 700.0)


def _to_bgr(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise OverlayError(f"overlay needs a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def _outline(canvas, center, axes, angle, colour, thickness, dashed=False):
    u, v = center
    if not (np.isfinite(u) and np.isfinite(v)) or not np.all(np.isfinite(axes)):
        return
    half = (max(int(round(axes[0] / 2 * (1 << SHIFT))), 1), max(int(round(axes[1] / 2 * (1 << SHIFT))), 1))
    c = (int(round(u * (1 << SHIFT))), int(round(v * (1 << SHIFT))))
    if not dashed:
        cv2.ellipse(canvas, c, half, float(angle), 0, 360, colour, thickness, cv2.LINE_AA, SHIFT)
        return
    for start in range(0, 360, 30):
        cv2.ellipse(canvas, c, half, float(angle), start, start + 18, colour, thickness, cv2.LINE_AA, SHIFT)


def _label(canvas, text: str, anchor: tuple[float, float], radius: float, colour, scale: float):
    font_scale = 0.55 * scale
    thickness = max(1, int(round(1.5 * scale)))
    (w, h), base = cv2.getTextSize(text, FONT, font_scale, thickness)
    pad = max(2, int(round(3 * scale)))
    offset = 0.72 * radius + pad
    x = int(round(anchor[0] + offset))
    y = int(round(anchor[1] - offset))
    height, width = canvas.shape[:2]
    x = min(max(x, 0), max(width - w - 2 * pad, 0))
    y = min(max(y, h + 2 * pad), height - base - pad)
    cv2.rectangle(canvas, (x, y - h - 2 * pad), (x + w + 2 * pad, y + base), LABEL_BOX, -1)
    cv2.rectangle(canvas, (x, y - h - 2 * pad), (x + w + 2 * pad, y + base), colour, max(1, thickness // 2))
    cv2.putText(canvas, text, (x + pad, y - pad // 2), FONT, font_scale, LABEL_TEXT, thickness, cv2.LINE_AA)


def _with_legend(canvas, lines: list[tuple[str, tuple[int, int, int]]], scale: float) -> np.ndarray:
    """The canvas with a legend strip appended below it, so the legend never hides a hole."""
    font_scale = 0.5 * scale
    thickness = max(1, int(round(1.2 * scale)))
    pad = max(3, int(round(5 * scale)))
    sizes = [cv2.getTextSize(text, FONT, font_scale, thickness)[0] for text, _ in lines]
    line_h = max(h for _, h in sizes) + pad
    swatch = line_h - pad
    strip = np.full((line_h * len(lines) + pad, canvas.shape[1], 3), LABEL_BOX, dtype=np.uint8)
    for i, (text, colour) in enumerate(lines):
        y = pad + i * line_h
        cv2.rectangle(strip, (pad, y), (pad + swatch, y + swatch), colour, -1)
        cv2.putText(strip, text, (2 * pad + swatch, y + swatch), FONT, font_scale, LABEL_TEXT, thickness, cv2.LINE_AA)
    return np.vstack([canvas, strip])


def draw_overlay(image_bgr: np.ndarray, holes: Holes,
                 statuses: Iterable[tuple[int, str, tuple[float, float], float]] | None = None,
                 *, title: str | None = None) -> np.ndarray:
    """A BGR copy of the frame with every hole outlined and numbered, and a legend strip below it.

    The frame keeps its pixel coordinates (the strip is appended at the bottom).

    statuses: optional QA judgement per hole as (id, status, (u, v), diameter_px) with status one of
    ok / missing / out_of_tolerance / extra. A hole of ``holes`` with that id is outlined in the
    status colour; a missing hole (or an id not in ``holes``) is drawn as a dashed circle with a cross
    at (u, v). Holes without a status keep the neutral colour.
    """
    canvas = _to_bgr(image_bgr)
    scale = _scale(canvas)
    thickness = max(1, int(round(1.5 * scale)))
    by_id = {int(i): k for k, i in enumerate(holes.ids)}
    status_of: dict[int, str] = {}
    markers = []
    for entry in statuses or ():
        try:
            hole_id, status, (u, v), diameter = entry
        except (TypeError, ValueError):
            raise OverlayError(f"status entries are (id, status, (u, v), diameter_px), got {entry!r}") from None
        if status not in STATUS_COLOURS:
            raise OverlayError(f"hole {hole_id}: unknown status {status!r}; expected one of {sorted(STATUS_COLOURS)}")
        if status == "missing" or int(hole_id) not in by_id:
            markers.append((int(hole_id), status, (float(u), float(v)), float(diameter)))
        else:
            status_of[int(hole_id)] = status

    for k in range(len(holes)):
        hole_id = int(holes.ids[k])
        colour = STATUS_COLOURS.get(status_of.get(hole_id, ""), DETECTED)
        _outline(canvas, holes.centers[k], holes.axes[k], holes.angles[k], colour, thickness)
        u, v = holes.centers[k]
        cross = max(2.0, 0.12 * holes.axes[k, 1])
        cv2.line(canvas, (int(round(u - cross)), int(round(v))), (int(round(u + cross)), int(round(v))), colour, 1, cv2.LINE_AA)
        cv2.line(canvas, (int(round(u)), int(round(v - cross))), (int(round(u)), int(round(v + cross))), colour, 1, cv2.LINE_AA)
        text = f"{hole_id}*" if holes.on_border[k] else str(hole_id)
        _label(canvas, text, (u, v), holes.axes[k, 0] / 2, colour, scale)

    for hole_id, status, (u, v), diameter in markers:
        colour = STATUS_COLOURS[status]
        r = max(diameter / 2, 4.0)
        _outline(canvas, (u, v), (2 * r, 2 * r), 0.0, colour, thickness, dashed=True)
        arm = 0.5 * r
        cv2.line(canvas, (int(round(u - arm)), int(round(v - arm))), (int(round(u + arm)), int(round(v + arm))), colour, thickness, cv2.LINE_AA)
        cv2.line(canvas, (int(round(u - arm)), int(round(v + arm))), (int(round(u + arm)), int(round(v - arm))), colour, thickness, cv2.LINE_AA)
        _label(canvas, str(hole_id), (u, v), r, colour, scale)

    lines = [(title, LABEL_TEXT)] if title else []
    if statuses is None:
        lines.append((f"{len(holes)} holes, numbered left-to-right, top-to-bottom", DETECTED))
    else:
        counts: dict[str, int] = {}
        for s in list(status_of.values()) + [m[1] for m in markers]:
            counts[s] = counts.get(s, 0) + 1
        for status, colour in STATUS_COLOURS.items():
            lines.append((f"{status.replace('_', ' ')}: {counts.get(status, 0)}", colour))
    if np.any(holes.on_border):
        lines.append(("* cut by the image border", DETECTED))
    return _with_legend(canvas, lines, scale)
