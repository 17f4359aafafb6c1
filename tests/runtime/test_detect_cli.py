"""`holevision detect`: table, JSON, overlay, folders and globs, unreadable files, bad bundles."""

from __future__ import annotations

import functools
import json

import cv2
import numpy as np
import pytest

from holevision.runtime import cli
from holevision.runtime.benchmarks.hole_scenes import render_holes
from holevision.runtime.commands.detect import expand_images

pytest.importorskip("onnxruntime")

@pytest.fixture(autouse=True)
def only_the_detect_command(monkeypatch):
    """Parse with the detect command alone, so these tests do not depend on other commands' modules."""
    monkeypatch.setattr(cli, "build_parser", functools.partial(
        cli.build_parser, modules=("holevision.runtime.commands.detect",)))


CENTERS = np.array([[150.3, 60.2], [60.7, 61.1], [100.2, 140.6]])
DIAMETERS = np.array([22.0, 16.0, 30.0])


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        scene = render_holes((220, 190), CENTERS + i, DIAMETERS, seed=i, color=True)
        cv2.imwrite(str(folder / f"part{i}.png"), scene.image)
    return folder


def test_one_image_table_json_and_overlay(fake_bundle, images, tmp_path, capsys):
    out = tmp_path / "result.json"
    rc = cli.main(["detect", str(images / "part0.png"), "--model", str(fake_bundle), "--json", str(out),
                   "--overlay", str(tmp_path / "overlays")])
    assert rc == 0
    table = capsys.readouterr().out
    assert "3 holes" in table and "diameter" in table
    document = json.loads(out.read_text())
    assert document["v"] == 1 and document["width"] == 220 and document["height"] == 190
    assert document["model"]["name"] == "fake-dark-pixels" and len(document["model"]["sha256"]) == 64
    rows = document["holes"]
    assert [r["id"] for r in rows] == [1, 2, 3]
    # ids: left-to-right in the top row, then the next row
    assert rows[0]["u"] == pytest.approx(60.7, abs=0.05) and rows[1]["u"] == pytest.approx(150.3, abs=0.05)
    assert rows[2]["diameter_px"] == pytest.approx(30.0, abs=0.1)
    assert set(document["timings_ms"]) >= {"decode", "preprocess", "model", "extract"}
    overlay = cv2.imread(str(tmp_path / "overlays" / "part0_holes.png"))
    assert overlay is not None and overlay.shape[1] == 220 and overlay.shape[0] > 190  # legend strip below


def test_folder_glob_and_an_unreadable_file(fake_bundle, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"this is not a png")
    out = tmp_path / "all.json"
    rc = cli.main(["detect", str(images), str(images / "part*.png"), "--model", str(fake_bundle),
                   "--json", str(out)])
    assert rc == 1, "exit status says not every image was processed"
    err = capsys.readouterr().err
    assert "broken.png" in err and "not a readable image" in err
    documents = json.loads(out.read_text())
    assert [d["image"].rsplit("/", 1)[-1] for d in documents] == ["part0.png", "part1.png"]
    assert all(len(d["holes"]) == 3 for d in documents)


def test_missing_file_and_empty_glob_are_reported(fake_bundle, images, tmp_path, capsys):
    rc = cli.main(["detect", str(images / "part0.png"), str(tmp_path / "nope.png"), str(tmp_path / "*.jpg"),
                   "--model", str(fake_bundle)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "nope.png" in err and "no files match" in err


def test_bad_bundle_is_a_clear_error(images, tmp_path, capsys):
    rc = cli.main(["detect", str(images / "part0.png"), "--model", str(tmp_path / "no_bundle")])
    assert rc == 2
    assert "no_bundle" in capsys.readouterr().err


def test_json_to_stdout(fake_bundle, images, capsys):
    rc = cli.main(["detect", str(images / "part1.png"), "--model", str(fake_bundle), "--json", "-"])
    assert rc == 0
    assert len(json.loads(capsys.readouterr().out)["holes"]) == 3


def test_expand_images_keeps_order_and_drops_duplicates(images):
    paths, problems = expand_images([str(images / "part1.png"), str(images)])
    assert [p.name for p in paths] == ["part1.png", "part0.png"] and not problems
