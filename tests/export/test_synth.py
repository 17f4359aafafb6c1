"""`holevision synth`: byte-identical output for the same arguments, a clean `data check`, labels that
agree with the masks, and images that can be regenerated alone from their seed."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np

from holevision.export.datasets import check_dataset, load_dataset
from holevision.export.synth import image_seed, write_synthetic_dataset
from holevision.runtime.cli import main
from holevision.runtime.synthparts import render_scene


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_files_and_another_seed_does_not(tmp_path):
    kwargs = dict(count=3, width=192, height=160, style="mixed", preview=True, progress=False)
    write_synthetic_dataset(tmp_path / "a", seed=5, **kwargs)
    write_synthetic_dataset(tmp_path / "b", seed=5, **kwargs)
    write_synthetic_dataset(tmp_path / "c", seed=6, **kwargs)
    a, b, c = (_digests(tmp_path / n) for n in "abc")
    assert set(a) == {"annotations.json", "preview.png", *(f"{d}/{i:06d}.png" for d in ("images", "masks") for i in range(3))}
    assert a == b
    assert all(a[name] != c[name] for name in a if name.startswith("images/"))


def test_written_dataset_checks_clean_and_labels_match_masks(tmp_path):
    summary = write_synthetic_dataset(tmp_path, count=4, seed=2, width=256, height=208, style="mixed",
                                      progress=False)
    report = check_dataset(tmp_path)
    assert report.problems == [] and report.images == 4
    assert report.instances == summary["holes"] > 0
    ds = load_dataset(tmp_path)
    doc = json.loads((tmp_path / "annotations.json").read_text())
    assert doc["categories"] == [{"id": 1, "name": "hole", "supercategory": "object"}]
    for sample in ds.samples:
        mask = cv2.imread(str(tmp_path / sample.meta["mask_file"]), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint16 and mask.shape == (208, 256)
        assert len(sample.instances) == int(mask.max())
        for inst in sample.instances:
            ident = inst.attributes["instance_id"]
            # the polygon rasterizes back to exactly the mask's pixels
            assert np.array_equal(inst.rasterize(208, 256), mask == ident)
            assert inst.center is not None and inst.axes[0] >= inst.axes[1] > 0
            assert inst.attributes["kind"] in ("through", "blind", "threaded", "countersunk", "chamfered", "cad")
        for part in sample.meta["parts"]:
            assert {"holes", "missing", "material", "scale_px_per_mm", "rotation_deg", "center_px"} <= set(part)


def test_any_image_regenerates_alone_from_its_seed(tmp_path):
    write_synthetic_dataset(tmp_path, count=2, seed=9, width=160, height=128, style="photo", progress=False)
    doc = json.loads((tmp_path / "annotations.json").read_text())
    entry = doc["images"][1]
    assert entry["seed"] == image_seed(9, 1)
    scene = render_scene(entry["seed"], 160, 128, "photo")
    assert np.array_equal(scene.image, cv2.imread(str(tmp_path / entry["file_name"]), cv2.IMREAD_COLOR))


def test_cli_synth_then_data_check(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["synth", "--out", str(out), "--count", "2", "--seed", "1", "--size", "128x96",
                 "--style", "cad", "--no-progress"]) == 0
    assert main(["data", "check", str(out)]) == 0
    assert "problems: 0" in capsys.readouterr().out


def test_rerun_into_the_same_folder_leaves_exactly_the_new_dataset(tmp_path):
    write_synthetic_dataset(tmp_path, count=3, seed=1, width=96, height=80, style="cad", progress=False)
    write_synthetic_dataset(tmp_path, count=2, seed=1, width=96, height=80, style="cad", progress=False)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["000000.png", "000001.png"]
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["000000.png", "000001.png"]
    assert check_dataset(tmp_path).problems == []


def test_cli_synth_squares_is_recorded_and_each_image_regenerates_with_it(tmp_path):
    out = tmp_path / "sq"
    assert main(["synth", "--out", str(out), "--count", "2", "--seed", "4", "--size", "160x128",
                 "--style", "photo", "--squares", "--no-progress"]) == 0
    doc = json.loads((out / "annotations.json").read_text())
    assert doc["info"]["squares"] is True
    entry = doc["images"][0]
    scene = render_scene(entry["seed"], 160, 128, "photo", squares=True)
    assert np.array_equal(scene.image, cv2.imread(str(out / entry["file_name"]), cv2.IMREAD_COLOR))
    plain = tmp_path / "plain"
    write_synthetic_dataset(plain, count=1, seed=4, width=160, height=128, style="photo", progress=False)
    assert "squares" not in json.loads((plain / "annotations.json").read_text())["info"]
