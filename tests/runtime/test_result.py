"""The result schema v1: pure encoding, round trip, and clear errors for foreign messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from holevision.runtime.detections import Holes
from holevision.runtime.result import (ERROR_CAMERA, SCHEMA_VERSION, Result, ResultSchemaError, from_message,
                                       hole_pose, to_dict, to_message)


def _result(**overrides) -> Result:
    holes = Holes(centers=[[10.5, 20.25], [30.0, 40.0]], axes=[[8.0, 7.0], [6.0, 6.0]], angles=[5.0, 0.0],
                  scores=[0.9, 0.8], points_base=[[400.0, -20.0, 1.5], [np.nan, np.nan, np.nan]],
                  approach_base=[[0, 0, -1], [np.nan, np.nan, np.nan]], diameters_mm=[2.5, np.nan])
    fields = dict(seq=12, camera="cam1", capture_epoch=1_700_000_000.25, done_epoch=1_700_000_000.3125,
                  holes=holes, trigger_id=3, model_name="m", model_sha256="ab" * 32, verdict="OK",
                  inspection={"counts": {"ok": 2}, "fit_residual": float("nan")},
                  timings_ms={"model": 12.3456, "extract": 1.0}, width=64, height=48)
    fields.update(overrides)
    return Result(**fields)


def test_message_round_trips_and_is_strict_json():
    result = _result()
    message = to_message(result)
    json.loads(message)                      # allow_nan=False: would have raised on NaN
    assert b"NaN" not in message
    data = from_message(message)
    assert data == to_dict(result)
    assert data["v"] == SCHEMA_VERSION and data["seq"] == 12 and data["trigger_id"] == 3
    assert data["capture_time"].startswith("2023-11-14T22:13:20.25") and data["capture_time"].endswith("+00:00")
    assert data["model"] == {"name": "m", "sha256": "ab" * 32}
    assert data["holes"][0]["x_mm"] == 400.0 and data["holes"][1]["x_mm"] is None
    assert data["holes"][0]["approach"] == [0, 0, -1] and data["holes"][1]["approach"] is None
    assert data["inspection"]["fit_residual"] is None
    assert data["timings_ms"]["model"] == 12.346
    assert data["error"] is None


def test_errors_carry_a_code_and_a_message():
    data = to_dict(_result(error="camera lost", error_code=ERROR_CAMERA, holes=Holes.empty(), verdict=None))
    assert data["error"] == {"code": ERROR_CAMERA, "message": "camera lost"} and data["holes"] == []


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(v=2), "unsupported schema version 2"),
    (lambda d: d.pop("holes"), "missing field"),
    (lambda d: d.update(seq=-1), "seq"),
    (lambda d: d.update(verdict="MAYBE"), "verdict"),
    (lambda d: d["holes"].append({"id": 3}), r"holes\[2\]"),
])
def test_foreign_messages_are_refused_with_the_field_named(mutate, match):
    data = to_dict(_result())
    mutate(data)
    with pytest.raises(ResultSchemaError, match=match):
        from_message(json.dumps(data), source="zmq")
    with pytest.raises(ResultSchemaError, match="not JSON"):
        from_message(b"\xff{", source="zmq")


def test_bad_verdict_is_refused_at_construction():
    with pytest.raises(ResultSchemaError, match="verdict"):
        _result(verdict="fine")


def test_hole_pose_selects_one_hole():
    data = to_dict(_result())
    selected = hole_pose(data, 1)
    assert selected["hole"]["id"] == 1 and selected["seq"] == 12 and selected["camera"] == "cam1"
    with pytest.raises(KeyError, match="hole 9"):
        hole_pose(data, 9)


def _rows_one_element_at_a_time(holes: Holes) -> list[dict]:
    """The plain formulation Holes.to_rows replaced (numpy scalars, one at a time)."""
    def num(x):
        x = float(x)
        return None if not np.isfinite(x) else round(x, 4)

    return [{
        "id": int(holes.ids[i]), "u": num(holes.centers[i, 0]), "v": num(holes.centers[i, 1]),
        "diameter_px": num(holes.diameters_px[i]), "major_px": num(holes.axes[i, 0]), "minor_px": num(holes.axes[i, 1]),
        "angle_deg": num(holes.angles[i]), "circularity": num(holes.circularity[i]),
        "fit_residual_px": num(holes.fit_residual[i]), "score": num(holes.scores[i]),
        "on_border": bool(holes.on_border[i]), "refined": bool(holes.refined[i]),
        "x_mm": num(holes.points_base[i, 0]), "y_mm": num(holes.points_base[i, 1]), "z_mm": num(holes.points_base[i, 2]),
        "approach": ([num(a) for a in holes.approach_base[i]] if np.all(np.isfinite(holes.approach_base[i]))
                     else None),
        "diameter_mm": num(holes.diameters_mm[i]),
    } for i in range(len(holes))]


def test_hole_rows_built_from_columns_equal_the_plain_formulation():
    rng = np.random.default_rng(0)
    n = 25
    values = rng.uniform(-1e4, 1e4, (n, 16)) * rng.choice([1e-6, 1.0, 1e3], (n, 16))
    values[rng.random(values.shape) > 0.85] = np.nan
    values[0, :] = np.inf
    approach = rng.normal(size=(n, 3))
    approach[::4, 1] = np.nan
    holes = Holes(centers=values[:, :2], axes=np.abs(values[:, 2:4]), angles=values[:, 4],
                  scores=values[:, 5].astype(np.float32), fit_residual=values[:, 6],
                  on_border=values[:, 7] > 0, refined=values[:, 8] > 0, points_base=values[:, 9:12],
                  approach_base=approach, diameters_mm=values[:, 12], circularity=values[:, 13].astype(np.float32))
    assert holes.to_rows() == _rows_one_element_at_a_time(holes)
    assert json.dumps(holes.to_rows()) == json.dumps(_rows_one_element_at_a_time(holes))
    assert Holes.empty().to_rows() == []


def test_encode_gives_the_document_and_its_message():
    from holevision.runtime.result import encode

    result = _result()
    message, payload = encode(result)
    assert message == to_dict(result)
    assert payload == to_message(result)
