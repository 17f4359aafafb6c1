"""Recipes: the holes a part should have, in the part frame, with their tolerances.

A recipe is a TOML (or JSON) file a QA engineer can read and edit::

    name = "bracket-a"
    units = "mm"                     # "mm" (work plane, calibrated camera) or "px" (image)
    description = "bracket A, rev C"

    [defaults]                       # applied to every hole that does not set its own
    position_tol = 0.5               # max distance of the measured center from nominal (units): a radius,
                                     # half the diameter of a GD&T position tolerance zone
    diameter_tol = 0.1               # symmetric +/-; or diameter_tol_minus / diameter_tol_plus

    [registration]
    transform = "rigid"              # "rigid", "similarity" (scale may change) or "fixed" (fixtured)
    min_matched = 3                  # fewer matched holes: verdict NONE (part not found)
    min_matched_fraction = 0.5       # fewer than this share matched: verdict NONE (too few matches)

    [extra]
    fail_on_extra = true             # an unexpected hole on the part makes it NG

    [[holes]]
    id = 1
    x = 10.0
    y = 12.5
    diameter = 6.6
    type = "through"                 # optional, free text
    position_tol = 0.3               # optional per-hole tolerances override [defaults]

Every error names the file and the field (``holes[2].diameter``).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from holevision.runtime.settings_files import format_validation_error, parse_toml_or_json, read_text


Units = Literal["mm", "px"]


class RecipeError(ValueError):
    """A recipe file could not be read or does not validate; the message names the file and field."""


class _Strict(BaseModel):
    # A typo ("diamter = 6") must be an error, never a silently ignored key.
    model_config = ConfigDict(extra="forbid")


class ToleranceDefaults(_Strict):
    """Tolerances for holes that do not set their own (recipe units)."""

    position_tol: float | None = Field(None, gt=0, description="max center distance from nominal")
    diameter_tol: float | None = Field(None, gt=0, description="symmetric diameter tolerance +/-")
    diameter_tol_minus: float | None = Field(None, ge=0, description="allowed undersize")
    diameter_tol_plus: float | None = Field(None, ge=0, description="allowed oversize")


class RegistrationSettings(_Strict):
    """How the recipe is fitted to the detections."""

    transform: Literal["rigid", "similarity", "fixed"] = Field(
        "rigid", description="rigid: rotation + translation; similarity: + scale; fixed: part is fixtured")
    min_matched: int = Field(3, ge=1, description="fewer matched holes than this: verdict NONE")
    min_matched_fraction: float = Field(0.5, gt=0, le=1, description="share of holes that must match")
    max_scale_change: float = Field(0.1, ge=0, lt=1, description="similarity only: |scale - 1| allowed")
    max_fit_residual: float | None = Field(None, gt=0, description="RMS fit residual above this: NONE")


class ExtraSettings(_Strict):
    """What counts as an unexpected (extra) hole."""

    fail_on_extra: bool = Field(True, description="an extra hole on the part makes the verdict NG")
    min_diameter: float | None = Field(None, ge=0, description="smaller detections are ignored; "
                                                               "default: half the smallest nominal diameter")
    part_margin: float | None = Field(None, ge=0, description="detections farther than this outside the "
                                                              "holes' bounding box are not on the part; "
                                                              "default: the largest nominal diameter")


class RecipeHole(_Strict):
    """One expected hole, in the part frame (recipe units)."""

    id: int = Field(ge=1, description="hole number on the drawing; bit id-order in the failing-holes field")
    x: float
    y: float
    diameter: float = Field(gt=0)
    position_tol: float | None = Field(None, gt=0)
    diameter_tol: float | None = Field(None, gt=0, description="symmetric +/-; sets minus and plus")
    diameter_tol_minus: float | None = Field(None, ge=0)
    diameter_tol_plus: float | None = Field(None, ge=0)
    type: str = Field("", description="free text: through, blind, threaded, ...")

    @model_validator(mode="after")
    def _symmetric_tolerance(self) -> "RecipeHole":
        if self.diameter_tol is not None:
            if self.diameter_tol_minus is None:
                self.diameter_tol_minus = self.diameter_tol
            if self.diameter_tol_plus is None:
                self.diameter_tol_plus = self.diameter_tol
            self.diameter_tol = None
        return self


class Recipe(_Strict):
    """A part's expected holes and how to judge them. Holes are kept sorted by id."""

    name: str = Field(min_length=1)
    units: Units
    description: str = ""
    defaults: ToleranceDefaults = Field(default_factory=ToleranceDefaults)
    registration: RegistrationSettings = Field(default_factory=RegistrationSettings)
    extra: ExtraSettings = Field(default_factory=ExtraSettings)
    holes: list[RecipeHole] = Field(min_length=1)

    @model_validator(mode="after")
    def _resolve(self) -> "Recipe":
        d = self.defaults
        default_minus = d.diameter_tol_minus if d.diameter_tol_minus is not None else d.diameter_tol
        default_plus = d.diameter_tol_plus if d.diameter_tol_plus is not None else d.diameter_tol
        for i, hole in enumerate(self.holes):
            if hole.position_tol is None:
                hole.position_tol = d.position_tol
            if hole.diameter_tol_minus is None:
                hole.diameter_tol_minus = default_minus
            if hole.diameter_tol_plus is None:
                hole.diameter_tol_plus = default_plus
            for name in ("position_tol", "diameter_tol_minus", "diameter_tol_plus"):
                if getattr(hole, name) is None:
                    raise ValueError(f"holes[{i}] (id {hole.id}): {name} is not set and [defaults] has no "
                                     f"value for it")
        ids = [h.id for h in self.holes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"holes: hole ids must be unique, repeated: {duplicates}")
        self.holes.sort(key=lambda h: h.id)
        xy = np.array([[h.x, h.y] for h in self.holes])
        if len(xy) > 1:
            dist = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
            np.fill_diagonal(dist, np.inf)
            i, j = np.unravel_index(np.argmin(dist), dist.shape)
            smallest = min(self.holes[i].diameter, self.holes[j].diameter)
            if dist[i, j] < 0.5 * smallest:
                raise ValueError(f"holes: ids {self.holes[i].id} and {self.holes[j].id} overlap "
                                 f"(centers {dist[i, j]:.3g} {self.units} apart)")
        if self.registration.transform != "fixed" and len(self.holes) < 2:
            raise ValueError("holes: a recipe with one hole cannot be registered; "
                             "add holes or set registration.transform = \"fixed\"")
        return self

    # Arrays in id order, for the pure inspection code.
    @property
    def ids(self) -> np.ndarray:
        return np.array([h.id for h in self.holes], dtype=np.int64)

    @property
    def points(self) -> np.ndarray:
        """(M, 2) nominal centers in the part frame."""
        return np.array([[h.x, h.y] for h in self.holes], dtype=np.float64).reshape(-1, 2)

    @property
    def diameters(self) -> np.ndarray:
        return np.array([h.diameter for h in self.holes], dtype=np.float64)

    @property
    def position_tols(self) -> np.ndarray:
        return np.array([h.position_tol for h in self.holes], dtype=np.float64)

    @property
    def diameter_tols(self) -> np.ndarray:
        """(M, 2): allowed undersize, allowed oversize."""
        return np.array([[h.diameter_tol_minus, h.diameter_tol_plus] for h in self.holes], dtype=np.float64)


# ----------------------------------------------------------------------------------------- reading


_RECIPE_FIELDS_HINT = ("check the spelling; recipe fields: name, units, description, [defaults], "
                       "[registration], [extra], [[holes]] id x y diameter position_tol diameter_tol "
                       "diameter_tol_minus diameter_tol_plus type")


def parse_recipe(data: dict, source: str | Path = "<recipe>") -> Recipe:
    """Validate a recipe given as a dict; raise RecipeError naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a table/object at the top level, "
                          f"got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(source, exc, unknown_field_hint=_RECIPE_FIELDS_HINT,
                                                  top_level="(recipe)")) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read a ``.toml`` or ``.json`` recipe; raise RecipeError naming the file and field."""
    path = Path(path)
    data = parse_toml_or_json(read_text(path, RecipeError, "recipe file"), path, RecipeError)
    return parse_recipe(data, path)


# ----------------------------------------------------------------------------------------- writing


def recipe_to_dict(recipe: Recipe) -> dict:
    """Plain dict with every hole's tolerances written out (so each hole can be edited alone)."""
    data = recipe.model_dump(exclude_none=True)
    for hole in data["holes"]:
        hole.pop("diameter_tol", None)
        if not hole.get("type"):
            hole.pop("type", None)
    if not data["defaults"]:
        data.pop("defaults")
    return data


def recipe_to_toml(recipe: Recipe) -> str:
    data = recipe_to_dict(recipe)
    lines = [f"# holevision recipe: expected holes in the part frame ({recipe.units}).",
             "# Check after editing: holevision recipe check FILE", ""]
    for key in ("name", "units", "description"):
        lines.append(f"{key} = {_toml_value(data[key])}")
    for section in ("defaults", "registration", "extra"):
        if data.get(section):
            lines += ["", f"[{section}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in data[section].items()]
    for hole in data["holes"]:
        lines += ["", "[[holes]]"] + [f"{k} = {_toml_value(v)}" for k, v in hole.items()]
    return "\n".join(lines) + "\n"


def save_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Write TOML (or JSON for a ``.json`` path); the file loads back to an equal recipe."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(recipe_to_dict(recipe), indent=2) + "\n"
    else:
        text = recipe_to_toml(recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to a recipe")
        return repr(round(value, 6))
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


# ----------------------------------------------------------------------------------------- creating


def recipe_from_holes(centers: np.ndarray, diameters: np.ndarray, *, name: str, units: Units,
                      position_tol: float, diameter_tol_fraction: float = 0.05,
                      transform: Literal["rigid", "similarity", "fixed"] = "rigid",
                      ids: np.ndarray | None = None, origin: Literal["first", "centroid", "none"] = "first",
                      description: str = "") -> Recipe:
    """A recipe from a golden part's measured holes (then edit it: types, tolerances, ids).

    ``centers`` (N, 2) and ``diameters`` (N,) in ``units``. Holes are numbered as given (pass
    ``Holes.numbered()`` rows for left-to-right, top-to-bottom ids). ``origin`` moves the part frame:
    ``first`` puts hole 1 at (0, 0) (like a drawing's datum hole), ``centroid`` the holes' centroid,
    ``none`` keeps the measured coordinates (needed with ``transform="fixed"``).
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    diameters = np.asarray(diameters, dtype=np.float64).reshape(-1)
    if len(centers) != len(diameters):
        raise ValueError(f"recipe_from_holes: {len(centers)} centers but {len(diameters)} diameters")
    if len(centers) == 0:
        raise ValueError("recipe_from_holes: no holes were detected on the golden part")
    if not (np.all(np.isfinite(centers)) and np.all(np.isfinite(diameters))):
        raise ValueError("recipe_from_holes: centers and diameters must be finite "
                         "(for a mm recipe, calibrate the camera first)")
    ids = np.arange(1, len(centers) + 1) if ids is None else np.asarray(ids, dtype=np.int64)
    shift = {"first": centers[0], "centroid": centers.mean(axis=0), "none": np.zeros(2)}[origin]
    local = centers - shift
    holes = [{"id": int(i), "x": float(p[0]), "y": float(p[1]), "diameter": float(d),
              "position_tol": float(position_tol),
              "diameter_tol": float(max(diameter_tol_fraction * d, 1e-6))}
             for i, p, d in zip(ids, local, diameters)]
    data = {"name": name, "units": units, "description": description,
            "registration": {"transform": transform, "min_matched": min(3, len(holes))},
            "holes": holes}
    return parse_recipe(data, f"<recipe from golden part {name!r}>")


def recipe_from_cad_csv(path: str | Path, *, name: str | None = None, units: Units = "mm",
                        position_tol: float = 0.5, diameter_tol: float = 0.1,
                        transform: Literal["rigid", "similarity", "fixed"] = "rigid") -> Recipe:
    """A recipe from a CAD hole table: CSV with a header naming ``x``, ``y``, ``diameter`` columns.

    Optional columns: ``id`` (else rows are numbered 1..N), ``type``, ``position_tol``,
    ``diameter_tol``, ``diameter_tol_minus``, ``diameter_tol_plus``. Column names are case-insensitive;
    ``d``, ``dia`` and ``diameter_mm`` are accepted for the diameter. Errors name the file, row and column.
    """
    path = Path(path)
    text = read_text(path, RecipeError, "hole table", encoding="utf-8-sig")
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else "", delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    aliases = {"d": "diameter", "dia": "diameter", "diameter_mm": "diameter", "x_mm": "x", "y_mm": "y",
               "hole": "id", "hole_id": "id"}
    header = {c: aliases.get(c.strip().lower(), c.strip().lower()) for c in (reader.fieldnames or [])}
    missing = [c for c in ("x", "y", "diameter") if c not in header.values()]
    if missing:
        raise RecipeError(f"{path}: header must name columns x, y, diameter; missing {missing} "
                          f"(got {list(reader.fieldnames or [])})")
    numeric = {"x", "y", "diameter", "position_tol", "diameter_tol", "diameter_tol_minus", "diameter_tol_plus"}
    holes = []
    for row_number, row in enumerate(reader, start=2):
        hole = {}
        for raw, key in header.items():
            value = (row.get(raw) or "").strip()
            if value == "":
                continue
            if key in numeric or key == "id":
                try:
                    hole[key] = int(value) if key == "id" else float(value)
                except ValueError:
                    raise RecipeError(f"{path}: row {row_number}, column {raw!r}: not a number: {value!r}") from None
            elif key == "type":
                hole[key] = value
            # other columns (comments, CAD layer names) are ignored
        if not hole:
            continue
        hole.setdefault("id", len(holes) + 1)
        holes.append(hole)
    if not holes:
        raise RecipeError(f"{path}: the hole table has no rows")
    data = {"name": name or path.stem, "units": units,
            "description": f"from CAD hole table {path.name}",
            "defaults": {"position_tol": position_tol, "diameter_tol": diameter_tol},
            "registration": {"transform": transform, "min_matched": min(3, len(holes))},
            "holes": holes}
    return parse_recipe(data, path)
