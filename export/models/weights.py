"""Load real DINOv3 backbone weights from a local path; never downloads.

Two formats:

* an HF-format folder: ``config.json`` + ``model.safetensors`` (or a sharded
  ``model.safetensors.index.json``), as ``DINOv3ViTModel.save_pretrained`` /
  ``DINOv3ConvNextModel.save_pretrained`` write it (e.g. facebook/dinov3-vits16-pretrain-lvd1689m);
* the official DINOv3 ``.pth`` checkpoint (facebookresearch/dinov3), whose keys are mapped here.

Errors are ``WeightsError`` (a ValueError) naming the file and what is wrong.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn


class WeightsError(ValueError):
    """A weights file is missing, unreadable or does not fit the model."""


_VIT_RULES = [
    (r"^cls_token$", "embeddings.cls_token"),
    (r"^mask_token$", "embeddings.mask_token"),
    (r"^storage_tokens$", "embeddings.register_tokens"),
    (r"^patch_embed\.proj\.", "embeddings.patch_embeddings."),
    (r"^blocks\.(\d+)\.norm1\.", r"model.layer.\1.norm1."),
    (r"^blocks\.(\d+)\.norm2\.", r"model.layer.\1.norm2."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"model.layer.\1.attention.o_proj."),
    (r"^blocks\.(\d+)\.ls1\.gamma$", r"model.layer.\1.layer_scale1.lambda1"),
    (r"^blocks\.(\d+)\.ls2\.gamma$", r"model.layer.\1.layer_scale2.lambda1"),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"model.layer.\1.mlp.up_proj."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"model.layer.\1.mlp.down_proj."),
    (r"^blocks\.(\d+)\.mlp\.w1\.", r"model.layer.\1.mlp.gate_proj."),
    (r"^blocks\.(\d+)\.mlp\.w2\.", r"model.layer.\1.mlp.up_proj."),
    (r"^blocks\.(\d+)\.mlp\.w3\.", r"model.layer.\1.mlp.down_proj."),
    (r"^norm\.", "norm."),
]
_CONVNEXT_RULES = [
    (r"^downsample_layers\.(\d+)\.(\d+)\.", r"model.stages.\1.downsample_layers.\2."),
    (r"^stages\.(\d+)\.(\d+)\.dwconv\.", r"model.stages.\1.layers.\2.depthwise_conv."),
    (r"^stages\.(\d+)\.(\d+)\.norm\.", r"model.stages.\1.layers.\2.layer_norm."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv1\.", r"model.stages.\1.layers.\2.pointwise_conv1."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv2\.", r"model.stages.\1.layers.\2.pointwise_conv2."),
    (r"^stages\.(\d+)\.(\d+)\.gamma$", r"model.stages.\1.layers.\2.gamma"),
    (r"^norm\.", "layer_norm."),
]
# Official keys with no counterpart in the HF backbone (training heads, buffers recomputed on the fly).
_IGNORED = re.compile(r"(^rope_embed\.|bias_mask$|^local_cls_norm\.|^head\.|^norms\.|^dino_head\.|^ibot_head\.)")


def _rename(key: str, rules) -> str | None:
    for pattern, replacement in rules:
        new_key, count = re.subn(pattern, replacement, key)
        if count:
            return new_key
    return None


def official_to_hf(state: dict[str, torch.Tensor], kind: str, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Map an official DINOv3 state dict (``kind`` "vit" or "convnext") to HF transformers key names."""
    rules = _VIT_RULES if kind == "vit" else _CONVNEXT_RULES
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if _IGNORED.search(key):
            continue
        qkv = re.match(r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", key) if kind == "vit" else None
        if qkv:
            block, field = qkv.groups()
            q, k, v = value.chunk(3, dim=0)
            prefix = f"model.layer.{block}.attention"
            mapped[f"{prefix}.q_proj.{field}"] = q
            if field == "weight":  # DINOv3 masks the key bias to zero; HF has no key bias
                mapped[f"{prefix}.k_proj.{field}"] = k
            mapped[f"{prefix}.v_proj.{field}"] = v
            continue
        new_key = _rename(key, rules)
        if new_key is None:
            raise WeightsError(f"{source}: unexpected key {key!r} for a DINOv3 {kind} checkpoint")
        if new_key == "embeddings.mask_token" and value.ndim == 2:
            value = value.unsqueeze(1)
        mapped[new_key] = value
    return mapped


def hf_to_official(state: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """Inverse of ``official_to_hf`` (used to write official-format files, e.g. in tests)."""
    out: dict[str, torch.Tensor] = {}
    if kind == "convnext":
        inverse = [
            (r"^model\.stages\.(\d+)\.downsample_layers\.(\d+)\.", r"downsample_layers.\1.\2."),
            (r"^model\.stages\.(\d+)\.layers\.(\d+)\.depthwise_conv\.", r"stages.\1.\2.dwconv."),
            (r"^model\.stages\.(\d+)\.layers\.(\d+)\.layer_norm\.", r"stages.\1.\2.norm."),
            (r"^model\.stages\.(\d+)\.layers\.(\d+)\.pointwise_conv1\.", r"stages.\1.\2.pwconv1."),
            (r"^model\.stages\.(\d+)\.layers\.(\d+)\.pointwise_conv2\.", r"stages.\1.\2.pwconv2."),
            (r"^model\.stages\.(\d+)\.layers\.(\d+)\.gamma$", r"stages.\1.\2.gamma"),
            (r"^layer_norm\.", "norm."),
        ]
        for key, value in state.items():
            out[_rename(key, inverse)] = value
        return out
    pairs = [
        ("embeddings.cls_token", "cls_token"), ("embeddings.register_tokens", "storage_tokens"),
        ("embeddings.patch_embeddings.", "patch_embed.proj."), ("norm.", "norm."),
    ]
    layer_pairs = [("norm1.", "norm1."), ("norm2.", "norm2."), ("attention.o_proj.", "attn.proj."),
                   ("layer_scale1.lambda1", "ls1.gamma"), ("layer_scale2.lambda1", "ls2.gamma"),
                   ("mlp.up_proj.", "mlp.fc1."), ("mlp.down_proj.", "mlp.fc2.")]
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key == "embeddings.mask_token":
            out["mask_token"] = value.reshape(1, -1)
            continue
        m = re.match(r"^model\.layer\.(\d+)\.(.*)$", key)
        if m:
            block, rest = m.groups()
            a = re.match(r"^attention\.(q|k|v)_proj\.(weight|bias)$", rest)
            if a:
                qkv.setdefault((block, a.group(2)), {})[a.group(1)] = value
                continue
            for src, dst in layer_pairs:
                if rest.startswith(src):
                    out[f"blocks.{block}.{dst}{rest[len(src):]}"] = value
                    break
            continue
        for src, dst in pairs:
            if key.startswith(src):
                out[dst + key[len(src):]] = value
                break
    for (block, field), parts in qkv.items():
        k = parts.get("k", torch.zeros_like(parts["q"]))
        out[f"blocks.{block}.attn.qkv.{field}"] = torch.cat([parts["q"], k, parts["v"]], dim=0)
        if field == "bias":
            mask = torch.ones_like(out[f"blocks.{block}.attn.qkv.{field}"])
            mask[parts["q"].shape[0]: 2 * parts["q"].shape[0]] = 0
            out[f"blocks.{block}.attn.qkv.bias_mask"] = mask
    return out


def _read_hf_folder(folder: Path, kind: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    config_path = folder / "config.json"
    if not config_path.is_file():
        raise WeightsError(f"{folder}: not an HF-format weights folder (no config.json)")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{config_path}: unreadable JSON ({exc})") from exc
    expected = {"vit": "dinov3_vit", "convnext": "dinov3_convnext"}[kind]
    if config.get("model_type") != expected:
        raise WeightsError(f"{config_path}: model_type is {config.get('model_type')!r}, this model needs {expected!r}")
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        files = sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
    else:
        raise WeightsError(f"{folder}: no model.safetensors (or model.safetensors.index.json)")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            state.update(load_file(str(path)))
        except Exception as exc:  # safetensors raises its own error types
            raise WeightsError(f"{path}: cannot read safetensors ({exc})") from exc
    # Checkpoints saved from a wrapper may carry a prefix; the HF model's own keys have none.
    return {re.sub(r"^(dinov3_vit|dinov3_convnext|backbone)\.", "", k): v for k, v in state.items()}


def _read_official(path: Path, kind: str) -> dict[str, torch.Tensor]:
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read the checkpoint ({exc})") from exc
    if isinstance(checkpoint, dict):
        for wrapper in ("teacher", "model", "state_dict"):
            if wrapper in checkpoint and isinstance(checkpoint[wrapper], dict):
                checkpoint = checkpoint[wrapper]
                break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    state = {re.sub(r"^(module\.)?(backbone\.)?", "", k): v for k, v in checkpoint.items()}
    return official_to_hf(state, kind, source=str(path))


def _align_prefix(state: dict[str, torch.Tensor], own: dict) -> dict[str, torch.Tensor]:
    """HF saves some models without their base-model prefix (``model.``); accept either spelling."""
    aligned = {}
    for key, value in state.items():
        if key not in own and f"model.{key}" in own:
            key = f"model.{key}"
        elif key not in own and key.startswith("model.") and key[len("model."):] in own:
            key = key[len("model."):]
        aligned[key] = value
    return aligned


def load_backbone_weights(hf_model: nn.Module, path: str | Path, kind: str) -> None:
    """Load weights into the transformers backbone ``hf_model`` from an HF folder or an official ``.pth``."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weights not found")
    if path.is_dir():
        state = _read_hf_folder(path, kind)
    elif path.suffix in (".pth", ".pt"):
        state = _read_official(path, kind)
    else:
        raise WeightsError(f"{path}: unknown weights format (expected an HF folder or an official .pth file)")
    own = hf_model.state_dict()
    state = _align_prefix(state, own)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                   for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong_shape:
        details = []
        if wrong_shape:
            details.append("shape mismatch " + "; ".join(wrong_shape[:3]))
        if missing:
            details.append(f"missing {len(missing)} keys, e.g. {missing[:3]}")
        if unexpected:
            details.append(f"unexpected {len(unexpected)} keys, e.g. {unexpected[:3]}")
        raise WeightsError(f"{path}: does not fit this backbone ({'; '.join(details)})")
    hf_model.load_state_dict(state, strict=True)
