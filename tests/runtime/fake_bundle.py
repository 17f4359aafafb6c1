"""A tiny classical "model" bundle for tests: no torch, no weights, a few ONNX nodes.

The graph follows the bundle contract exactly (uint8 BGR NHWC in, (N, 2, H, W) class probabilities
out, classes background/hole) but its rule is classical: the darker a pixel is than ``mid_grey``, the
more likely it is a hole, p_hole = sigmoid((mid_grey - grey) / softness). Dark discs on a bright
surface are therefore found exactly where they are, which lets tests check tiling, padding and the
detector end to end against known geometry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from holevision.runtime.bundle import (InputSpec, Manifest, OutputSpec, PostprocessSpec, TilingSpec,
                                       write_manifest)

PROBABILITIES = "probabilities"


def build_dark_pixel_onnx(height: int, width: int, *, batch: int = 1, mid_grey: float = 117.5,
                          softness: float = 8.0, stride: int = 1):
    """The ONNX ModelProto of the dark-pixel rule for a fixed (batch, height, width, 3) uint8 input.

    ``stride`` > 1 averages the probabilities over stride x stride blocks, like a decoder that stops at
    stride 2 or 4: the output is (batch, 2, height / stride, width / stride).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array([[0.114], [0.587], [0.299]], dtype=np.float32), "bgr_to_grey")
    scale = numpy_helper.from_array(np.array(-1.0 / softness, dtype=np.float32), "scale")
    offset = numpy_helper.from_array(np.array(mid_grey / softness, dtype=np.float32), "offset")
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    nodes = [
        helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["image_f", "bgr_to_grey"], ["grey_nhw1"]),
        helper.make_node("Transpose", ["grey_nhw1"], ["grey"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["grey", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p_hole"]),
        helper.make_node("Sub", ["one", "p_hole"], ["p_background"]),
        helper.make_node("Concat", ["p_background", "p_hole"], ["full" if stride > 1 else PROBABILITIES], axis=1),
    ]
    if stride > 1:
        nodes.append(helper.make_node("AveragePool", ["full"], [PROBABILITIES], kernel_shape=[stride, stride],
                                      strides=[stride, stride]))
    graph = helper.make_graph(
        nodes, "dark_pixel_holes",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [batch, height, width, 3])],
        [helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [batch, 2, height // stride, width // stride])],
        initializer=[weights, scale, offset, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="holevision-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def make_fake_bundle(folder: str | Path, *, height: int = 128, width: int = 128, batch: int = 1,
                     overlap_px: int = 32, mid_grey: float = 117.5, softness: float = 8.0,
                     threshold: float = 0.5, min_area_px: float = 6.0, name: str = "fake-dark-pixels",
                     stride: int = 1) -> Path:
    """Write a complete, verifiable bundle (model.onnx + manifest.json with sha256s) into ``folder``."""
    import onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build_dark_pixel_onnx(height, width, batch=batch, mid_grey=mid_grey, softness=softness, stride=stride),
              str(folder / "model.onnx"))
    manifest = Manifest(
        name=name,
        backbone="none",
        architecture="classical dark-pixel rule (tests only)",
        parameters=0,
        gflops=0.0,
        input=InputSpec(height=height, width=width, batch=batch, mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0]),
        outputs=OutputSpec(names=[PROBABILITIES], probabilities=PROBABILITIES, classes=["background", "hole"],
                           stride=stride),
        postprocess=PostprocessSpec(threshold=threshold, min_area_px=min_area_px),
        tiling=TilingSpec(tile_height=height, tile_width=width, overlap_px=overlap_px),
        metrics={},
        provenance={"made_by": "tests/runtime/fake_bundle.py", "rule": f"sigmoid(({mid_grey} - grey) / {softness})"},
    )
    write_manifest(folder, manifest)
    return folder
