"""ONNX export: the camera contract inside the graph, static graphs (RoPE baked), and the parity gate."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from export_fixtures import HEIGHT, WIDTH, DiscDetector, disc_gate_images  # noqa: E402

from holevision.export.models import create_segmenter  # noqa: E402
from holevision.export.onnx_export import (ExportError, export_onnx, prepare_for_export,  # noqa: E402
                                           static_graph_problems)
from holevision.export.parity import GateError, OrtModel, check_parity, require  # noqa: E402

# The card's students and the edge student, as tiny random-init configs (nano at its real size).
SMALL_CONFIGS = {
    "nano": {},
    "dinov3-vits16": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "dinov3-convnext-tiny": dict(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1]),
}


def _model(name: str):
    torch.manual_seed(0)
    return create_segmenter(name, **SMALL_CONFIGS[name]).eval()


@pytest.mark.parametrize("name", sorted(SMALL_CONFIGS))
def test_every_small_config_exports_and_passes_the_parity_gate(tmp_path, name):
    model = _model(name)
    exported = export_onnx(model, tmp_path / "model.onnx", HEIGHT, WIDTH)
    graph = onnx.load(str(exported.path))
    assert max(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert exported.output_names == ["logits", "probs"]
    assert [o.name for o in graph.graph.output] == ["logits", "probs"]
    (graph_input,) = graph.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim] == [1, HEIGHT, WIDTH, 3]
    report = check_parity(model, exported.path, disc_gate_images(3))
    assert report.passed, report.summary()
    assert report.max_abs_logit_diff <= 1e-3
    assert report.holes.f1 == 1.0


def test_a_perturbed_weight_fails_the_parity_gate(tmp_path):
    model = _model("dinov3-convnext-tiny")
    exported = export_onnx(model, tmp_path / "model.onnx", HEIGHT, WIDTH)
    with torch.no_grad():
        model.head.parameters().__next__().mul_(1.5)   # the "trained" model now differs from the file
    report = check_parity(model, exported.path, disc_gate_images(2))
    assert not report.passed
    assert report.max_abs_logit_diff > 1e-3
    with pytest.raises(GateError, match="logit"):
        require(report)


def test_vit_graph_has_rope_baked_and_only_static_shapes(tmp_path):
    model = _model("dinov3-vits16")
    exported = export_onnx(model, tmp_path / "vit.onnx", HEIGHT, WIDTH)
    graph = onnx.load(str(exported.path))
    ops = {node.op_type for node in graph.graph.node}
    assert not ops & {"If", "Loop", "Tile", "Range", "Shape", "NonZero", "Cos", "Sin"}, ops
    assert static_graph_problems(graph) == []


def test_the_static_graph_check_catches_rope_computed_at_run_time(tmp_path):
    """Exported without baking, DINOv3's RoPE leaves Tile / shape logic behind and the check says so."""
    model = _model("dinov3-vits16")
    path = tmp_path / "raw.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 3, HEIGHT, WIDTH),), str(path), opset_version=18, dynamo=False,
                          input_names=["pixels"], output_names=["logits"])
    problems = static_graph_problems(onnx.load(str(path)))
    assert any("Tile" in p or "If" in p or "Shape" in p for p in problems), problems


def test_rope_baking_keeps_the_model_output(tmp_path):
    model = _model("dinov3-vits16")
    wrapped = prepare_for_export(model, HEIGHT, WIDTH)
    assert not any(type(m).__name__.endswith("RopePositionEmbedding") for m in wrapped.modules())
    pixels = torch.randn(1, 3, HEIGHT, WIDTH)
    with torch.no_grad():
        torch.testing.assert_close(wrapped.model(pixels).logits, model(pixels).logits, rtol=0, atol=1e-6)


def test_graph_takes_bgr_camera_pixels_and_normalizes_inside(tmp_path):
    """ONNX fed uint8 BGR == torch fed float RGB normalized by hand (a channel swap would show here)."""
    model = DiscDetector().eval()
    torch.manual_seed(1)
    with torch.no_grad():
        model.grey.weight.copy_(torch.randn_like(model.grey.weight))   # make the channels distinguishable
    exported = export_onnx(model, tmp_path / "model.onnx", HEIGHT, WIDTH)
    image_bgr = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    rgb = image_bgr[..., ::-1].astype(np.float32) / 255.0
    normalized = (rgb - np.array(model.mean, np.float32)) / np.array(model.std, np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(normalized.transpose(2, 0, 1)[None].copy())).logits.numpy()
    out = OrtModel(exported.path).run(image_bgr)
    np.testing.assert_allclose(out["logits"], expected, atol=1e-4)
    np.testing.assert_allclose(out["probs"].sum(axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        swapped = (image_bgr.astype(np.float32) / 255.0 - np.array(model.mean, np.float32)) / np.array(model.std, np.float32)
        wrong = model(torch.from_numpy(swapped.transpose(2, 0, 1)[None].copy())).logits.numpy()
    assert np.abs(out["logits"] - wrong).max() > 1e-2


def test_export_size_must_be_a_multiple_of_32(tmp_path):
    with pytest.raises(ExportError, match="multiple of 32"):
        export_onnx(DiscDetector(), tmp_path / "m.onnx", 60, 96)


def test_opset_below_17_is_refused(tmp_path):
    with pytest.raises(ExportError, match="opset"):
        export_onnx(DiscDetector(), tmp_path / "m.onnx", HEIGHT, WIDTH, opset=16)
