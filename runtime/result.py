"""The one result schema (``v: 1``) that every output carries: ZeroMQ, Modbus, the journal, `run --json`.

``Result`` is what the pipeline produces for one frame; ``to_dict`` / ``to_message`` turn it into the
versioned JSON document and ``from_message`` reads (and checks) one back. All three are pure.

Example message (one hole, calibrated, with a recipe)::

    {"v": 1, "seq": 42, "trigger_id": 7, "camera": "cam0",
     "capture_time": "2026-11-23T12:00:00.000123+00:00", "capture_epoch": 1795435200.000123,
     "done_time": "2026-11-23T12:00:00.081000+00:00", "done_epoch": 1795435200.081,
     "model": {"name": "holevision-default", "sha256": "3f5c..."},
     "image": {"width": 1280, "height": 1024, "repeated": false, "stale": false},
     "verdict": "OK", "error": null,          (or {"code": 2, "message": "camera lost ..."})
     "holes": [{"id": 1, "u": 312.41, "v": 208.77, "diameter_px": 24.1, "diameter_mm": 8.02,
                "score": 0.98, "x_mm": 412.3, "y_mm": -35.1, "z_mm": 2.0, "approach": [0, 0, -1], ...}],
     "inspection": {"verdict": "OK", "counts": {"expected": 1, "ok": 1, ...}, ...},
     "timings_ms": {"capture_wait": 0.1, "model": 61.0, "extract": 1.2, "verify": 2.0, "geometry": 0.1, "inspect": 0.1},
     "robot_pose": null}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from holevision.runtime.detections import Holes

SCHEMA_VERSION = 1
VERDICTS = ("OK", "NG", "NONE")

# Error codes (``error.code``; also the Modbus ERROR_CODE register).
ERROR_NONE = 0
ERROR_PROCESSING = 1          # the frame could not be processed (model/extraction/geometry failure)
ERROR_CAMERA = 2              # no frame within the timeout (camera lost)
ERROR_TIMEOUT = 3             # no result within the trigger timeout
ERROR_BAD_POSE = 4            # eye-in-hand: no valid robot pose came with the trigger
REQUIRED_FIELDS = ("v", "seq", "trigger_id", "camera", "capture_time", "capture_epoch", "done_time",
                   "done_epoch", "model", "verdict", "holes", "timings_ms")


class ResultSchemaError(ValueError):
    """A message does not follow the result schema (wrong version, missing or mistyped field)."""


@dataclass
class Result:
    """Everything the service knows about one processed frame."""

    seq: int                                   # frame sequence number from the source (monotonic per camera)
    camera: str                                # camera name; also the ZeroMQ topic suffix
    capture_epoch: float                       # capture time, seconds since the Unix epoch (UTC)
    done_epoch: float                          # time the result was complete
    holes: Holes                               # measured holes, numbered 1..N
    trigger_id: int | None = None              # id from the software/PLC trigger; None in free-run
    model_name: str = ""
    model_sha256: str = ""
    verdict: str | None = None                 # OK / NG / NONE (nothing to judge); None = no recipe
    inspection: dict | None = None             # the QA step's report (counts, per-hole statuses...)
    timings_ms: dict[str, float] = field(default_factory=dict)
    robot_pose: list[list[float]] | None = None  # T_base_flange (4x4, mm) used for this frame (eye-in-hand)
    width: int = 0
    height: int = 0
    repeated: bool = False                     # the frame's content equals the previous frame's (frozen camera)
    stale: bool = False                        # the frame was older than the source's stale_after_s when processed
    error: str | None = None                   # why the frame could not be processed (holes then empty)
    error_code: int = ERROR_NONE               # one of the ERROR_* codes when ``error`` is set

    def __post_init__(self) -> None:
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise ResultSchemaError(f"Result.verdict must be one of {VERDICTS} or None, got {self.verdict!r}")


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="microseconds")


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _finite_or_none(value.item())
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite_or_none(value.tolist())
    return value


def to_dict(result: Result) -> dict:
    """The schema document for one result (JSON-ready: NaN -> None)."""
    return {
        "v": SCHEMA_VERSION,
        "seq": int(result.seq),
        "trigger_id": None if result.trigger_id is None else int(result.trigger_id),
        "camera": result.camera,
        "capture_time": iso_utc(result.capture_epoch),
        "capture_epoch": round(float(result.capture_epoch), 6),
        "done_time": iso_utc(result.done_epoch),
        "done_epoch": round(float(result.done_epoch), 6),
        "model": {"name": result.model_name, "sha256": result.model_sha256},
        "image": {"width": int(result.width), "height": int(result.height), "repeated": bool(result.repeated),
                  "stale": bool(result.stale)},
        "verdict": result.verdict,
        "error": None if result.error is None else {"code": int(result.error_code or ERROR_PROCESSING),
                                                     "message": result.error},
        "holes": result.holes.to_rows(),
        "inspection": _finite_or_none(result.inspection),
        "timings_ms": {k: round(float(v), 3) for k, v in result.timings_ms.items()},
        "robot_pose": _finite_or_none(result.robot_pose),
    }


def to_message(result: Result) -> bytes:
    """UTF-8 JSON bytes of ``to_dict(result)``; compact, keys in schema order."""
    return message_bytes(to_dict(result))


def message_bytes(message: dict) -> bytes:
    """UTF-8 JSON bytes of a schema document (``to_dict``'s output); compact, keys in schema order."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode(result: Result) -> tuple[dict, bytes]:
    """``(to_dict(result), to_message(result))`` with the document built once (the pipeline needs both)."""
    message = to_dict(result)
    return message, message_bytes(message)


def from_message(message: bytes | str, source: str = "message") -> dict:
    """Parse a result message and check its version and required fields; return the dict."""
    try:
        data = json.loads(message)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultSchemaError(f"{source}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ResultSchemaError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("v") != SCHEMA_VERSION:
        raise ResultSchemaError(f"{source}: v: unsupported schema version {data.get('v')!r} "
                                f"(this holevision reads v={SCHEMA_VERSION})")
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise ResultSchemaError(f"{source}: missing field(s): {', '.join(missing)}")
    if not isinstance(data["seq"], int) or data["seq"] < 0:
        raise ResultSchemaError(f"{source}: seq: expected a non-negative integer, got {data['seq']!r}")
    if not isinstance(data["holes"], list):
        raise ResultSchemaError(f"{source}: holes: expected a list, got {type(data['holes']).__name__}")
    if data["verdict"] is not None and data["verdict"] not in VERDICTS:
        raise ResultSchemaError(f"{source}: verdict: expected one of {VERDICTS} or null, got {data['verdict']!r}")
    for i, hole in enumerate(data["holes"]):
        if not isinstance(hole, dict) or "id" not in hole or "u" not in hole or "v" not in hole:
            raise ResultSchemaError(f"{source}: holes[{i}]: expected an object with id, u, v")
    return data


def hole_pose(message: dict, hole_id: int) -> dict:
    """The one hole a robot asked for (``select``): id, position (mm), approach, diameter; KeyError if absent."""
    for hole in message["holes"]:
        if hole["id"] == hole_id:
            return {"v": SCHEMA_VERSION, "seq": message["seq"], "trigger_id": message["trigger_id"],
                    "camera": message["camera"], "hole": hole}
    raise KeyError(f"hole {hole_id} is not in result seq {message['seq']} "
                   f"(it has {len(message['holes'])} holes)")
