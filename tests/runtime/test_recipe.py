"""Recipes: read/write round trips, clear errors on malformed files, CAD tables, golden parts, library."""

from __future__ import annotations

import json

import numpy as np
import pytest

from holevision.runtime.inspect.library import RecipeLibrary, RecipeSelectionError
from holevision.runtime.inspect.recipe import (
    RecipeError, load_recipe, parse_recipe, recipe_from_cad_csv, recipe_from_holes, recipe_to_toml, save_recipe,
)

GOOD_TOML = """
name = "bracket-a"
units = "mm"

[defaults]
position_tol = 0.5
diameter_tol = 0.1

[[holes]]
id = 2
x = 40.0
y = 0.0
diameter = 8.0
type = "through"

[[holes]]
id = 1
x = 0.0
y = 0.0
diameter = 6.6
position_tol = 0.3
diameter_tol_plus = 0.2

[[holes]]
id = 3
x = 20.0
y = 25.0
diameter = 6.6
"""


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_fill_holes_and_holes_sort_by_id(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD_TOML))
    assert [h.id for h in recipe.holes] == [1, 2, 3]
    one = recipe.holes[0]
    assert one.position_tol == 0.3
    assert (one.diameter_tol_minus, one.diameter_tol_plus) == (0.1, 0.2)
    assert recipe.holes[1].type == "through"
    np.testing.assert_allclose(recipe.diameter_tols[2], [0.1, 0.1])
    np.testing.assert_allclose(recipe.points[1], [40.0, 0.0])


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_and_load_round_trip(tmp_path, suffix):
    recipe = load_recipe(write(tmp_path, GOOD_TOML))
    path = save_recipe(recipe, tmp_path / f"out{suffix}")
    again = load_recipe(path)
    assert again == recipe
    if suffix == ".json":
        json.loads(path.read_text())


@pytest.mark.parametrize("change, field", [
    (lambda t: t.replace("diameter = 8.0", "diamter = 8.0"), "holes.0.diamter"),
    (lambda t: t.replace("diameter = 8.0", "diameter = -8.0"), "holes.0.diameter"),
    (lambda t: t.replace('units = "mm"', 'units = "inch"'), "units"),
    (lambda t: t.replace("id = 3", "id = 2"), "repeated: [2]"),
    (lambda t: t.replace("position_tol = 0.5\n", ""), "position_tol is not set"),
    (lambda t: t.replace("x = 20.0", "x = 40.5").replace("y = 25.0", "y = 0.0"), "overlap"),
    (lambda t: t.replace("x = 20.0", 'x = "twenty"'), "holes.2.x"),
])
def test_malformed_recipes_name_file_and_field(tmp_path, change, field):
    path = write(tmp_path, change(GOOD_TOML))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(write(tmp_path, "name = [unclosed"))
    with pytest.raises(RecipeError, match="not valid JSON"):
        load_recipe(write(tmp_path, "{", "r.json"))
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.toml")
    assert issubclass(RecipeError, ValueError)


def test_one_hole_needs_a_fixed_part():
    hole = {"id": 1, "x": 0, "y": 0, "diameter": 5, "position_tol": 1, "diameter_tol": 0.1}
    with pytest.raises(RecipeError, match="one hole cannot be registered"):
        parse_recipe({"name": "x", "units": "px", "holes": [hole]})
    recipe = parse_recipe({"name": "x", "units": "px", "registration": {"transform": "fixed"}, "holes": [hole]})
    assert len(recipe.holes) == 1


def test_toml_writer_output_is_editable_text():
    recipe = parse_recipe({"name": 'odd "name"', "units": "px", "defaults": {"position_tol": 1, "diameter_tol": 1},
                           "holes": [{"id": 1, "x": 0, "y": 0, "diameter": 20},
                                     {"id": 2, "x": 50, "y": 0, "diameter": 20}]})
    text = recipe_to_toml(recipe)
    assert "[[holes]]" in text and 'name = "odd \\"name\\""' in text


def test_recipe_from_cad_csv(tmp_path):
    path = write(tmp_path, "Hole;X;Y;Dia;Type;note\n1;0;0;6.6;through;datum\n2;40;0;8;blind;\n3;20;25.5;6.6;;\n",
                 "plate.csv")
    recipe = recipe_from_cad_csv(path, position_tol=0.4, diameter_tol=0.05)
    assert recipe.name == "plate" and recipe.units == "mm"
    assert [h.type for h in recipe.holes] == ["through", "blind", ""]
    np.testing.assert_allclose(recipe.points[2], [20.0, 25.5])
    np.testing.assert_allclose(recipe.position_tols, 0.4)


def test_cad_csv_errors_name_row_and_column(tmp_path):
    with pytest.raises(RecipeError, match=r"missing \['diameter'\]"):
        recipe_from_cad_csv(write(tmp_path, "x,y\n1,2\n", "a.csv"))
    with pytest.raises(RecipeError, match=r"row 3, column 'y': not a number"):
        recipe_from_cad_csv(write(tmp_path, "x,y,diameter\n0,0,5\n10,abc,5\n", "b.csv"))
    with pytest.raises(RecipeError, match="no rows"):
        recipe_from_cad_csv(write(tmp_path, "x,y,diameter\n", "c.csv"))


def test_recipe_from_golden_part_puts_hole_one_at_the_origin():
    centers = np.array([[100.0, 50.0], [160.0, 50.0], [130.0, 90.0]])
    recipe = recipe_from_holes(centers, np.array([20.0, 20.0, 30.0]), name="golden", units="px",
                               position_tol=1.5, diameter_tol_fraction=0.05)
    np.testing.assert_allclose(recipe.points, centers - centers[0])
    np.testing.assert_allclose(recipe.diameter_tols[:, 1], [1.0, 1.0, 1.5])
    with pytest.raises(ValueError, match="finite"):
        recipe_from_holes(np.array([[np.nan, 0.0], [1, 1]]), np.array([1.0, 1.0]), name="g", units="mm",
                          position_tol=1)


def _recipe(name):
    return parse_recipe({"name": name, "units": "px", "defaults": {"position_tol": 1, "diameter_tol": 1},
                         "holes": [{"id": 1, "x": 0, "y": 0, "diameter": 20}, {"id": 2, "x": 50, "y": 0, "diameter": 20}]})


def test_library_selects_by_number_and_name():
    library = RecipeLibrary([_recipe("a"), _recipe("b")])
    assert library.active is None and library.active_number == 0
    assert library.select(2) == 2 and library.active.name == "b"
    assert library.select("a") == 1 and library.active.name == "a"
    assert library.select("2") == 2
    assert library.select(np.uint16(1)) == 1                   # a value read from a Modbus register
    assert library.select(0) == 0 and library.active is None
    with pytest.raises(RecipeSelectionError, match="out of range"):
        library.select(3)
    with pytest.raises(RecipeSelectionError, match="no recipe named 'c'"):
        library.select("c")
    assert library.active_number == 0          # a bad selection leaves the old one
    assert [d["name"] for d in library.describe()] == ["a", "b"]
    with pytest.raises(RecipeSelectionError, match="unique"):
        RecipeLibrary([_recipe("a"), _recipe("a")])


def test_library_from_files(tmp_path):
    save_recipe(_recipe("a"), tmp_path / "a.toml")
    save_recipe(_recipe("b"), tmp_path / "b.json")
    library = RecipeLibrary.from_files([tmp_path / "a.toml", tmp_path / "b.json"], active=2)
    assert library.active.name == "b" and len(library) == 2


# ----------------------------------------------------------------------------------------- commands

COMMANDS = ("holevision.runtime.commands.recipe", "holevision.runtime.commands.bench_inspect")


def run_cli(argv):
    from holevision.runtime import cli

    args = cli.build_parser(COMMANDS).parse_args(argv)
    return args.func(args)


def fake_detections(monkeypatch, centers, diameters):
    """Stand in for the model: the commands get these holes for any image."""
    import cv2

    from holevision.runtime.commands import recipe as command
    from holevision.runtime.detections import Holes

    holes = Holes(centers=centers, axes=np.stack([diameters] * 2, axis=1), angles=np.zeros(len(centers)),
                  scores=np.ones(len(centers)))
    monkeypatch.setattr(command, "_detect", lambda image, model: holes)
    return cv2


def test_from_cad_then_check(tmp_path, capsys):
    csv_path = write(tmp_path, "x,y,diameter\n0,0,6.6\n40,0,8\n20,25,6.6\n", "plate.csv")
    out = tmp_path / "plate.toml"
    assert run_cli(["recipe", "from-cad", "--csv", str(csv_path), "--out", str(out), "--position-tol", "0.3"]) == 0
    assert run_cli(["recipe", "check", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 holes" in text and "OK" in text and "units=mm" in text


def test_create_from_golden_then_inspect_exit_codes(tmp_path, monkeypatch, capsys):
    centers = np.array([[100.0, 100.0], [300.0, 110.0], [200.0, 260.0], [320.0, 300.0]])
    diameters = np.array([24.0, 24.0, 40.0, 30.0])
    cv2 = fake_detections(monkeypatch, centers, diameters)
    image = tmp_path / "part.png"
    cv2.imwrite(str(image), np.zeros((400, 500, 3), np.uint8))
    recipe_path = tmp_path / "golden.toml"
    assert run_cli(["recipe", "create", "--image", str(image), "--out", str(recipe_path)]) == 0
    assert run_cli(["inspect", str(image), "--recipe", str(recipe_path), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "OK"
    fake_detections(monkeypatch, centers[[0, 1, 3]], diameters[[0, 1, 3]])   # the 40 px hole is missing
    assert run_cli(["recipe", "inspect", str(image), "--recipe", str(recipe_path)]) == 1
    assert "MISSING" in capsys.readouterr().out
    fake_detections(monkeypatch, centers[:1], diameters[:1])
    assert run_cli(["inspect", str(image), "--recipe", str(recipe_path)]) == 4


def test_bench_inspect_writes_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert run_cli(["bench", "inspect", "--parts", "20", "--oot-parts", "5", "--seed", "3", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["parts"] == 20 and figures["oot_cases"] == 5
    assert "missing-hole recall" in capsys.readouterr().out


def test_mm_needs_a_calibrated_config(tmp_path, monkeypatch):
    centers = np.array([[100.0, 100.0], [300.0, 110.0], [200.0, 260.0]])
    cv2 = fake_detections(monkeypatch, centers, np.array([24.0, 24.0, 40.0]))
    image = tmp_path / "part.png"
    cv2.imwrite(str(image), np.zeros((400, 500, 3), np.uint8))
    config = write(tmp_path, "[calibration]\nmode = \"none\"\n", "holevision.toml")
    with pytest.raises(ValueError, match="no mm without a calibrated camera"):
        run_cli(["recipe", "create", "--image", str(image), "--config", str(config), "--out", str(tmp_path / "r.toml")])


def test_mm_recipe_from_a_golden_part_and_inspect(tmp_path, monkeypatch):
    from dataclasses import replace

    from holevision.runtime.commands import recipe as command

    centers = np.array([[100.0, 100.0], [300.0, 110.0], [200.0, 260.0], [320.0, 300.0]])
    cv2 = fake_detections(monkeypatch, centers, np.array([24.0, 24.0, 40.0, 30.0]))

    def to_mm(holes, config_path):          # a level work plane seen at 0.1 mm/px
        n = len(holes)
        return replace(holes, points_base=np.c_[holes.centers * 0.1, np.full(n, 5.0)],
                       approach_base=np.tile([0.0, 0.0, -1.0], (n, 1)), diameters_mm=holes.diameters_px * 0.1)

    monkeypatch.setattr(command, "_to_mm", to_mm)
    image = tmp_path / "part.png"
    cv2.imwrite(str(image), np.zeros((400, 500, 3), np.uint8))
    out = tmp_path / "mm.toml"
    assert run_cli(["recipe", "create", "--image", str(image), "--config", "cell.toml", "--out", str(out)]) == 0
    recipe = load_recipe(out)
    assert recipe.units == "mm" and recipe.holes[0].position_tol == 0.3
    np.testing.assert_allclose(recipe.diameters, [2.4, 2.4, 4.0, 3.0])
    assert run_cli(["inspect", str(image), "--recipe", str(out), "--config", "cell.toml"]) == 0
    with pytest.raises(ValueError, match="in mm but the detections are in px|no robot-frame positions"):
        run_cli(["inspect", str(image), "--recipe", str(out)])
