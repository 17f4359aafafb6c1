"""The Modbus register map (holding registers, 0-based addresses) and its pure encoders.

Nothing here does I/O: ``encode_result_block(message, ...)`` turns a result (schema v1 dict) into the
register values the server or client writes, ``float32_to_words`` / ``words_to_float32`` handle the
four word orders, and ``REGISTER_TABLE`` is the documented map (``holevision modbus map`` prints it).

Layout::

    0 .. 29     handshake and PLC inputs (heartbeat, status, control, trigger id, recipe, robot pose)
    30 .. 49    result header (trigger id, sequence, counts, verdict, failing-holes bit field)
    50 ..       one 16-register block per hole (id, score, x, y, z, diameter mm, u, v, diameter px)

Floats are IEEE-754 float32 in two registers; ``word_order`` says how the four bytes A B C D (A = most
significant) are laid out: ABCD (big-endian, high word first), CDAB (low word first), BADC, DCBA.
Unknown values (no calibration) are NaN.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from holevision.runtime.result import (  # noqa: F401 - re-exported for the map
    ERROR_BAD_POSE, ERROR_CAMERA, ERROR_NONE, ERROR_PROCESSING, ERROR_TIMEOUT)

WORD_ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")

# Status register bits (camera -> PLC).
STATUS_READY = 1 << 0         # service running, camera open, ready for a trigger
STATUS_BUSY = 1 << 1          # a trigger is being processed
STATUS_RESULT_VALID = 1 << 2  # result registers hold a complete result for RESULT_SEQUENCE
STATUS_ERROR = 1 << 3         # the last trigger failed; see ERROR_CODE
STATUS_OVERRUN = 1 << 4       # a trigger arrived while the previous one was still being processed
STATUS_TRIGGER_ACK = 1 << 5   # the camera has accepted the trigger (cleared when the PLC clears TRIGGER)

# Control register bits (PLC -> camera).
CONTROL_TRIGGER = 1 << 0      # rising edge starts one acquisition
CONTROL_RESULT_ACK = 1 << 1   # PLC has read the result; camera clears RESULT_VALID
CONTROL_CLEAR_ERROR = 1 << 2  # clears ERROR and OVERRUN

# Error codes (ERROR_CODE register) are the result schema's: 0 none, 1 processing, 2 camera, 3 timeout, 4 bad pose.

VERDICT_CODES = {None: 0, "OK": 1, "NG": 2, "NONE": 3}

HEARTBEAT = 0
STATUS = 1
CONTROL = 2
TRIGGER_ID = 3
RECIPE_SELECT = 4
ERROR_CODE = 5
ROBOT_POSE_VALID = 8
ROBOT_POSE = 10               # 6 float32: T_base_flange in calibration.robot_pose_format (kuka, fanuc, ur)
RESULT_TRIGGER_ID = 30
RESULT_SEQUENCE = 31
HOLE_COUNT = 32
HOLES_FOUND = 33
VERDICT = 34
EXPECTED_COUNT = 35
OK_COUNT = 36
MISSING_COUNT = 37
OUT_OF_TOLERANCE_COUNT = 38
EXTRA_COUNT = 39
FAILING_HOLES = 40            # 4 registers: bits 0..15 of the mask in 40, 16..31 in 41, ... (bit k = hole k+1)
PROCESSING_MS = 44
RESULT_SEQUENCE_HIGH = 45     # upper 16 bits of the 32-bit sequence (RESULT_SEQUENCE holds the lower 16)
REASON_BITS = 46              # why NG: the inspection's reason bits (holevision.runtime.inspect REASON_BITS)
HOLES_BASE = 50
HOLE_BLOCK = 16               # registers per hole

# Offsets inside one hole block.
HOLE_ID, HOLE_SCORE, HOLE_X, HOLE_Y, HOLE_Z, HOLE_DIAMETER_MM, HOLE_U, HOLE_V, HOLE_DIAMETER_PX = (
    0, 1, 2, 4, 6, 8, 10, 12, 14)

# Registers the PLC may write; every other address is read-only (a write answers exception 0x02).
PLC_WRITABLE = frozenset([CONTROL, TRIGGER_ID, RECIPE_SELECT, ROBOT_POSE_VALID, *range(ROBOT_POSE, ROBOT_POSE + 12)])


@dataclass(frozen=True)
class RegisterField:
    address: int
    name: str
    kind: str          # uint16 | bits | float32 | uint16x4
    access: str        # R (camera writes) | RW (PLC writes)
    description: str

    @property
    def words(self) -> int:
        return {"float32": 2, "uint16x4": 4}.get(self.kind, 1)


REGISTER_TABLE: tuple[RegisterField, ...] = (
    RegisterField(HEARTBEAT, "heartbeat", "uint16", "R", "toggles 0/1 every second while the service runs"),
    RegisterField(STATUS, "status", "bits", "R",
                  "bit0 ready, bit1 busy, bit2 result valid, bit3 error, bit4 overrun, bit5 trigger ack"),
    RegisterField(CONTROL, "control", "bits", "RW",
                  "bit0 trigger (rising edge), bit1 result ack, bit2 clear error/overrun"),
    RegisterField(TRIGGER_ID, "trigger_id", "uint16", "RW", "PLC's id for the next trigger; echoed in result_trigger_id"),
    RegisterField(RECIPE_SELECT, "recipe_select", "uint16", "RW", "inspection recipe number (1-based); 0 = none"),
    RegisterField(ERROR_CODE, "error_code", "uint16", "R",
                  "0 none, 1 processing failed, 2 camera lost, 3 trigger timeout, 4 bad robot pose"),
    RegisterField(ROBOT_POSE_VALID, "robot_pose_valid", "uint16", "RW",
                  "eye-in-hand: 1 = robot_pose holds the flange pose at this trigger"),
    *(RegisterField(ROBOT_POSE + 2 * i, f"robot_pose[{i}]", "float32", "RW", desc) for i, desc in enumerate(
        ["flange x in the base frame (calibration.robot_pose_format kuka/fanuc: mm; ur: m)", "flange y", "flange z",
         "kuka A / fanuc W (deg); ur rx (rad, rotation vector)", "kuka B / fanuc P (deg); ur ry (rad)",
         "kuka C / fanuc R (deg); ur rz (rad)"])),
    RegisterField(RESULT_TRIGGER_ID, "result_trigger_id", "uint16", "R", "trigger id this result answers"),
    RegisterField(RESULT_SEQUENCE, "result_sequence", "uint16", "R",
                  "frame sequence (low 16 bits); changes only after all result registers are written"),
    RegisterField(HOLE_COUNT, "hole_count", "uint16", "R", "holes in the per-hole blocks (at most max_holes)"),
    RegisterField(HOLES_FOUND, "holes_found", "uint16", "R", "holes detected in the frame"),
    RegisterField(VERDICT, "verdict", "uint16", "R", "0 no recipe, 1 OK, 2 NG, 3 nothing to judge"),
    RegisterField(EXPECTED_COUNT, "expected_count", "uint16", "R", "recipe holes expected"),
    RegisterField(OK_COUNT, "ok_count", "uint16", "R", "expected holes found within tolerance"),
    RegisterField(MISSING_COUNT, "missing_count", "uint16", "R", "expected holes not found"),
    RegisterField(OUT_OF_TOLERANCE_COUNT, "out_of_tolerance_count", "uint16", "R", "found, but position/diameter out of tolerance"),
    RegisterField(EXTRA_COUNT, "extra_count", "uint16", "R", "holes found that the recipe does not expect"),
    RegisterField(FAILING_HOLES, "failing_holes", "uint16x4", "R",
                  "64-bit mask of failing recipe holes: bit k = the (k+1)-th recipe hole in id order; bits 0-15 in the first register"),
    RegisterField(PROCESSING_MS, "processing_ms", "uint16", "R", "capture to result, ms (saturates at 65535)"),
    RegisterField(RESULT_SEQUENCE_HIGH, "result_sequence_high", "uint16", "R", "frame sequence, upper 16 bits"),
    RegisterField(REASON_BITS, "reason_bits", "bits", "R",
                  "why NG: bit0 missing hole, 1 position OOT, 2 diameter OOT, 3 extra hole, 4 ambiguous pose, "
                  "8 no detections, 9 part not found, 10 too few matches, 11 fit residual high, 12 part out of view"),
    RegisterField(HOLES_BASE + HOLE_ID, "hole[k].id", "uint16", "R", f"hole k block at {HOLES_BASE} + {HOLE_BLOCK}*k: hole number (1-based)"),
    RegisterField(HOLES_BASE + HOLE_SCORE, "hole[k].score", "uint16", "R", "confidence x 1000"),
    RegisterField(HOLES_BASE + HOLE_X, "hole[k].x", "float32", "R", "center x in the robot base frame, mm (NaN uncalibrated)"),
    RegisterField(HOLES_BASE + HOLE_Y, "hole[k].y", "float32", "R", "center y, mm"),
    RegisterField(HOLES_BASE + HOLE_Z, "hole[k].z", "float32", "R", "center z, mm"),
    RegisterField(HOLES_BASE + HOLE_DIAMETER_MM, "hole[k].diameter_mm", "float32", "R", "diameter, mm"),
    RegisterField(HOLES_BASE + HOLE_U, "hole[k].u", "float32", "R", "center u in the image, px"),
    RegisterField(HOLES_BASE + HOLE_V, "hole[k].v", "float32", "R", "center v in the image, px"),
    RegisterField(HOLES_BASE + HOLE_DIAMETER_PX, "hole[k].diameter_px", "float32", "R", "diameter, px"),
)


def map_size(max_holes: int) -> int:
    """Number of holding registers in the map (addresses 0 .. size-1)."""
    return HOLES_BASE + HOLE_BLOCK * max_holes


def check_word_order(word_order: str) -> str:
    if word_order not in WORD_ORDERS:
        raise ValueError(f"word_order must be one of {', '.join(WORD_ORDERS)}, got {word_order!r}")
    return word_order


def float32_to_words(value: float, word_order: str = "ABCD") -> tuple[int, int]:
    """Two registers holding ``value`` as float32 in the given byte/word order."""
    a, b, c, d = struct.pack(">f", float(value))
    order = check_word_order(word_order)
    byte = {"A": a, "B": b, "C": c, "D": d}
    return (byte[order[0]] << 8) | byte[order[1]], (byte[order[2]] << 8) | byte[order[3]]


def words_to_float32(words, word_order: str = "ABCD") -> float:
    """Inverse of ``float32_to_words``."""
    w0, w1 = int(words[0]), int(words[1])
    order = check_word_order(word_order)
    got = {order[0]: w0 >> 8, order[1]: w0 & 0xFF, order[2]: w1 >> 8, order[3]: w1 & 0xFF}
    return struct.unpack(">f", bytes([got["A"], got["B"], got["C"], got["D"]]))[0]


def _u16(value) -> int:
    return max(0, min(0xFFFF, int(value)))


def _num(value) -> float:
    return math.nan if value is None else float(value)


def encode_result_block(message: dict, word_order: str = "ABCD", max_holes: int = 32) -> list[int]:
    """Registers RESULT_TRIGGER_ID .. end of the map for one result (schema v1 dict).

    Returns ``map_size(max_holes) - RESULT_TRIGGER_ID`` values; unused hole blocks are zero with NaN
    floats. The caller writes them all, then raises RESULT_VALID, so a PLC never sees a mix.
    """
    check_word_order(word_order)
    seq = int(message["seq"])
    holes = message["holes"][:max_holes]
    inspection = message.get("inspection") or {}
    counts = inspection.get("counts") or {}
    mask = int(inspection.get("failing_bits") or 0) & 0xFFFF_FFFF_FFFF_FFFF
    processing_ms = (message["done_epoch"] - message["capture_epoch"]) * 1000.0
    header = [0] * (HOLES_BASE - RESULT_TRIGGER_ID)

    def put(address: int, value: int) -> None:
        header[address - RESULT_TRIGGER_ID] = _u16(value)

    put(RESULT_TRIGGER_ID, (message.get("trigger_id") or 0) & 0xFFFF)
    put(RESULT_SEQUENCE, seq & 0xFFFF)
    put(RESULT_SEQUENCE_HIGH, (seq >> 16) & 0xFFFF)
    put(HOLE_COUNT, len(holes))
    put(HOLES_FOUND, len(message["holes"]))
    put(VERDICT, VERDICT_CODES.get(message.get("verdict"), 0))
    put(EXPECTED_COUNT, counts.get("expected", 0))
    put(OK_COUNT, counts.get("ok", 0))
    put(MISSING_COUNT, counts.get("missing", 0))
    put(OUT_OF_TOLERANCE_COUNT, counts.get("out_of_tolerance", 0))
    put(EXTRA_COUNT, counts.get("extra", 0))
    for i in range(4):
        put(FAILING_HOLES + i, (mask >> (16 * i)) & 0xFFFF)
    put(REASON_BITS, int(inspection.get("reason_bits") or 0) & 0xFFFF)
    put(PROCESSING_MS, round(processing_ms) if math.isfinite(processing_ms) else 0)

    blocks: list[int] = []
    for k in range(max_holes):
        block = [0] * HOLE_BLOCK
        hole = holes[k] if k < len(holes) else None
        values = {HOLE_X: None, HOLE_Y: None, HOLE_Z: None, HOLE_DIAMETER_MM: None,
                  HOLE_U: None, HOLE_V: None, HOLE_DIAMETER_PX: None}
        if hole is not None:
            block[HOLE_ID] = _u16(hole["id"])
            block[HOLE_SCORE] = _u16(round(_num(hole.get("score")) * 1000) if hole.get("score") is not None else 0)
            values = {HOLE_X: hole.get("x_mm"), HOLE_Y: hole.get("y_mm"), HOLE_Z: hole.get("z_mm"),
                      HOLE_DIAMETER_MM: hole.get("diameter_mm"), HOLE_U: hole.get("u"), HOLE_V: hole.get("v"),
                      HOLE_DIAMETER_PX: hole.get("diameter_px")}
        for offset, value in values.items():
            block[offset], block[offset + 1] = float32_to_words(_num(value), word_order)
        blocks.extend(block)
    return header + blocks


def decode_holes(registers: list[int], word_order: str = "ABCD") -> list[dict]:
    """Read the result header + hole blocks back (``registers`` starts at address RESULT_TRIGGER_ID)."""
    def reg(address: int) -> int:
        return registers[address - RESULT_TRIGGER_ID]

    def flt(address: int) -> float:
        return words_to_float32((reg(address), reg(address + 1)), word_order)

    holes = []
    for k in range(reg(HOLE_COUNT)):
        base = HOLES_BASE + HOLE_BLOCK * k
        holes.append({"id": reg(base + HOLE_ID), "score": reg(base + HOLE_SCORE) / 1000.0,
                      "x_mm": flt(base + HOLE_X), "y_mm": flt(base + HOLE_Y), "z_mm": flt(base + HOLE_Z),
                      "diameter_mm": flt(base + HOLE_DIAMETER_MM), "u": flt(base + HOLE_U),
                      "v": flt(base + HOLE_V), "diameter_px": flt(base + HOLE_DIAMETER_PX)})
    return holes


def decode_header(registers: list[int]) -> dict:
    """Result header fields from registers starting at RESULT_TRIGGER_ID."""
    def reg(address: int) -> int:
        return registers[address - RESULT_TRIGGER_ID]

    verdicts = {code: name for name, code in VERDICT_CODES.items()}
    mask = sum(reg(FAILING_HOLES + i) << (16 * i) for i in range(4))
    return {"trigger_id": reg(RESULT_TRIGGER_ID),
            "seq": reg(RESULT_SEQUENCE) | (reg(RESULT_SEQUENCE_HIGH) << 16),
            "hole_count": reg(HOLE_COUNT), "holes_found": reg(HOLES_FOUND),
            "verdict": verdicts.get(reg(VERDICT), f"code {reg(VERDICT)}"),
            "counts": {"expected": reg(EXPECTED_COUNT), "ok": reg(OK_COUNT), "missing": reg(MISSING_COUNT),
                       "out_of_tolerance": reg(OUT_OF_TOLERANCE_COUNT), "extra": reg(EXTRA_COUNT)},
            "failing_mask": mask, "reason_bits": reg(REASON_BITS), "processing_ms": reg(PROCESSING_MS)}


def decode_robot_pose(registers: list[int], word_order: str = "ABCD") -> list[float]:
    """The 6 pose values (in the configured robot pose format) from the 12 registers at ROBOT_POSE."""
    return [words_to_float32((registers[2 * i], registers[2 * i + 1]), word_order) for i in range(6)]


def encode_robot_pose(pose: list[float], word_order: str = "ABCD") -> list[int]:
    """12 registers for ROBOT_POSE from 6 pose values (what a robot/PLC writes)."""
    if len(pose) != 6:
        raise ValueError(f"robot pose must have 6 values (x, y, z + 3 angles), got {len(pose)}")
    words: list[int] = []
    for value in pose:
        words.extend(float32_to_words(value, word_order))
    return words


def format_register_table(max_holes: int = 32, word_order: str = "ABCD") -> str:
    """The map as a plain-text table (what `holevision modbus map` prints)."""
    lines = [f"holding registers, 0-based (PLC address 40001 + n); float32 word order {word_order}; "
             f"{map_size(max_holes)} registers for max_holes={max_holes}",
             f"{'addr':>6}  {'words':>5}  {'type':<9} {'acc':<3}  {'name':<24} description"]
    for entry in REGISTER_TABLE:
        lines.append(f"{entry.address:>6}  {entry.words:>5}  {entry.kind:<9} {entry.access:<3}  "
                     f"{entry.name:<24} {entry.description}")
    last = HOLES_BASE + HOLE_BLOCK * (max_holes - 1)
    lines.append(f"{'':>6}  hole k = 0..{max_holes - 1}: block at {HOLES_BASE} + {HOLE_BLOCK}*k (last at {last})")
    lines.append("handshake: PLC sets control.trigger -> camera sets trigger_ack+busy -> writes all result "
                 "registers -> result_valid (busy cleared) -> PLC sets control.result_ack -> camera clears "
                 "result_valid -> PLC clears trigger and result_ack -> camera clears trigger_ack.")
    lines.append("errors: a request outside 0..%d answers exception 0x02, a bad quantity 0x03, a write to an "
                 "R register 0x02." % (map_size(max_holes) - 1))
    return "\n".join(lines)
