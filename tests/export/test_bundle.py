"""The model bundle: export writes a verified folder; verify catches tampering; the manifest round-trips."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from export_fixtures import (HEIGHT, WIDTH, DiscDetector, disc_gate_images, disc_images,  # noqa: E402
                             labeled_disc_images)

from holevision.export.bundle_writer import publish_bundle, staging_folder  # noqa: E402
from holevision.export.exporter import ExportOptions, export_bundle  # noqa: E402
from holevision.export.parity import GateError  # noqa: E402
from holevision.runtime.bundle import (DEFAULT_BUNDLE_DIR, MANIFEST, BundleError, Manifest,  # noqa: E402
                                       load_bundle, parse_plan_file_name, plan_file_name, read_manifest,
                                       verify_bundle, write_manifest)
from holevision.runtime.cli import main  # noqa: E402

OPTIONS = ExportOptions(height=HEIGHT, width=WIDTH, int8=True)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "discs"
    result = export_bundle(DiscDetector(), out, disc_gate_images(3), options=OPTIONS,
                           calibration_images=disc_images(4, seed=5), provenance={"seed": 0, "note": "test"},
                           quality_sets={"discs": labeled_disc_images(4, seed=9)}, report=lambda text: None)
    return result


def _copy(bundle_path, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(bundle_path, target)
    return target


def test_export_writes_a_bundle_that_verifies_and_loads(bundle):
    assert verify_bundle(bundle.path) == []
    loaded = load_bundle(bundle.path)
    m = loaded.manifest
    assert sorted(m.files) == ["model.int8.onnx", "model.onnx"]
    assert (m.input.height, m.input.width, m.input.dtype, m.input.layout, m.input.color) == \
        (HEIGHT, WIDTH, "uint8", "NHWC", "BGR")
    assert m.outputs.names == ["logits", "probs"] and m.outputs.probabilities == "probs"
    assert m.outputs.classes == ["background", "hole"]
    assert m.metrics["parity_fp32"]["passed"] and m.metrics["parity_fp32"]["max_abs_logit_diff"] <= 1e-3
    assert m.metrics["int8"]["passed"]
    quality = m.metrics["quality"]["discs"]
    assert quality["images"] == 4 and set(quality) >= {"fp32", "int8"}
    assert quality["fp32"]["f1"] == 1.0 and quality["fp32"]["center_rms_px"] < 0.5   # every disc, well centered
    assert m.parameters > 0 and m.gflops > 0
    assert m.provenance == {"seed": 0, "note": "test"}
    assert loaded.model_file("int8").name == "model.int8.onnx"
    assert not list(bundle.path.parent.glob("*.staging"))


def test_verify_catches_a_changed_byte_and_names_the_file(bundle, tmp_path, capsys):
    copy = _copy(bundle.path, tmp_path)
    model = copy / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    problems = verify_bundle(copy)
    assert len(problems) == 1 and "model.int8.onnx" in problems[0] and "sha256" in problems[0]
    with pytest.raises(BundleError, match="model.int8.onnx"):
        load_bundle(copy)
    assert main(["bundle", "verify", str(copy)]) == 1
    assert "model.int8.onnx" in capsys.readouterr().out
    assert main(["bundle", "verify", str(bundle.path)]) == 0


def test_verify_catches_missing_and_unlisted_files(bundle, tmp_path):
    copy = _copy(bundle.path, tmp_path)
    (copy / "model.int8.onnx").unlink()
    (copy / "extra.onnx").write_bytes(b"not a model")
    problems = "\n".join(verify_bundle(copy))
    assert "model.int8.onnx: missing" in problems
    assert "extra.onnx: model file not listed" in problems


def test_manifest_round_trip(bundle, tmp_path):
    manifest = read_manifest(bundle.path)
    text = (bundle.path / MANIFEST).read_text()
    assert Manifest.model_validate(json.loads(text)) == manifest
    copy = _copy(bundle.path, tmp_path)
    rewritten = write_manifest(copy, manifest)
    assert rewritten == manifest
    assert (copy / MANIFEST).read_text() == text


def test_a_broken_manifest_is_a_clear_error(bundle, tmp_path):
    copy = _copy(bundle.path, tmp_path)
    data = json.loads((copy / MANIFEST).read_text())
    data["input"]["height"] = 100
    (copy / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"manifest.json: invalid manifest: input.height"):
        read_manifest(copy)


def test_bundle_info_prints_the_contract_and_gates(bundle, capsys):
    assert main(["bundle", "info", str(bundle.path)]) == 0
    out = capsys.readouterr().out
    assert "disc-detector" in out and f"(1, {HEIGHT}, {WIDTH}, 3)" in out and "parity" in out and "int8" in out
    assert main(["bundle", "info", str(bundle.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == bundle.manifest.name


def test_a_failed_parity_gate_writes_nothing(tmp_path, monkeypatch):
    from holevision.export import exporter
    from holevision.export.gate_metrics import HoleAgreement
    from holevision.export.parity import ParityReport

    import numpy as np

    failing = ParityReport("model.onnx", 2, 0.5, 0.1, HoleAgreement(1, 1, 0, np.zeros(1)))
    monkeypatch.setattr(exporter, "check_parity", lambda *a, **k: failing)
    out = tmp_path / "bundle"
    with pytest.raises(GateError, match="logit"):
        export_bundle(DiscDetector(), out, disc_gate_images(1), options=ExportOptions(height=HEIGHT, width=WIDTH),
                      report=lambda text: None)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_publish_refuses_to_overwrite_a_folder_that_is_not_a_bundle(bundle, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    staging = staging_folder(precious)
    (staging / "model.onnx").write_bytes((bundle.path / "model.onnx").read_bytes())
    with pytest.raises(BundleError, match="not a bundle folder"):
        publish_bundle(staging, precious, bundle.manifest)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_plan_names_round_trip_and_select_by_tensorrt_and_gpu(bundle):
    name = plan_file_name("10.8.0.43", "8.9")
    assert name == "model.trt10.8-sm89.plan"
    assert plan_file_name("10.8", (9, 0), "int8") == "model.int8.trt10.8-sm90.plan"
    assert parse_plan_file_name(name) == {"precision": "fp32", "tensorrt": "10.8", "compute_capability": "89"}
    assert parse_plan_file_name("model.onnx") is None
    with pytest.raises(ValueError, match="TensorRT version"):
        plan_file_name("ten", "89")
    assert load_bundle(bundle.path).plan_for("10.8", "89") is None


def test_the_packaged_default_bundle_verifies_and_fits_in_10_mb():
    assert verify_bundle(DEFAULT_BUNDLE_DIR) == []
    total = sum(f.stat().st_size for f in DEFAULT_BUNDLE_DIR.iterdir() if f.is_file())
    assert total <= 10 * 1024 * 1024, f"default bundle is {total / 1e6:.1f} MB"
    manifest = load_bundle().manifest
    assert manifest.outputs.classes[:2] == ["background", "hole"]


def test_size_budget_leaves_out_optional_files_first(tmp_path, bundle):
    from holevision.export.exporter import apply_size_budget

    folder = tmp_path / "f"
    folder.mkdir()
    for name, size in (("model.onnx", 600_000), ("model.int8.onnx", 300_000), ("model.fp16.onnx", 300_000)):
        (folder / name).write_bytes(b"x" * size)
    assert apply_size_budget(folder, 1.0) == ["model.fp16.onnx"]
    assert apply_size_budget(folder, 0.7) == ["model.int8.onnx"]
    assert sorted(f.name for f in folder.iterdir()) == ["model.onnx"]
    with pytest.raises(ValueError, match="required files"):
        apply_size_budget(folder, 0.5)
