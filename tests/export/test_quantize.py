"""INT8: static QDQ quantization of a tiny model, LayerNorm/Softmax kept float, and the task-metric gate."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from export_fixtures import HEIGHT, WIDTH, DiscDetector, disc_gate_images, disc_images  # noqa: E402

from holevision.export import quantize  # noqa: E402
from holevision.export.gate_images import GateImages  # noqa: E402
from holevision.export.labeled_images import GroundTruthHoles  # noqa: E402
from holevision.export.gate_metrics import HoleAgreement  # noqa: E402
from holevision.export.onnx_export import export_onnx  # noqa: E402
from holevision.export.quantize import (Int8Report, QuantizeSettings, cpu_has_vnni, int8_gate,  # noqa: E402
                                        output_layers, quantize_with_gate)


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory):
    return export_onnx(DiscDetector(), tmp_path_factory.mktemp("fp32") / "model.onnx", HEIGHT, WIDTH).path


def test_int8_of_a_tiny_model_passes_its_gate_and_is_qdq(tmp_path, fp32_model):
    out = tmp_path / "model.int8.onnx"
    report = quantize_with_gate(fp32_model, out, disc_images(6, seed=1), disc_gate_images(4),
                                QuantizeSettings(reduce_range=True))
    assert report.passed, report.summary()
    assert report.fp32.true_positives > 0           # the gate measured real holes, not an empty scene
    assert out.is_file()
    assert not list(tmp_path.glob("*.staging*"))
    graph = onnx.load(str(out))
    producers = {output: node for node in graph.graph.node for output in node.output}
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    int8_convs = [n for n in convs if n.input[1] in producers and producers[n.input[1]].op_type == "DequantizeLinear"]
    float_convs = [n for n in convs if n not in int8_convs]
    assert len(int8_convs) == 2                                   # grey + smooth: int8 weights
    assert [n.input[1] for n in float_convs] == ["model.head.weight"]   # the classifier stays float
    assert output_layers(onnx.load(str(fp32_model))) == [float_convs[0].name]
    for node in graph.graph.node:
        if node.op_type in ("LayerNormalization", "Softmax"):
            assert producers[node.input[0]].op_type != "DequantizeLinear", f"{node.op_type} was quantized"
    assert report.settings["reduce_range"] is True and report.settings["per_channel"] is True


def test_a_failed_gate_writes_no_int8_file(tmp_path, fp32_model, monkeypatch):
    bad = Int8Report("fp32 holes", 4, HoleAgreement(8, 0, 0, np.zeros(8)), HoleAgreement(6, 1, 2, np.full(6, 0.3)), 0.4)
    assert not bad.passed and "F1 drops" in bad.summary()
    monkeypatch.setattr(quantize, "int8_gate", lambda *a, **k: bad)
    out = tmp_path / "model.int8.onnx"
    report = quantize_with_gate(fp32_model, out, disc_images(2), disc_gate_images(2))
    assert not report.passed
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_gate_figures_against_ground_truth(tmp_path, fp32_model):
    """With labels, fp32 and int8 are each compared with the truth; here both see every disc."""
    images = disc_gate_images(3)
    from holevision.export.parity import OrtModel, holes_from_probabilities

    session = OrtModel(fp32_model)
    truth = [holes_from_probabilities(session.run(im)["probs"][0, 1]) for im in images.images]
    labeled = GateImages("labeled", images.images, [GroundTruthHoles(t.centers + 0.2, t.diameters, np.ones(len(t.centers), bool))
                                                    for t in truth])
    report = int8_gate(fp32_model, fp32_model, labeled)   # "int8" = the fp32 file itself
    assert report.reference == "ground truth"
    assert report.fp32.f1 == 1.0 and report.f1_drop == 0.0 and report.center_increase_px == 0.0
    assert report.fp32.center_rms_px == pytest.approx(0.2 * np.sqrt(2), abs=1e-6)


def test_center_error_growth_fails_the_gate():
    report = Int8Report("ground truth", 2, HoleAgreement(5, 0, 0, np.full(5, 0.10)),
                        HoleAgreement(5, 0, 0, np.full(5, 0.20)), 0.01)
    assert report.f1_drop == 0.0
    assert not report.passed and "center error" in report.problems[0]


@pytest.mark.parametrize("flags, expected", [
    ("flags\t\t: fpu sse avx2 avx512f avx512_vnni", True),
    ("flags\t\t: fpu sse avx2 avx_vnni", True),
    ("flags\t\t: fpu sse sse2 avx avx2 fma", False),
    ("Features\t: fp asimd asimddp", True),
    ("", False),
])
def test_vnni_detection_from_cpuinfo(flags, expected):
    assert cpu_has_vnni(flags) is expected
    assert QuantizeSettings(reduce_range=None).resolved_reduce_range() is (not cpu_has_vnni())
