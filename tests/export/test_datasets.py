"""Dataset readers (COCO polygons + RLE, YOLO-seg, mask folders), the COCO writer and the checker,
on small fixtures built here, including malformed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from holevision.export.datasets import (
    Dataset, DatasetError, Instance, Sample, check_dataset, load_dataset, polygons_from_mask, write_coco,
)
from holevision.export.datasets.rle import counts_to_rle_string, rle_decode, rle_encode, rle_string_to_counts
from holevision.export.datasets.yolo import parse_names_yaml
from holevision.runtime.cli import main


def _image(path: Path, w=64, h=48, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))
    return path


def _coco(folder: Path, annotations, images=None, categories=None, name="annotations.json"):
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"images": images if images is not None else [{"id": 1, "file_name": "images/a.png", "width": 64, "height": 48}],
           "annotations": annotations,
           "categories": categories if categories is not None else [{"id": 1, "name": "hole"}]}
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


def test_rle_round_trip_and_compressed_string():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((13, 17)) < rng.uniform(0.05, 0.9)
        counts = rle_encode(mask)
        assert sum(counts) == mask.size
        assert np.array_equal(rle_decode(counts, 13, 17), mask)
        text = counts_to_rle_string(counts)
        assert rle_string_to_counts(text) == counts
        assert np.array_equal(rle_decode(text, 13, 17), mask)
    assert rle_string_to_counts(counts_to_rle_string([1, 10, 3, 2])) == [1, 10, 3, 2]  # negative delta
    with pytest.raises(ValueError, match="sum"):
        rle_decode([1, 2], 3, 3)


def test_coco_write_read_round_trip(tmp_path):
    _image(tmp_path / "images" / "a.png")
    mask = np.zeros((48, 64), bool)
    mask[10:20, 30:41] = True
    square = np.array([[5.0, 5.0], [15.0, 5.0], [15.0, 15.0], [5.0, 15.0]])
    sample = Sample(image_path=tmp_path / "images" / "a.png", width=64, height=48, meta={"seed": 3}, instances=[
        Instance("hole", polygon=square, center=(10.0, 10.0), axes=(10.0, 10.0), angle_deg=0.0,
                 attributes={"kind": "blind"}),
        Instance("hole", mask=mask)])
    path = write_coco(Dataset(root=tmp_path, classes=["hole"], samples=[sample]), tmp_path / "annotations.json")
    first = path.read_bytes()
    write_coco(Dataset(root=tmp_path, classes=["hole"], samples=[sample]), path)
    assert path.read_bytes() == first  # deterministic
    back = load_dataset(tmp_path)
    assert back.format == "coco" and back.classes == ["hole"] and not back.problems
    (s,) = back.samples
    assert s.image_path == tmp_path / "images" / "a.png" and s.meta["seed"] == 3
    a, b = s.instances
    assert np.allclose(a.polygon, square) and a.center == (10.0, 10.0) and a.attributes["kind"] == "blind"
    assert np.array_equal(b.mask, mask)
    semantic = s.semantic_mask(["background", "hole"])
    assert semantic[10, 10] == 1 and semantic[15, 35] == 1 and semantic[30, 5] == 0
    assert semantic.sum() == 11 * 11 + 10 * 11


def test_mask_to_polygon_to_mask_is_lossless():
    mask = np.zeros((40, 40), bool)
    cv2.ellipse(mask.view(np.uint8), (20, 18), (9, 5), 30, 0, 360, 1, -1)
    mask[2, 2] = True  # a one-pixel piece
    polys = polygons_from_mask(mask)
    inst = Instance("hole", polygon=polys[0], extra_polygons=polys[1:])
    assert np.array_equal(inst.rasterize(40, 40), mask)


@pytest.mark.parametrize("doc,message", [
    ("{not json", "annotations.json: not valid JSON"),
    ('{"annotations": []}', "annotations.json: images: missing"),
])
def test_coco_malformed_files(tmp_path, doc, message):
    (tmp_path / "annotations.json").write_text(doc)
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path)


@pytest.mark.parametrize("segmentation,message", [
    ([[1, 2, 3, 4, 5]], r"annotations\[0\]\.segmentation\[0\]: odd number of coordinates"),
    ([[1, 2, 3, 4]], r"annotations\[0\]\.segmentation\[0\]: a polygon needs at least 3 points"),
    ([[1, 2, "x", 4, 5, 6]], r"annotations\[0\]\.segmentation\[0\]\[2\]: expected a finite number"),
    ("oops", r"annotations\[0\]\.segmentation: expected a polygon list or an RLE object"),
    ({"counts": [5]}, r"annotations\[0\]\.segmentation: RLE needs 'counts' and 'size'"),
    ({"counts": [5], "size": [48, 64]}, r"annotations\[0\]\.segmentation\.counts: RLE counts sum to 5"),
])
def test_coco_malformed_segmentation_names_file_and_field(tmp_path, segmentation, message):
    _image(tmp_path / "images" / "a.png")
    _coco(tmp_path, [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation}])
    with pytest.raises(DatasetError, match="annotations.json: " + message):
        load_dataset(tmp_path / "annotations.json")


def test_check_reports_every_problem_as_file_lines_and_cli_exits_nonzero(tmp_path, capsys):
    _image(tmp_path / "images" / "a.png")
    _image(tmp_path / "images" / "big.png", w=100, h=100)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    images = [{"id": 1, "file_name": "images/a.png", "width": 64, "height": 48},
              {"id": 2, "file_name": "images/broken.png", "width": 64, "height": 48},
              {"id": 3, "file_name": "images/gone.png", "width": 64, "height": 48},
              {"id": 4, "file_name": "images/big.png", "width": 64, "height": 48}]
    rle = {"size": [10, 10], "counts": [100]}
    _coco(tmp_path, images=images, categories=[{"id": 1, "name": "hole"}], annotations=[
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 20, 2, 20, 20]]},
        {"id": 2, "image_id": 1, "category_id": 7, "segmentation": [[2, 2, 20, 2, 20, 20]]},
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 90, 2, 20, 20]]},
        {"id": 4, "image_id": 1, "category_id": 1, "segmentation": rle},
    ])
    report = check_dataset(tmp_path)
    text = "\n".join(report.problems)
    assert "a.png: unknown class: category_id 7" in text
    assert "a.png: polygon outside the image: point (90.0, 2.0)" in text
    assert "a.png: mask size mismatch: annotation RLE is 10x10, image is 64x48" in text
    assert "broken.png: unreadable image" in text
    assert "gone.png: missing image" in text
    assert "big.png: image is 100x100, labels say 64x48" in text
    assert len(report.problems) == 6
    assert report.images == 4 and report.instances == 2 and report.class_histogram == {"hole": 2}
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "problems: 6" in out and "hole size" in out


def test_check_on_a_malformed_file_is_one_problem(tmp_path):
    (tmp_path / "annotations.json").write_text("[1, 2]")
    report = check_dataset(tmp_path)
    assert len(report.problems) == 1 and "annotations.json: expected a JSON object" in report.problems[0]
    assert main(["data", "check", str(tmp_path / "nothing-here")]) == 1


@pytest.mark.parametrize("yaml_text", [
    "train: images\nnames: ['hole', 'burr']\n",
    "nc: 2\nnames:\n  0: hole\n  1: burr\npath: .\n",
    "names:\n- hole\n- burr\n",
    "names: {0: hole, 1: burr}\n",
])
def test_yolo_names_yaml_variants(tmp_path, yaml_text):
    (tmp_path / "data.yaml").write_text(yaml_text)
    assert parse_names_yaml(tmp_path / "data.yaml") == ["hole", "burr"]


def test_yolo_seg_reader(tmp_path):
    root = tmp_path / "yolo"
    _image(root / "train" / "images" / "a.png", w=100, h=50)
    _image(root / "train" / "images" / "b.jpg", w=100, h=50)
    (root / "train" / "labels").mkdir(parents=True)
    (root / "train" / "labels" / "a.txt").write_text("0 0.1 0.2 0.3 0.2 0.3 0.6\n\n1 0.5 0.5 0.6 0.5 0.6 0.9\n")
    (root / "train" / "labels" / "b.txt").write_text("5 0.1 0.1 0.2 0.1 0.2 0.2\n0 0.9 0.9 1.2 0.9 1.0 1.0\n")
    (root / "data.yaml").write_text("names: [hole, burr]\n")
    ds = load_dataset(root)
    assert ds.format == "yolo-seg" and ds.classes == ["hole", "burr"]
    a = next(s for s in ds.samples if s.image_path.name == "a.png")
    assert [i.class_name for i in a.instances] == ["hole", "burr"]
    assert np.allclose(a.instances[0].polygon[0], [0.1 * 100 - 0.5, 0.2 * 50 - 0.5])
    assert any("b.txt: unknown class: id 5 on line 1" in p for p in ds.problems)
    assert any("b.txt: polygon outside the image: line 2" in p for p in ds.problems)
    (root / "train" / "labels" / "a.txt").write_text("0 0.1 0.2 0.3\n0 0.1 zero 0.3 0.2 0.3 0.6\n")
    with pytest.raises(DatasetError, match="a.txt:1: a polygon needs an even number"):
        load_dataset(root)
    (root / "train" / "labels" / "a.txt").write_text("0 0.1 0.2 0.3 0.2 0.3 0.6\n0 0.1 zero 0.3 0.2 0.3 0.6\n")
    with pytest.raises(DatasetError, match="a.txt:2: expected 'class x1 y1 x2 y2 ...' numbers"):
        load_dataset(root)


def test_mask_folder_instance_and_class_masks(tmp_path):
    root = tmp_path / "m"
    _image(root / "images" / "a.png")
    _image(root / "images" / "b.png")
    inst = np.zeros((48, 64), np.uint16)
    inst[5:10, 5:10] = 1
    inst[20:30, 20:30] = 300
    (root / "masks").mkdir()
    cv2.imwrite(str(root / "masks" / "a.png"), inst)
    cv2.imwrite(str(root / "masks" / "b.png"), np.zeros((10, 10), np.uint8))
    ds = load_dataset(root)
    assert ds.format == "mask-folder" and ds.classes == ["hole"]
    a = next(s for s in ds.samples if s.image_path.name == "a.png")
    assert sorted(i.mask.sum() for i in a.instances) == [25, 100]
    assert ds.problems == ["b.png: mask size mismatch: 10x10, image b.png is 64x48"]
    # class-index masks when classes.txt names the background and the classes
    (root / "classes.txt").write_text("background\nhole\n")
    semantic = np.zeros((48, 64), np.uint8)
    semantic[1:4, 1:4] = 1
    semantic[30:34, 40:44] = 1
    semantic[40:42, 0:2] = 9
    cv2.imwrite(str(root / "masks" / "a.png"), semantic)
    ds = load_dataset(root)
    a = next(s for s in ds.samples if s.image_path.name == "a.png")
    assert len(a.instances) == 2 and ds.classes == ["hole"]
    assert any("a.png: unknown class: value 9" in p for p in ds.problems)


def test_unknown_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no dataset found"):
        load_dataset(tmp_path)


def test_roboflow_coco_layout_and_supercategory_entry(tmp_path):
    split = tmp_path / "train"
    _image(split / "p1.jpg")
    _coco(split, name="_annotations.coco.json",
          images=[{"id": 0, "file_name": "p1.jpg", "width": 64, "height": 48}],
          categories=[{"id": 0, "name": "holes", "supercategory": "none"},
                      {"id": 1, "name": "hole", "supercategory": "holes"},
                      {"id": 2, "name": "burr", "supercategory": "holes"}],
          annotations=[{"id": 0, "image_id": 0, "category_id": 1, "iscrowd": 0,
                        "segmentation": [[10, 10, 20, 10, 20, 20, 10, 20]], "bbox": [10, 10, 10, 10], "area": 100}])
    ds = load_dataset(split)
    assert ds.classes == ["hole", "burr"] and ds.samples[0].image_path == split / "p1.jpg"
    assert check_dataset(split).problems == []


def test_choose_images_takes_every_hard_one_and_a_seeded_draw_of_the_rest():
    from holevision.export.datasets.subset import choose_images

    rows = [{"image": f"{k}.png", "missed": k % 3} for k in range(12)]   # 0, 1, 2, 0, 1, 2 ...
    hard, others = choose_images(rows, others=2, seed=7)
    assert hard == [f"{k}.png" for k in range(12) if k % 3]
    assert len(others) == 2 and set(others) <= {f"{k}.png" for k in range(0, 12, 3)}
    assert others == sorted(others, key=lambda name: int(name.split(".")[0]))     # the rows' order
    assert choose_images(rows, others=2, seed=7) == (hard, others)
    assert choose_images(rows, min_missed=2, others=99)[0] == [f"{k}.png" for k in range(2, 12, 3)]
    assert len(choose_images(rows, min_missed=2, others=99)[1]) == 8     # all the rest
    with pytest.raises(ValueError, match="others must be >= 0"):
        choose_images(rows, others=-1)


@pytest.mark.parametrize("doc, message", [
    ("[1, 2]", "images: expected the list"),
    ('{"images": [{"image": "a.png"}]}', r"images\[0\]: missing missed"),
    ('{"images": [{"image": "a.png", "missed": -1}]}', r"images\[0\].missed: expected a count"),
    ("{not json", "not JSON"),
])
def test_a_bad_per_image_report_names_the_file_and_field(tmp_path, doc, message):
    from holevision.export.datasets.subset import read_per_image

    path = tmp_path / "report.json"
    path.write_text(doc)
    with pytest.raises(DatasetError, match=message):
        read_per_image(path)
    with pytest.raises(DatasetError, match="no such file"):
        read_per_image(tmp_path / "absent.json")
