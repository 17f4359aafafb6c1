"""Training from a trained model: a run's best.pt, or a bundle's ONNX weights read back and checked."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from test_train import TINY_CONVNEXT, config, make_disc_dataset  # noqa: E402

from holevision.export.onnx_export import CameraInputModel  # noqa: E402
from holevision.export.train import build_model, train  # noqa: E402
from holevision.export.warm_start import (WarmStartError, load_initial_weights, scope_names_module,  # noqa: E402
                                          scope_path)
from holevision.runtime.bundle import load_bundle  # noqa: E402
from holevision.runtime.cli import main  # noqa: E402


def test_scope_paths_name_modules_with_wrappers_elided():
    assert scope_path("/model/stem/to_s2/to_s2.0/to_s2.0.0/Conv") == "model.stem.to_s2.0.0"
    assert scope_path("/model/backbone/stages.1/layers.0/pointwise_conv1/MatMul") == \
        "model.backbone.stages.1.layers.0.pointwise_conv1"
    assert scope_names_module("model.backbone.stages.1.layers.0.pointwise_conv1",
                              "model.backbone.hf.model.stages.1.layers.0.pointwise_conv1")
    assert not scope_names_module("model.backbone.stages.1.layers.0.pointwise_conv1",
                                  "model.backbone.hf.model.stages.2.layers.0.pointwise_conv1")
    assert not scope_names_module("model.decoder.lateral.0", "model.decoder.lateral.1")


def test_the_default_bundle_is_read_back_into_torch_exactly():
    model = build_model("nano", ["background", "hole"], {})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_initial_weights(model, "default")
    assert "read back from ONNX" in report
    changed = sum(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert changed > 100                                  # nearly every tensor came from the file
    # Our own check, beside the one inside load_initial_weights: a camera-like frame, torch vs the bundle.
    import onnxruntime as ort

    bundle = load_bundle("default")
    spec = bundle.manifest.input
    frame = np.zeros((1, spec.height, spec.width, 3), np.uint8)
    frame[:] = 170
    frame[0, 100:140, 120:160] = 30                       # a dark square "hole"
    session = ort.InferenceSession(str(bundle.model_file()), providers=["CPUExecutionProvider"])
    expected = session.run(["probs"], {session.get_inputs()[0].name: frame})[0]
    with torch.no_grad():
        got = CameraInputModel(model.eval())(torch.from_numpy(frame))[-1].numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_a_bundle_of_another_configuration_is_a_clear_error():
    model = build_model("nano", ["background", "hole"], TINY_CONVNEXT)
    with pytest.raises(WarmStartError, match="shape"):
        load_initial_weights(model, "default")
    with pytest.raises(WarmStartError, match="classes"):
        load_initial_weights(build_model("nano", ["background", "hole", "burr"], {}), "default")


def test_a_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(WarmStartError, match="not a bundle"):
        load_initial_weights(build_model("nano", ["background", "hole"], TINY_CONVNEXT), tmp_path)


def test_training_from_a_run_starts_from_its_best_weights(tmp_path):
    data = make_disc_dataset(tmp_path / "train", 6, seed=0)
    train(config(data, tmp_path / "first", epochs=1), progress=False)
    model = build_model("nano", ["background", "hole"], TINY_CONVNEXT)
    load_initial_weights(model, tmp_path / "first")
    best = torch.load(tmp_path / "first" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in best.items())


def test_fine_tuning_the_default_bundle_keeps_its_folded_batchnorm_fixed(tmp_path):
    data = make_disc_dataset(tmp_path / "train", 6, seed=0)
    result = train(config(data, tmp_path / "ft", overrides={}, init_from="default", epochs=1, steps_per_epoch=2,
                          batch=2, lr=1e-4), progress=False)
    assert np.isfinite(result["history"][0]["train_loss"])
    import json

    from holevision.runtime.bundle import DEFAULT_BUNDLE_DIR, sha256_file

    source = json.loads((tmp_path / "ft" / "config.json").read_text())["init_from_source"]
    assert source["kind"] == "bundle" and source["sha256"] == sha256_file(DEFAULT_BUNDLE_DIR / "manifest.json")
    state = torch.load(tmp_path / "ft" / "best.pt", weights_only=False)["model"]
    # BatchNorm stayed in eval mode: its statistics are still the identity the loader set.
    assert torch.equal(state["head.reduce.1.running_mean"], torch.zeros(32))
    assert int(state["head.reduce.1.num_batches_tracked"]) == 0


def test_cli_refuses_a_model_other_than_the_bundles(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--init-from", "default",
                 "--model", "dinov3-vits16"])
    assert code == 2
    assert "is a 'nano' model" in capsys.readouterr().err
