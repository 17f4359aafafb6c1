"""Segmenter registry, forward shapes on odd sizes, weights in both formats, FLOPs."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from holevision.export.models import (  # noqa: E402
    WeightsError, count_parameters, create_segmenter, estimate_gflops, hf_to_official, list_segmenters,
)

TINY = {
    "vit": dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                decoder_channels=16, stem_channels=(8, 8, 16)),
    "convnext": dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1], decoder_channels=16, stem_channels=(8, 8, 16)),
}
# Published backbone sizes (millions of parameters) of the DINOv3 releases our specs mirror.
PUBLISHED_BACKBONE_M = {"dinov3-vits16": 21.6, "dinov3-vitb16": 86.6, "dinov3-vitl16": 304.4,
                        "dinov3-convnext-tiny": 28.6, "dinov3-convnext-small": 50.2,
                        "dinov3-convnext-base": 88.6, "dinov3-convnext-large": 197.8}


def tiny(name: str, **kwargs):
    kind = "vit" if "vit" in name else "convnext"
    return create_segmenter(name, **TINY[kind], **kwargs)


def test_registry_has_the_card_models():
    names = set(list_segmenters())
    assert set(PUBLISHED_BACKBONE_M) | {"nano"} <= names
    with pytest.raises(ValueError, match="unknown model 'dinov3-vit-huge'.*registered"):
        create_segmenter("dinov3-vit-huge")


@pytest.mark.parametrize("name", sorted(PUBLISHED_BACKBONE_M))
def test_full_size_specs_match_published_backbones(name):
    with torch.device("meta"):
        model = create_segmenter(name)
    backbone_m = count_parameters(model.backbone) / 1e6
    assert backbone_m == pytest.approx(PUBLISHED_BACKBONE_M[name], rel=0.03)


def test_nano_is_smaller_than_convnext_tiny():
    with torch.device("meta"):
        nano, tiny_model = create_segmenter("nano"), create_segmenter("dinov3-convnext-tiny")
    assert count_parameters(nano) < count_parameters(tiny_model) / 5
    assert nano.backbone.channels == [32, 64, 128, 256]


@pytest.mark.parametrize("name", list_segmenters())
@pytest.mark.parametrize("size", [(64, 64), (45, 77)])
def test_every_model_runs_on_any_size_and_returns_input_size_logits(name, size):
    torch.manual_seed(0)
    model = tiny(name, classes=("background", "hole", "defect")).eval()
    assert model.input_multiple == 32 and len(model.mean) == 3 and model.name == name
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out._fields[0] == "logits"
    assert out.logits.shape == (2, 3, *size)
    assert torch.isfinite(out.logits).all()


def test_padding_never_crops_the_content():
    torch.manual_seed(0)
    model = tiny("nano").eval()
    x = torch.randn(1, 3, 40, 50)
    with torch.no_grad():
        small = model(x).logits
        # The same image placed in the top-left of a 64x64 canvas gives the same logits (pad is at bottom/right).
        padded = torch.zeros(1, 3, 64, 64)
        padded[..., :40, :50] = x
        big = model(padded).logits[..., :40, :50]
    assert torch.allclose(small, big, atol=1e-5)


def test_bad_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        tiny("nano")(torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("name", ["dinov3-vits16", "dinov3-convnext-tiny"])
def test_hf_folder_weights_round_trip(tmp_path, name):
    torch.manual_seed(1)
    source = tiny(name).eval()
    source.backbone.hf.save_pretrained(tmp_path / "hf")
    assert (tmp_path / "hf" / "config.json").is_file() and (tmp_path / "hf" / "model.safetensors").is_file()
    torch.manual_seed(2)
    loaded = tiny(name, weights=tmp_path / "hf").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source.backbone(x)[-1], loaded.backbone(x)[-1])


@pytest.mark.parametrize("name,official_key", [("dinov3-vits16", "blocks.0.attn.qkv.weight"),
                                               ("dinov3-convnext-tiny", "stages.2.1.pwconv1.weight")])
def test_official_pth_weights_round_trip(tmp_path, name, official_key):
    torch.manual_seed(1)
    source = tiny(name).eval()
    kind = source.backbone.kind
    official = hf_to_official(source.backbone.hf.state_dict(), kind)
    assert official_key in official
    if kind == "vit":
        official["rope_embed.periods"] = torch.ones(4)  # buffers the official file carries are ignored
    torch.save({"teacher": {f"backbone.{k}": v for k, v in official.items()}}, tmp_path / "dinov3.pth")
    torch.manual_seed(3)
    loaded = tiny(name, weights=tmp_path / "dinov3.pth").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source.backbone(x)[-1], loaded.backbone(x)[-1])


def test_missing_and_wrong_weights_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match="nowhere.pth: weights not found"):
        tiny("nano", weights=tmp_path / "nowhere.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="empty: not an HF-format weights folder"):
        tiny("nano", weights=tmp_path / "empty")
    vit = tiny("dinov3-vits16")
    vit.backbone.hf.save_pretrained(tmp_path / "vit")
    with pytest.raises(WeightsError, match="model_type is 'dinov3_vit'"):
        tiny("nano", weights=tmp_path / "vit")
    bigger = create_segmenter("nano", hidden_sizes=[8, 16, 24, 64], depths=[1, 1, 2, 1])
    torch.save(hf_to_official(bigger.backbone.hf.state_dict(), "convnext"), tmp_path / "big.pth")
    with pytest.raises(WeightsError, match="big.pth: does not fit this backbone.*shape mismatch"):
        tiny("nano", weights=tmp_path / "big.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth: cannot read"):
        tiny("nano", weights=tmp_path / "junk.pth")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"model_type": "dinov3_convnext"}))
    with pytest.raises(WeightsError, match="no model.safetensors"):
        tiny("nano", weights=tmp_path / "bad")


def test_gflops_grow_with_area_and_count_convs():
    model = tiny("nano")
    small, large = estimate_gflops(model, 64, 64), estimate_gflops(model, 128, 128)
    assert small > 0
    assert large == pytest.approx(4 * small, rel=0.05)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1))
    assert estimate_gflops(conv, 10, 10) == pytest.approx(2 * 8 * 100 * 27 / 1e9)


@pytest.mark.parametrize("name", ["nano", "dinov3-vits16"])
def test_exports_to_onnx_opset17_with_parity(tmp_path, name):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import warnings

    torch.manual_seed(0)
    model = tiny(name).eval()
    x = torch.randn(1, 3, 64, 96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "m.onnx"), opset_version=17, input_names=["pixels"],
                          output_names=list(model(x)._fields), dynamo=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"pixels": x.numpy()})
    with torch.no_grad():
        torch_logits = model(x).logits.numpy()
    assert onnx_logits.shape == torch_logits.shape
    assert abs(onnx_logits - torch_logits).max() < 1e-4
