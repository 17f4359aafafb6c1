"""Registry and factory: ``create_segmenter("dinov3-convnext-tiny", weights=None, classes=...)``.

Each variant is one tiny registered function returning its ``SegmenterSpec``. ``**overrides`` change
the spec: keys of the transformers backbone config (``hidden_sizes``, ``depths``, ``hidden_size``,
``num_hidden_layers``...) or of the head (``decoder_channels``, ``stem_channels``, ``vit_taps``);
tests use them for tiny configs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HEAD_KEYS = ("decoder_channels", "stem_channels", "vit_taps")


@dataclass
class SegmenterSpec:
    """Everything needed to build one variant."""

    kind: str                                   # "vit" or "convnext": which DINOv3 family
    backbone: dict = field(default_factory=dict)  # kwargs of DINOv3ViTConfig / DINOv3ConvNextConfig
    decoder_channels: int = 64                  # width of the pyramid decoder and head
    stem_channels: tuple[int, int, int] = (16, 32, 64)  # detail stem widths at strides 2, 4, 8
    vit_taps: tuple[int, ...] | None = None     # ViT blocks (0-based) whose tokens feed the decoder
    role: str = ""                              # "student", "teacher" or "edge student": documentation only


_REGISTRY: dict[str, Callable[[], SegmenterSpec]] = {}


def register(name: str):
    def decorator(fn: Callable[[], SegmenterSpec]):
        _REGISTRY[name] = fn
        return fn
    return decorator


def list_segmenters() -> list[str]:
    return sorted(_REGISTRY)


def _vit(hidden: int, layers: int, heads: int, role: str, decoder: int = 96) -> SegmenterSpec:
    return SegmenterSpec(kind="vit", role=role, decoder_channels=decoder, backbone=dict(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden,
        patch_size=16, num_register_tokens=4, layerscale_value=1e-5, rope_theta=100.0, layer_norm_eps=1e-5,
        key_bias=False, pos_embed_rescale=2.0))


def _convnext(widths, depths, role: str, decoder: int = 96) -> SegmenterSpec:
    return SegmenterSpec(kind="convnext", role=role, decoder_channels=decoder,
                         backbone=dict(hidden_sizes=list(widths), depths=list(depths)))


@register("dinov3-vits16")
def dinov3_vits16() -> SegmenterSpec:
    return _vit(384, 12, 6, "student")


@register("dinov3-vitb16")
def dinov3_vitb16() -> SegmenterSpec:
    return _vit(768, 12, 12, "teacher", decoder=128)


@register("dinov3-vitl16")
def dinov3_vitl16() -> SegmenterSpec:
    return _vit(1024, 24, 16, "teacher", decoder=128)


@register("dinov3-convnext-tiny")
def dinov3_convnext_tiny() -> SegmenterSpec:
    return _convnext((96, 192, 384, 768), (3, 3, 9, 3), "student")


@register("dinov3-convnext-small")
def dinov3_convnext_small() -> SegmenterSpec:
    return _convnext((96, 192, 384, 768), (3, 3, 27, 3), "teacher", decoder=128)


@register("dinov3-convnext-base")
def dinov3_convnext_base() -> SegmenterSpec:
    return _convnext((128, 256, 512, 1024), (3, 3, 27, 3), "teacher", decoder=128)


@register("dinov3-convnext-large")
def dinov3_convnext_large() -> SegmenterSpec:
    return _convnext((192, 384, 768, 1536), (3, 3, 27, 3), "teacher", decoder=128)


@register("nano")
def nano() -> SegmenterSpec:
    """Edge student for CPU-only cells: DINOv3-ConvNeXt layout, widths 32..256, depths (2, 2, 6, 2)."""
    spec = _convnext((32, 64, 128, 256), (2, 2, 6, 2), "edge student", decoder=48)
    spec.stem_channels = (16, 24, 32)
    return spec


def resolve_spec(name: str, **overrides) -> SegmenterSpec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_segmenters())}")
    spec = _REGISTRY[name]()
    for key, value in overrides.items():
        if key in HEAD_KEYS:
            setattr(spec, key, tuple(value) if isinstance(value, list) else value)
        else:
            spec.backbone[key] = value
    return spec


def create_segmenter(name: str, weights: str | Path | None = None,
                     classes: tuple[str, ...] | list[str] = ("background", "hole"), **overrides):
    """Build a registered segmenter; ``weights`` = DINOv3 backbone weights (HF folder or official .pth)."""
    from .backbones import ConvNextFeatures, ViTFeatures
    from .segmenter import Segmenter

    spec = resolve_spec(name, **overrides)
    if spec.kind == "vit":
        from transformers import DINOv3ViTConfig

        backbone = ViTFeatures(DINOv3ViTConfig(**spec.backbone), taps=spec.vit_taps)
    else:
        from transformers import DINOv3ConvNextConfig

        backbone = ConvNextFeatures(DINOv3ConvNextConfig(**spec.backbone))
    if weights is not None:
        from .weights import load_backbone_weights

        load_backbone_weights(backbone.hf, weights, spec.kind)
    model = Segmenter(backbone, tuple(classes), name, decoder_channels=spec.decoder_channels,
                      stem_channels=tuple(spec.stem_channels))
    model.overrides = dict(overrides)
    return model
