"""Export a segmenter to ONNX with the camera contract inside the graph.

The graph takes camera pixels as they are: uint8, BGR, NHWC, one fixed size (multiples of 32). Channel
swap, scaling to 0..1 and the model's mean/std normalization are the first nodes of the graph, so the
runtime never re-implements them. Outputs are named from the model's NamedTuple (``logits``...) plus
``probs``: the softmax over classes, at input size.

DINOv3 ViT computes its rotary position embedding (RoPE) from the input shape at run time; traced as is,
that becomes Range/Tile/Cos/Sin nodes (and If nodes from shape checks) which TensorRT parses badly and
which drift between runtimes. ``bake_rope`` evaluates RoPE once for the export size and stores it as a
constant, so the exported graph has only static shapes (``static_graph_problems`` checks that).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
INPUT_NAME = "image"
PROBS_NAME = "probs"
# Node types that mean control flow or shapes computed at run time; none may remain in an export.
FORBIDDEN_OPS = frozenset({"If", "Loop", "Scan", "Tile", "Range", "NonZero", "Shape", "Size"})


class ExportError(ValueError):
    """The model could not be exported, or the exported graph breaks the bundle's input contract."""


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote."""

    path: Path
    input_name: str            # uint8 BGR NHWC (1, H, W, 3)
    output_names: list[str]    # NamedTuple fields, then "probs"
    height: int
    width: int
    opset: int


class _ConstantRope(nn.Module):
    """Returns RoPE (cos, sin) precomputed for one input size: no shape arithmetic in the graph."""

    def __init__(self, cos: torch.Tensor, sin: torch.Tensor):
        super().__init__()
        self.register_buffer("cos", cos.detach().clone())
        self.register_buffer("sin", sin.detach().clone())

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos, self.sin


def _is_rope(module: nn.Module) -> bool:
    return type(module).__name__.endswith("RopePositionEmbedding")


def bake_rope(model: nn.Module, height: int, width: int) -> int:
    """Replace every DINOv3 RoPE module in ``model`` (in place) by constants for a ``height x width`` input.

    The values are recorded from one forward pass at that size, so they are exactly what the model
    computes (including its own padding). Returns the number of modules replaced.
    """
    ropes = [(name, module) for name, module in model.named_modules() if _is_rope(module)]
    if not ropes:
        return 0
    recorded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [module.register_forward_hook(lambda mod, args, out, _n=name: recorded.__setitem__(_n, out))
             for name, module in ropes]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    for name, _module in ropes:
        if name not in recorded:
            raise ExportError(f"RoPE module {name} was not called in a forward pass; cannot bake it")
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        cos, sin = recorded[name]
        setattr(parent, child, _ConstantRope(cos, sin))
    return len(ropes)


class CameraInputModel(nn.Module):
    """uint8 BGR NHWC camera pixels -> the model's outputs + softmax probabilities.

    ``pixels_rgb_normalized = (bgr[..., ::-1] / 255 - mean) / std`` folded into one multiply-add.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        mean = torch.tensor(model.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(model.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("offset", -mean / std)

    def normalize(self, image_bgr_nhwc: torch.Tensor) -> torch.Tensor:
        rgb = image_bgr_nhwc.permute(0, 3, 1, 2).flip(1).to(torch.float32)
        return rgb * self.scale + self.offset

    def forward(self, image_bgr_nhwc: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(self.normalize(image_bgr_nhwc))
        return (*(v for v in out if v is not None), torch.softmax(out.logits, dim=1))


def output_names_of(model: nn.Module, height: int, width: int) -> list[str]:
    """Names of the graph outputs: the model's NamedTuple fields that are not None, then ``probs``."""
    with torch.no_grad():
        out = model(torch.zeros(1, 3, height, width))
    if not hasattr(out, "_fields") or "logits" not in out._fields:
        raise ExportError(f"{type(model).__name__}.forward must return a NamedTuple with a 'logits' field, "
                          f"got {type(out).__name__}")
    return [name for name, value in zip(out._fields, out) if value is not None] + [PROBS_NAME]


def prepare_for_export(model: nn.Module, height: int, width: int) -> CameraInputModel:
    """A copy of ``model`` in eval mode with RoPE baked for the size, wrapped with the camera contract."""
    multiple = int(getattr(model, "input_multiple", 32))
    if height % 32 or width % 32 or height % multiple or width % multiple:
        raise ExportError(f"export size {height}x{width} (HxW) must be a multiple of 32 and of the model's "
                          f"input_multiple ({multiple})")
    for attribute in ("mean", "std", "classes"):
        if not hasattr(model, attribute):
            raise ExportError(f"{type(model).__name__} has no '{attribute}' attribute; the bundle needs it")
    frozen = copy.deepcopy(model).eval()
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    baked = bake_rope(frozen, height, width)
    if baked:
        log.info("baked %d RoPE module(s) for %dx%d", baked, height, width)
    return CameraInputModel(frozen).eval()


def export_onnx(model: nn.Module, path: str | Path, height: int, width: int,
                opset: int = DEFAULT_OPSET) -> OnnxExport:
    """Export ``model`` for a fixed ``height x width`` uint8 BGR NHWC input, checked and static.

    Raises ExportError when the graph fails ``onnx.checker`` (full check) or keeps run-time shape logic.
    """
    import onnx

    if opset < 17:
        raise ExportError(f"opset {opset} is too old; the bundle needs opset >= 17 (LayerNormalization)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = prepare_for_export(model, height, width)
    output_names = output_names_of(wrapped.model, height, width)
    dummy = torch.zeros(1, height, width, 3, dtype=torch.uint8)
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints; shapes are fixed on purpose
        torch.onnx.export(wrapped, (dummy,), str(path), opset_version=opset, dynamo=False,
                          input_names=[INPUT_NAME], output_names=output_names, do_constant_folding=True)
    graph = onnx.load(str(path))
    graph = _fold_constants(graph)
    graph.doc_string = (f"holevision {getattr(model, 'name', type(model).__name__)}: uint8 BGR NHWC "
                        f"(1, {height}, {width}, 3) -> {', '.join(output_names)}")
    for key, value in (("classes", ",".join(model.classes)), ("input_layout", "NHWC"), ("input_color", "BGR"),
                       ("mean", ",".join(map(str, model.mean))), ("std", ",".join(map(str, model.std)))):
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path}: onnx.checker rejected the exported graph: {exc}") from None
    problems = static_graph_problems(graph)
    if problems:
        raise ExportError(f"{path}: the exported graph is not static:\n  " + "\n  ".join(problems))
    return OnnxExport(path=path, input_name=INPUT_NAME, output_names=output_names,
                      height=height, width=width, opset=opset)


def _fold_constants(graph):
    """Fold shape arithmetic that the tracer leaves behind (fixed sizes make it constant)."""
    graph = _evaluate_constant_nodes(graph)
    try:
        import onnxscript.optimizer
    except ImportError:  # pragma: no cover - onnxscript is in the export extra
        log.warning("onnxscript is not installed; unused constants are not removed")
        return graph
    return onnxscript.optimizer.optimize(graph)


def _evaluate_constant_nodes(graph, max_elements: int = 1 << 20):
    """Replace every standard node whose inputs are all constants by its (small) result.

    The tracer leaves e.g. ``Expand(cls_token, Where(Equal(shape, -1), ...))`` for ``expand(batch, -1, -1)``;
    with a fixed batch all of it is constant, and shape inference can only see static shapes once it
    is folded.
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    constants = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
    kept = []
    for node in graph.graph.node:
        inputs = [name for name in node.input if name]
        has_subgraph = any(attr.HasField("g") or len(attr.graphs) for attr in node.attribute)
        foldable = node.domain in ("", "ai.onnx") and not has_subgraph and all(name in constants for name in inputs) and node.op_type not in (
            "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial")
        if foldable:
            try:
                results = ReferenceEvaluator(node).run(None, {name: constants[name] for name in inputs})
            except Exception as exc:  # noqa: BLE001 - an op the reference cannot run stays in the graph
                log.debug("not folding %s (%s): %s", node.name, node.op_type, exc)
                results = None
            if results is not None and all(np.asarray(r).size <= max_elements for r in results):
                for name, value in zip(node.output, results):
                    constants[name] = np.asarray(value)
                    graph.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
                continue
        kept.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(kept)
    return graph


def static_graph_problems(graph) -> list[str]:
    """Every node or value in ``graph`` (an onnx.ModelProto) that is not static, one line each."""
    import onnx

    problems = [f"node {node.name or '?'} ({node.op_type}): control flow or run-time shape op"
                for node in graph.graph.node if node.op_type in FORBIDDEN_OPS]
    inferred = onnx.shape_inference.infer_shapes(graph, strict_mode=True, data_prop=True)
    values = list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)
    for value in values:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            problems.append(f"value {value.name}: unknown rank")
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if any(d is None for d in dims):
            problems.append(f"value {value.name}: shape {dims} is not fully static")
    return problems


def to_input_batch(images_bgr: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Stack HxWx3 uint8 BGR images into a (N, H, W, 3) uint8 batch, checking the contract."""
    batch = np.stack([np.asarray(image) for image in images_bgr]) if not isinstance(images_bgr, np.ndarray) \
        else images_bgr
    if batch.ndim == 3:
        batch = batch[None]
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected uint8 BGR images (N, H, W, 3), got {batch.dtype} {batch.shape}")
    return batch
