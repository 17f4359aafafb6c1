"""Training: loss goes down, run layout, resume = uninterrupted, frozen and LoRA train only what they should."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
cv2 = pytest.importorskip("cv2")

from holevision.export.train import TrainConfig, load_run, resume_config, train  # noqa: E402

TINY_CONVNEXT = dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], decoder_channels=16, stem_channels=[8, 8, 8])
TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                decoder_channels=16, stem_channels=[8, 8, 8])


def make_disc_dataset(root: Path, count: int, seed: int, size: int = 96) -> Path:
    """Dark anti-aliased discs on a flat plate: images/ + masks/ (uint16 instance ids)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        image = np.full((size, size, 3), int(rng.integers(150, 220)), np.uint8)
        instances = np.zeros((size, size), np.uint16)
        for k in range(int(rng.integers(1, 4))):
            radius = rng.uniform(4, 12)
            center = rng.uniform(radius + 2, size - radius - 2, 2)
            c, r = tuple(int(v * 16) for v in center), int(radius * 16)
            cv2.circle(image, c, r, (40, 40, 40), -1, cv2.LINE_AA, 4)
            cv2.circle(instances, c, r, k + 1, -1, cv2.LINE_8, 4)
        cv2.imwrite(str(root / "images" / f"{i:03d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{i:03d}.png"), instances)
    return root


@pytest.fixture(scope="module")
def discs(tmp_path_factory):
    base = tmp_path_factory.mktemp("discs")
    return make_disc_dataset(base / "train", 16, seed=0), make_disc_dataset(base / "val", 4, seed=1)


def config(data, out, **kwargs) -> TrainConfig:
    defaults = dict(model="nano", mode="full", size=64, epochs=3, batch=4, lr=3e-3, overrides=TINY_CONVNEXT,
                    steps_per_epoch=4)
    defaults.update(kwargs)
    return TrainConfig(data=str(data), out=str(out), **defaults)


def test_loss_decreases_and_run_folder_is_complete(discs, tmp_path):
    train_dir, val_dir = discs
    result = train(config(train_dir, tmp_path / "run", val=str(val_dir), epochs=4), progress=False)
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[-1] < 0.8 * losses[0]
    for name in ("config.json", "best.pt", "last.pt", "metrics.json", "summary.txt"):
        assert (tmp_path / "run" / name).is_file(), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]) == 4 and "f1" in metrics["history"][0]["val"]
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["model"] == "nano" and stored["classes"] == ["background", "hole"] and stored["size"] == 64
    assert "val F1" in (tmp_path / "run" / "summary.txt").read_text()
    model, run_config = load_run(tmp_path / "run")
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    assert run_config["model"] == "nano" and not model.training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in best["model"].items())


def test_resume_continues_exactly_where_it_stopped(discs, tmp_path):
    train_dir, _ = discs
    train(config(train_dir, tmp_path / "full", epochs=2, seed=7), progress=False)
    first = train(config(train_dir, tmp_path / "split", epochs=2, seed=7), progress=False, stop_after=1)
    assert [row["epoch"] for row in first["history"]] == [1]
    resumed = train(resume_config(tmp_path / "split"), resume=True, progress=False)
    assert [row["epoch"] for row in resumed["history"]] == [1, 2]
    full = torch.load(tmp_path / "full" / "last.pt", weights_only=False)["model"]
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=False)["model"]
    for key in full:
        assert torch.allclose(full[key].float(), split[key].float(), atol=1e-6), key


def test_frozen_mode_leaves_the_backbone_untouched(discs, tmp_path):
    train_dir, _ = discs
    train(config(train_dir, tmp_path / "frozen", mode="frozen", epochs=1), progress=False)
    state = torch.load(tmp_path / "frozen" / "last.pt", weights_only=False)
    torch.manual_seed(0)
    from holevision.export.models import create_segmenter

    # Same seed as training -> same random init; the backbone must still be exactly that.
    torch.manual_seed(0)
    fresh = create_segmenter("nano", **TINY_CONVNEXT).state_dict()
    backbone_keys = [k for k in fresh if k.startswith("backbone.")]
    assert backbone_keys and all(torch.equal(fresh[k], state["model"][k]) for k in backbone_keys)
    head_keys = [k for k in fresh if k.startswith("head.") and k.endswith("weight")]
    assert any(not torch.equal(fresh[k], state["model"][k]) for k in head_keys)


def test_lora_trains_only_adapters_and_merges_for_export(discs, tmp_path):
    train_dir, _ = discs
    cfg = config(train_dir, tmp_path / "lora", model="dinov3-vits16", mode="lora", overrides=TINY_VIT, epochs=1,
                 lr=1e-2)
    train(cfg, progress=False)
    state = torch.load(tmp_path / "lora" / "last.pt", weights_only=False)["model"]
    lora_b = [k for k in state if "lora_B" in k]
    assert lora_b, "no LoRA adapters in the checkpoint"
    assert any(state[k].abs().sum() > 0 for k in lora_b), "LoRA B matrices never moved from zero"
    torch.manual_seed(0)
    from holevision.export.models import create_segmenter

    fresh = create_segmenter("dinov3-vits16", **TINY_VIT).state_dict()
    for key, value in fresh.items():
        if key.startswith("backbone."):
            stored_key = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
            stored = state.get(key, state.get(stored_key))
            assert stored is not None and torch.equal(value, stored), f"backbone weight {key} changed"
    # load_run merges the adapters: plain layers again, same outputs as the unmerged model.
    merged, _ = load_run(tmp_path / "lora", checkpoint="last.pt")
    assert not any("lora" in name for name, _ in merged.named_parameters())
    from holevision.export.train import build_model

    unmerged = build_model("dinov3-vits16", ["background", "hole"], TINY_VIT, mode="lora").eval()
    unmerged.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(merged(x).logits, unmerged(x).logits, atol=1e-4)


def test_bad_arguments_are_clear_errors(discs, tmp_path):
    with pytest.raises(ValueError, match="mode must be one of"):
        TrainConfig(data="d", out="o", mode="partial")
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainConfig(data="d", out="o", size=100)
    with pytest.raises(ValueError, match="hard_pixels must be in"):
        TrainConfig(data="d", out="o", hard_pixels=0.0)
    with pytest.raises(ValueError, match="not a training run"):
        load_run(tmp_path)


def test_hard_pixel_cross_entropy_averages_only_the_worst_pixels():
    from holevision.export.losses import hard_pixel_cross_entropy, segmentation_loss

    target = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 0] = 5.0                 # every pixel confidently background ...
    logits[0, 0, 0, :2] = -5.0         # ... but two: confidently (wrongly) hole
    per_pixel = torch.nn.functional.cross_entropy(logits, target, reduction="none").flatten()
    worst_two = per_pixel.sort(descending=True).values[:2].mean()
    assert torch.isclose(hard_pixel_cross_entropy(logits, target, 2 / 16), worst_two)
    assert torch.isclose(hard_pixel_cross_entropy(logits, target, 1.0), per_pixel.mean())
    # the mined loss is dominated by the two wrong pixels; the plain mean dilutes them 8x
    assert hard_pixel_cross_entropy(logits, target, 2 / 16) > 7 * per_pixel.mean()
    assert segmentation_loss(logits, target, hard_pixel_fraction=2 / 16) > segmentation_loss(logits, target)
    with pytest.raises(ValueError, match="hard pixel fraction"):
        hard_pixel_cross_entropy(logits, target, 1.5)


def test_hard_pixel_training_lowers_the_loss(discs, tmp_path):
    train_dir, _ = discs
    result = train(config(train_dir, tmp_path / "run", epochs=3, hard_pixels=0.1), progress=False)
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[-1] < 0.8 * losses[0]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["hard_pixels"] == 0.1
