"""Service configuration: a TOML file validated by pydantic.

Every error names the file, the field path (``publish.modbus.port``) and what was expected, so a
controls engineer can fix a config without reading Python tracebacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from holevision.runtime.settings_files import format_validation_error, parse_toml_or_json, read_text



class ConfigError(ValueError):
    """A configuration file could not be read or does not validate."""


class _Section(BaseModel):
    # Unknown keys are errors: a typo ("prot = 5020") must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Section):
    """Where frames come from."""

    kind: Literal["synthetic", "opencv", "video", "folder", "genicam"] = "synthetic"
    uri: str = Field("", description="camera index, /dev/videoN, RTSP/GStreamer URL, video file or image folder")
    camera_name: str = Field("cam0", description="names the ZeroMQ topic and journal rows")
    fps: float = Field(5.0, gt=0, description="free-run rate for synthetic/folder/video sources")
    loop: bool = Field(True, description="restart a video file or folder at its end")
    seed: int = Field(0, description="seed of the synthetic source")
    synthetic_style: Literal["photo", "cad", "discs"] = Field(
        "photo", description="synthetic parts: photo-like or CAD-like renders, or plain discs (benchmarks)")
    width: int = Field(1280, ge=32)
    height: int = Field(1024, ge=32)
    stale_after_s: float = Field(2.0, gt=0, description="no new frame for this long means the camera is lost")


class ModelConfig(_Section):
    """Which model bundle to run, and how."""

    bundle: str = Field("default", description="path to a bundle folder, or 'default' for the packaged one")
    engine: Literal["auto", "onnxruntime", "tensorrt"] = "auto"
    providers: list[str] = Field(default_factory=list, description="onnxruntime providers; empty = best available")
    threads: int = Field(0, ge=0, description="intra-op threads; 0 = onnxruntime's default")
    threshold: float | None = Field(None, gt=0, lt=1, description="hole probability threshold; None = bundle default")
    min_diameter_px: float = Field(3.0, ge=0)
    flips: Literal[1, 2, 4] = Field(
        1, description="mirror views averaged per frame: 2 or 4 find more holes more surely for 2x or 4x the "
                       "model time; set threshold as chosen by `holevision eval --flips N --sweep`")
    verifier: bool = Field(
        True, description="run the bundle's hole verifier when it has one (holevision train-verifier); false "
                          "reports every candidate at the threshold")


class TriggerConfig(_Section):
    """How frames are taken: free-run (newest frame wins), software (ZeroMQ command) or plc (Modbus handshake)."""

    mode: Literal["free-run", "software", "plc"] = "free-run"
    frame_timeout_s: float = Field(2.0, gt=0, description="a trigger with no frame within this time gets an error result")


class ZmqConfig(_Section):
    """ZeroMQ: results on PUB, commands on REP. Loopback by default; binding elsewhere is a deliberate choice."""

    enabled: bool = True
    pub: str = Field("tcp://127.0.0.1:5555", description="PUB endpoint; results on topic 'holes/<camera>'")
    command: str = Field("tcp://127.0.0.1:5556", description="REP endpoint for trigger/status/result/select")
    queue: int = Field(64, ge=1, description="bounded queue; a slow subscriber drops, never stalls inference")


class ModbusConfig(_Section):
    """Modbus TCP: server (the PLC polls; 502 in production) or client (writes into the PLC's registers)."""

    enabled: bool = True
    mode: Literal["server", "client"] = "server"
    host: str = Field("127.0.0.1", description="server: bind address; client: the PLC's address")
    port: int = Field(5020, ge=0, le=65535, description="0 = any free port (tests)")
    unit_id: int = Field(1, ge=0, le=255)
    word_order: Literal["ABCD", "CDAB", "BADC", "DCBA"] = "ABCD"
    max_holes: int = Field(32, ge=1, le=200)
    client_register_offset: int = Field(0, ge=0, description="client mode: first holding register in the PLC")


class PublishConfig(_Section):
    zmq: ZmqConfig = Field(default_factory=ZmqConfig)
    modbus: ModbusConfig = Field(default_factory=ModbusConfig)


class CalibrationConfig(_Section):
    """Pixel -> robot base frame (files from `holevision calib ...`); mode none keeps results in pixels."""

    camera: str = Field("", description="camera.json from `holevision calib intrinsics`; empty = pixels only")
    handeye: str = Field("", description="handeye.json from `holevision calib handeye`")
    plane: str = Field("", description="plane.json (work plane in the camera frame)")
    mode: Literal["none", "eye-to-hand", "eye-in-hand", "n-point"] = "none"
    robot_pose_format: Literal["kuka", "fanuc", "ur"] = Field(
        "kuka", description="eye-in-hand: units/angles of the pose in the Modbus robot_pose registers")


class InspectConfig(_Section):
    """QA inspection recipes (`holevision recipe ...`)."""

    recipes: list[str] = Field(default_factory=list, description="recipe files; the PLC selects by number (1-based)")
    active: int = Field(0, ge=0, description="recipe number at start; 0 = no inspection")


class JournalConfig(_Section):
    """Results journal (SQLite, WAL) and NG images in the state directory, with retention."""

    state_dir: str = Field("/var/lib/holevision", description="results journal (SQLite) and NG images")
    keep_results: int = Field(100_000, ge=1)
    keep_days: float = Field(30.0, gt=0)
    keep_ng_images_mb: float = Field(2000.0, gt=0)
    save_ng_images: bool = True


class MetricsConfig(_Section):
    """Prometheus /metrics and /health over HTTP on localhost."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535, description="0 = any free port (tests)")


class Config(_Section):
    """The whole `holevision run` configuration."""

    source: SourceConfig = Field(default_factory=SourceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    inspect: InspectConfig = Field(default_factory=InspectConfig)
    journal: JournalConfig = Field(default_factory=JournalConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)


def parse_config(data: dict, source: str | Path = "<config>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(
            source, exc, unknown_field_hint="check the spelling; `holevision config example` lists every field")) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config; raise ConfigError naming the file and field on any problem."""
    path = Path(path)
    text = read_text(path, ConfigError)
    data = parse_toml_or_json(text, path, ConfigError)
    return parse_config(data, path)


def example_config() -> str:
    """A complete, commented TOML config with every field at its default."""
    lines = ["# holevision service configuration (`holevision run --config FILE`).",
             "# Every field is shown with its default. Unknown fields are errors.", ""]
    _emit_section(Config(), [], lines)
    return "\n".join(lines).rstrip() + "\n"


def _emit_section(model: BaseModel, prefix: list[str], lines: list[str]) -> None:
    scalars, sections = [], []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        (sections if isinstance(value, BaseModel) else scalars).append((name, field, value))
    if prefix and scalars:
        lines.append(f"[{'.'.join(prefix)}]")
        doc = (type(model).__doc__ or "").strip().splitlines()
        if doc:
            lines.insert(len(lines) - 1, f"# {doc[0]}")
    for name, field, value in scalars:
        if value is None:
            lines.append(f"# {name} =  # {field.description or ''}".rstrip())
            continue
        comment = f"  # {field.description}" if field.description else ""
        lines.append(f"{name} = {_toml_value(value)}{comment}")
    if scalars:
        lines.append("")
    for name, _field, value in sections:
        _emit_section(value, prefix + [name], lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
