"""DINOv3 segmenters for holes (and optional defect classes): registry, factory, weights, size figures."""

from .flops import count_parameters, estimate_gflops
from .registry import SegmenterSpec, create_segmenter, list_segmenters, register, resolve_spec
from .segmenter import IMAGENET_MEAN, IMAGENET_STD, Segmenter, SegmenterOutput
from .weights import WeightsError, hf_to_official, load_backbone_weights, official_to_hf

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "Segmenter", "SegmenterOutput", "SegmenterSpec", "WeightsError",
    "count_parameters", "create_segmenter", "estimate_gflops", "hf_to_official", "list_segmenters",
    "load_backbone_weights", "official_to_hf", "register", "resolve_spec",
]
