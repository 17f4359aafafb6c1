"""The register map's pure encoders: float word orders, result block, header round trip."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from holevision.runtime.detections import Holes
from holevision.runtime.publish import modbus_map as mm
from holevision.runtime.result import Result, to_dict


def _message(n_holes: int = 3, seq: int = 70_001) -> dict:
    holes = Holes(centers=[[100.25 + 10 * i, 50.5] for i in range(n_holes)],
                  axes=[[20.0, 19.0]] * n_holes, angles=[0.0] * n_holes, scores=[0.9] * n_holes,
                  points_base=[[400.0 + i, -20.5, 3.25] for i in range(n_holes)],
                  diameters_mm=[8.0] * n_holes)
    result = Result(seq=seq, camera="cam0", capture_epoch=1000.0, done_epoch=1000.05, holes=holes, trigger_id=9,
                    verdict="NG", inspection={"counts": {"expected": 4, "ok": 3, "missing": 1}, "failing_bits": 1 << 40,
                                                       "reason_bits": 0b1001})
    return to_dict(result)


@pytest.mark.parametrize("order", mm.WORD_ORDERS)
def test_float32_words_round_trip_in_every_word_order(order):
    for value in (0.0, 1.5, -412.375, 3.4e38, 1e-20):
        assert mm.words_to_float32(mm.float32_to_words(value, order), order) == pytest.approx(value, rel=1e-7)
    assert math.isnan(mm.words_to_float32(mm.float32_to_words(float("nan"), order), order))


def test_word_orders_lay_out_bytes_as_named():
    a, b, c, d = struct.pack(">f", 123.456)
    assert mm.float32_to_words(123.456, "ABCD") == ((a << 8) | b, (c << 8) | d)
    assert mm.float32_to_words(123.456, "CDAB") == ((c << 8) | d, (a << 8) | b)
    assert mm.float32_to_words(123.456, "BADC") == ((b << 8) | a, (d << 8) | c)
    assert mm.float32_to_words(123.456, "DCBA") == ((d << 8) | c, (b << 8) | a)
    with pytest.raises(ValueError, match="word_order"):
        mm.float32_to_words(1.0, "ACBD")


@pytest.mark.parametrize("order", ["ABCD", "DCBA"])
def test_result_block_decodes_back_to_the_message(order):
    message = _message()
    block = mm.encode_result_block(message, order, max_holes=4)
    assert len(block) == mm.map_size(4) - mm.RESULT_TRIGGER_ID
    assert all(0 <= v <= 0xFFFF for v in block)
    header = mm.decode_header(block)
    assert header["seq"] == 70_001 and header["trigger_id"] == 9
    assert header["verdict"] == "NG" and header["hole_count"] == 3 and header["holes_found"] == 3
    assert header["counts"]["missing"] == 1 and header["failing_mask"] == 1 << 40
    assert header["processing_ms"] == 50 and header["reason_bits"] == 0b1001
    holes = mm.decode_holes(block, order)
    for sent, got in zip(message["holes"], holes):
        assert got["id"] == sent["id"]
        for key in ("x_mm", "y_mm", "z_mm", "diameter_mm", "u", "v", "diameter_px"):
            assert got[key] == pytest.approx(sent[key], abs=1e-3), key
        assert got["score"] == pytest.approx(0.9)


def test_holes_beyond_max_are_counted_but_not_written():
    block = mm.encode_result_block(_message(n_holes=5), "ABCD", max_holes=2)
    header = mm.decode_header(block)
    assert header["hole_count"] == 2 and header["holes_found"] == 5
    assert len(block) == mm.map_size(2) - mm.RESULT_TRIGGER_ID


def test_uncalibrated_positions_are_nan_not_zero():
    message = _message()
    for hole in message["holes"]:
        hole["x_mm"] = hole["y_mm"] = hole["z_mm"] = None
    holes = mm.decode_holes(mm.encode_result_block(message, "CDAB", 4), "CDAB")
    assert all(math.isnan(h["x_mm"]) for h in holes)
    assert holes[0]["u"] == pytest.approx(100.25)


def test_robot_pose_registers_round_trip():
    pose = [412.5, -100.25, 300.0, 0.1, -3.0, 1.5]
    assert np.allclose(mm.decode_robot_pose(mm.encode_robot_pose(pose, "BADC"), "BADC"), pose, atol=1e-5)
    with pytest.raises(ValueError, match="6 values"):
        mm.encode_robot_pose([1, 2, 3])


def test_table_names_every_field_once_and_does_not_overlap():
    used = {}
    for entry in mm.REGISTER_TABLE:
        for address in range(entry.address, entry.address + entry.words):
            assert address not in used, f"{entry.name} overlaps {used[address]}"
            used[address] = entry.name
    text = mm.format_register_table(32)
    for name in ("heartbeat", "status", "result_sequence", "hole[k].x", "failing_holes", "recipe_select"):
        assert name in text
