"""The service config: the example round-trips, and errors name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from holevision.runtime.config import Config, ConfigError, example_config, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_back_to_the_defaults(tmp_path):
    path = tmp_path / "holevision.toml"
    path.write_text(example_config())
    assert load_config(path) == Config()


def test_shipped_systemd_config_is_valid():
    config = load_config(ROOT / "systemd" / "holevision.toml")
    assert config.journal.state_dir == "/var/lib/holevision"
    assert config.publish.zmq.pub.startswith("tcp://127.0.0.1")   # loopback unless chosen otherwise


@pytest.mark.parametrize("text, field", [
    ("[publish.modbus]\nprot = 5020\n", "publish.modbus.prot"),
    ("[publish.modbus]\nword_order = 'ACBD'\n", "publish.modbus.word_order"),
    ("[trigger]\nmode = 'sometimes'\n", "trigger.mode"),
    ("[source]\nfps = -1\n", "source.fps"),
    ("[calibration]\nrobot_pose_format = 'abb'\n", "calibration.robot_pose_format"),
    ("[model]\nflips = 3\n", "model.flips"),
])
def test_errors_name_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_not_toml_and_missing_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[source\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_calibration_mode_without_files_is_refused_naming_the_field(tmp_path):
    from holevision.runtime.config import parse_config
    from holevision.runtime.hole_geometry import GeometryConfigError, HoleGeometry

    config = parse_config({"calibration": {"mode": "eye-to-hand"}}, "cell.toml")
    with pytest.raises(GeometryConfigError, match="cell.toml: calibration.camera"):
        HoleGeometry.from_config(config.calibration, "cell.toml")
