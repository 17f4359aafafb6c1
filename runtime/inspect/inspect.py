"""Judge one part against its recipe: per-hole status, extra holes, verdict OK / NG / NONE.

Pure computation on arrays (no images, no I/O). Detections come in the recipe's units: pixels
(u, v, diameter px) or mm on the work plane; ``measure.py`` converts a ``Holes`` result.

Never a false OK: when the part cannot be found or too few holes match, the verdict is ``NONE`` with
a reason, never ``OK``. Each expected hole is ``ok``, ``missing`` or ``out_of_tolerance`` (naming the
tolerance that failed and by how much), or ``unchecked`` when the verdict is NONE.

Codes for the PLC (see ``Inspection.register_words``):

- verdict: 0 = no inspection ran, 1 = OK, 2 = NG, 3 = NONE
- reason bits: 0 missing_hole, 1 position_out_of_tolerance, 2 diameter_out_of_tolerance, 3 extra_hole,
  4 ambiguous_pose (NG, but the remaining holes fit the recipe in more than one place, so *which* holes
  are missing is uncertain: a grid missing an end column), 8 no_detections, 9 part_not_found, 10 too_few_matches, 11 fit_residual_high
- failing holes: bit i-1 set when the i-th recipe hole in id order is missing or out of tolerance
  (64 bits; holes past the 64th are reported in counts and ``failing_overflow``)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from holevision.runtime.inspect.recipe import Recipe
from holevision.runtime.inspect.register import (Registration, alternative_poses, assign, register,
                                                 transform_points)

OK, NG, NONE = "OK", "NG", "NONE"
VERDICT_CODES = {OK: 1, NG: 2, NONE: 3}          # 0 in the register = no inspection ran
REASON_BITS = {
    "missing_hole": 0,
    "position_out_of_tolerance": 1,
    "diameter_out_of_tolerance": 2,
    "extra_hole": 3,
    "ambiguous_pose": 4,
    "no_detections": 8,
    "part_not_found": 9,
    "too_few_matches": 10,
    "fit_residual_high": 11,
    "part_out_of_view": 12,
}
HOLE_OK, HOLE_MISSING, HOLE_OUT_OF_TOLERANCE, HOLE_UNCHECKED = "ok", "missing", "out_of_tolerance", "unchecked"
FAILING_BITS = 64
REGISTER_LAYOUT = ("verdict", "reasons", "expected", "ok", "missing", "out_of_tolerance", "extra",
                   "failing_bits_0_15", "failing_bits_16_31", "failing_bits_32_47", "failing_bits_48_63")


class UnitsMismatchError(ValueError):
    """Detections and recipe are in different units (px vs mm)."""


@dataclass
class HoleCheck:
    """The verdict on one expected hole. Lengths in the recipe's units; positions in the detection frame."""

    id: int
    type: str
    status: str                                  # ok / missing / out_of_tolerance / unchecked
    failed: tuple[str, ...] = ()                 # ("position", "diameter") that are out of tolerance
    expected_xy: tuple[float, float] | None = None   # nominal center mapped into the detection frame
    measured_xy: tuple[float, float] | None = None
    detection: int = -1                          # row in the detections given to inspect(), -1 = none
    position_error: float = float("nan")         # distance measured - expected
    position_tol: float = float("nan")
    position_excess: float = 0.0                 # how far beyond the tolerance (0 when within)
    nominal_diameter: float = float("nan")       # recipe diameter (times the fitted scale for similarity)
    measured_diameter: float = float("nan")
    diameter_error: float = float("nan")         # measured - nominal (signed)
    diameter_tol: tuple[float, float] = (float("nan"), float("nan"))   # (minus, plus)
    diameter_excess: float = 0.0                 # beyond the tolerance: + oversize, - undersize, 0 within

    def to_dict(self) -> dict:
        def num(x):
            return None if x is None or not np.isfinite(x) else round(float(x), 4)

        def pair(p):
            return None if p is None else [num(p[0]), num(p[1])]

        return {"id": self.id, "type": self.type, "status": self.status, "failed": list(self.failed),
                "expected": pair(self.expected_xy), "measured": pair(self.measured_xy),
                "detection": self.detection,
                "position_error": num(self.position_error), "position_tol": num(self.position_tol),
                "position_excess": num(self.position_excess),
                "nominal_diameter": num(self.nominal_diameter), "measured_diameter": num(self.measured_diameter),
                "diameter_error": num(self.diameter_error),
                "diameter_tol": [num(self.diameter_tol[0]), num(self.diameter_tol[1])],
                "diameter_excess": num(self.diameter_excess)}


@dataclass
class Inspection:
    """A part's inspection: verdict, reasons, per-hole checks, extra holes and the fitted pose."""

    recipe: str
    units: str
    verdict: str                                 # OK / NG / NONE
    reasons: tuple[str, ...]
    holes: list[HoleCheck]                       # one per recipe hole, in id order
    registration: Registration
    extra: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))   # detection rows
    extra_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    extra_diameters: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ignored: int = 0                             # detections off the part or too small to be a hole

    @property
    def verdict_code(self) -> int:
        return VERDICT_CODES[self.verdict]

    @property
    def reason_bits(self) -> int:
        bits = 0
        for reason in self.reasons:
            bits |= 1 << REASON_BITS[reason]
        return bits

    @property
    def counts(self) -> dict[str, int]:
        statuses = [h.status for h in self.holes]
        return {"expected": len(self.holes), "ok": statuses.count(HOLE_OK),
                "missing": statuses.count(HOLE_MISSING),
                "out_of_tolerance": statuses.count(HOLE_OUT_OF_TOLERANCE),
                "extra": int(len(self.extra)), "ignored": int(self.ignored)}

    @property
    def failing_ids(self) -> list[int]:
        return [h.id for h in self.holes if h.status in (HOLE_MISSING, HOLE_OUT_OF_TOLERANCE)]

    @property
    def failing_bits(self) -> int:
        """Bit i-1 set when the i-th hole (id order) failed; first 64 holes."""
        bits = 0
        for order, hole in enumerate(self.holes[:FAILING_BITS]):
            if hole.status in (HOLE_MISSING, HOLE_OUT_OF_TOLERANCE):
                bits |= 1 << order
        return bits

    @property
    def failing_overflow(self) -> bool:
        return any(h.status in (HOLE_MISSING, HOLE_OUT_OF_TOLERANCE) for h in self.holes[FAILING_BITS:])

    def register_words(self) -> list[int]:
        """Unsigned 16-bit words in ``REGISTER_LAYOUT`` order; the bit field low word first."""
        c = self.counts
        words = [self.verdict_code, self.reason_bits, c["expected"], c["ok"], c["missing"],
                 c["out_of_tolerance"], c["extra"]]
        words = [min(int(w), 0xFFFF) for w in words]
        bits = self.failing_bits
        words += [(bits >> (16 * k)) & 0xFFFF for k in range(4)]
        return words

    def to_dict(self) -> dict:
        """JSON-ready report for the result schema and the journal."""
        def num(x):
            return None if not np.isfinite(x) else round(float(x), 4)

        return {
            "recipe": self.recipe, "units": self.units, "verdict": self.verdict,
            "verdict_code": self.verdict_code, "reasons": list(self.reasons), "reason_bits": self.reason_bits,
            "counts": self.counts, "failing_ids": self.failing_ids, "failing_bits": self.failing_bits,
            "failing_overflow": self.failing_overflow,
            "fit_residual": num(self.registration.fit_residual),
            "registration": self.registration.to_dict(),
            "holes": [h.to_dict() for h in self.holes],
            "extra": [{"detection": int(i), "xy": [num(p[0]), num(p[1])], "diameter": num(d)}
                      for i, p, d in zip(self.extra, self.extra_xy, self.extra_diameters)],
        }


def inspect(recipe: Recipe, centers_2d: np.ndarray, diameters: np.ndarray, *, units: str,
            unmeasurable_xy: np.ndarray | None = None, frame_size: tuple[float, float] | None = None,
            match_gate_factor: float = 3.0, diameter_ratio_gate: float = 0.5, seed: int = 0) -> Inspection:
    """Inspect one part: ``centers_2d`` (N, 2) and ``diameters`` (N,) are the detections in ``units``.

    A detection counts for an expected hole when it is the closest compatible one within
    ``max(match_gate_factor * position_tol, diameter / 2)`` of where the fitted recipe puts the hole
    (and its diameter is within a factor ``1 + diameter_ratio_gate`` of nominal); farther holes are missing
    (and the detection, if on the part, extra). Rows with non-finite values are ignored.

    A hole that is not found is ``unchecked`` rather than ``missing`` when it cannot be seen: an
    ``unmeasurable_xy`` detection (a hole cut by the image border) lies where it should be, or, given
    ``frame_size`` (width, height in ``units``), it does not lie wholly inside the frame.
    """
    if units != recipe.units:
        raise UnitsMismatchError(f"recipe {recipe.name!r} is in {recipe.units} but the detections are in "
                                 f"{units}; {'calibrate the camera (mm on the work plane)' if recipe.units == 'mm' else 'use a px recipe'}")
    centers = np.asarray(centers_2d, dtype=np.float64).reshape(-1, 2)
    diam = np.asarray(diameters, dtype=np.float64).reshape(-1)
    if len(centers) != len(diam):
        raise ValueError(f"inspect: {len(centers)} centers but {len(diam)} diameters")
    finite = np.all(np.isfinite(centers), axis=1) & np.isfinite(diam) & (diam > 0)
    rows = np.flatnonzero(finite)
    Q, dQ = centers[rows], diam[rows]

    P, dP = recipe.points, recipe.diameters
    pos_tol = recipe.position_tols
    settings = recipe.registration
    M = len(P)
    min_matched = min(settings.min_matched, M)

    registration = register(P, Q, inlier_radius=pos_tol, transform=settings.transform,
                            diameters_part=dP, diameters_det=dQ, diameter_ratio_gate=diameter_ratio_gate,
                            max_scale_change=settings.max_scale_change, min_inliers=min_matched, seed=seed)

    def undecided(reason: str) -> Inspection:
        holes = [HoleCheck(id=h.id, type=h.type, status=HOLE_UNCHECKED, position_tol=h.position_tol,
                           nominal_diameter=h.diameter, diameter_tol=(h.diameter_tol_minus, h.diameter_tol_plus))
                 for h in recipe.holes]
        return Inspection(recipe.name, recipe.units, NONE, (reason,), holes, registration,
                          ignored=int(len(centers)))

    if len(Q) == 0:
        return undecided("no_detections")
    if not registration.found:
        return undecided("part_not_found")

    T = registration.T_det_part
    scale = registration.scale
    expected = transform_points(T, P)
    nominal = dP * scale
    ratio = dQ[None, :] / nominal[:, None]
    compat = (ratio >= 1 / (1 + diameter_ratio_gate)) & (ratio <= 1 + diameter_ratio_gate)
    gate = np.maximum(match_gate_factor * pos_tol * scale, 0.5 * nominal)
    matches = assign(expected, Q, gate, compat)
    matched = int((matches >= 0).sum())
    if matched < min_matched or matched < settings.min_matched_fraction * M:
        return undecided("too_few_matches")
    if settings.max_fit_residual is not None and registration.fit_residual > settings.max_fit_residual:
        return undecided("fit_residual_high")

    out_of_view = np.zeros(M, dtype=bool)
    if unmeasurable_xy is not None and len(unmeasurable_xy):
        blocked = np.asarray(unmeasurable_xy, dtype=np.float64).reshape(-1, 2)
        near = np.linalg.norm(expected[:, None] - blocked[None], axis=-1) <= gate[:, None]
        out_of_view |= near.any(axis=1)
    if frame_size is not None:
        radius = 0.5 * nominal
        out_of_view |= np.any(expected - radius[:, None] < -0.5, axis=1)
        out_of_view |= np.any(expected + radius[:, None] > np.asarray(frame_size, dtype=np.float64) - 0.5, axis=1)

    holes: list[HoleCheck] = []
    for m, hole in enumerate(recipe.holes):
        tol_minus, tol_plus = hole.diameter_tol_minus * scale, hole.diameter_tol_plus * scale
        check = HoleCheck(id=hole.id, type=hole.type, status=HOLE_MISSING,
                          expected_xy=(float(expected[m, 0]), float(expected[m, 1])),
                          position_tol=hole.position_tol * scale, nominal_diameter=float(nominal[m]),
                          diameter_tol=(tol_minus, tol_plus))
        k = int(matches[m])
        if k >= 0:
            error = float(np.linalg.norm(Q[k] - expected[m]))
            d_error = float(dQ[k] - nominal[m])
            failed = []
            if error > check.position_tol:
                failed.append("position")
                check.position_excess = error - check.position_tol
            if d_error > tol_plus:
                failed.append("diameter")
                check.diameter_excess = d_error - tol_plus
            elif d_error < -tol_minus:
                failed.append("diameter")
                check.diameter_excess = d_error + tol_minus
            check.status = HOLE_OUT_OF_TOLERANCE if failed else HOLE_OK
            check.failed = tuple(failed)
            check.measured_xy = (float(Q[k, 0]), float(Q[k, 1]))
            check.detection = int(rows[k])
            check.position_error = error
            check.measured_diameter = float(dQ[k])
            check.diameter_error = d_error
        elif out_of_view[m]:
            check.status = HOLE_UNCHECKED
        holes.append(check)

    extra_mask = _extra_mask(recipe, T, scale, Q, dQ, matches)
    unmatched = np.ones(len(Q), dtype=bool)
    unmatched[matches[matches >= 0]] = False
    ignored = int(len(centers) - len(Q) + (unmatched & ~extra_mask).sum())

    reasons = []
    statuses = [h.status for h in holes]
    if HOLE_MISSING in statuses:
        reasons.append("missing_hole")
        if _pose_is_ambiguous(recipe, T, Q, dQ, matches, gate, diameter_ratio_gate):
            reasons.append("ambiguous_pose")
    if any("position" in h.failed for h in holes):
        reasons.append("position_out_of_tolerance")
    if any("diameter" in h.failed for h in holes):
        reasons.append("diameter_out_of_tolerance")
    if recipe.extra.fail_on_extra and extra_mask.any():
        reasons.append("extra_hole")
    verdict = NG if reasons else OK
    if HOLE_UNCHECKED in statuses:
        reasons.append("part_out_of_view")
        verdict = NG if verdict == NG else NONE
    return Inspection(recipe.name, recipe.units, verdict, tuple(reasons), holes, registration,
                      extra=rows[extra_mask], extra_xy=Q[extra_mask], extra_diameters=dQ[extra_mask],
                      ignored=ignored)


def _extra_mask(recipe: Recipe, T_det_part: np.ndarray, scale: float, Q: np.ndarray, dQ: np.ndarray,
                matches: np.ndarray) -> np.ndarray:
    """Unmatched detections on the part (within the holes' bounding box + margin) and big enough."""
    unmatched = np.ones(len(Q), dtype=bool)
    unmatched[matches[matches >= 0]] = False
    P, dP = recipe.points, recipe.diameters
    margin = recipe.extra.part_margin if recipe.extra.part_margin is not None else float(dP.max())
    min_d = recipe.extra.min_diameter if recipe.extra.min_diameter is not None else 0.5 * float(dP.min())
    T_part_det = np.linalg.inv(T_det_part)
    q_part = transform_points(T_part_det, Q)
    low, high = P.min(axis=0) - margin, P.max(axis=0) + margin
    on_part = np.all((q_part >= low) & (q_part <= high), axis=1)
    big_enough = dQ >= min_d * scale
    return unmatched & on_part & big_enough


def _pose_is_ambiguous(recipe: Recipe, T_det_part: np.ndarray, Q: np.ndarray, dQ: np.ndarray,
                       matches: np.ndarray, gate: np.ndarray, diameter_ratio_gate: float) -> bool:
    """True when another pose explains the matched holes equally well but puts the missing ones elsewhere."""
    P, dP = recipe.points, recipe.diameters
    settings = recipe.registration
    matched = matches >= 0
    scale = float(np.hypot(T_det_part[0, 0], T_det_part[1, 0]))
    radius = recipe.position_tols * scale
    alternatives = alternative_poses(P, Q[matches[matched]], T_det_part, inlier_radius=radius,
                                     transform=settings.transform, diameters_part=dP,
                                     diameters_det=dQ[matches[matched]], diameter_ratio_gate=diameter_ratio_gate,
                                     max_scale_change=settings.max_scale_change)
    missing_xy = transform_points(T_det_part, P[~matched])
    for T in alternatives:
        pred = transform_points(T, P)
        alt_scale = float(np.hypot(T[0, 0], T[1, 0]))
        ratio = dQ[None, :] / (dP[:, None] * alt_scale)
        compat = (ratio >= 1 / (1 + diameter_ratio_gate)) & (ratio <= 1 + diameter_ratio_gate)
        alt_matches = assign(pred, Q, gate, compat)
        alt_missing = pred[alt_matches < 0]
        if len(alt_missing) != len(missing_xy):
            return True
        d = np.linalg.norm(alt_missing[:, None] - missing_xy[None], axis=-1)
        if np.any(d.min(axis=1) > radius.max()):
            return True
    return False
