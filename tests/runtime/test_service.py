"""Service plumbing: sd_notify, metrics + /health, QA verdicts reaching Modbus and the NG image store,
and the service commands (modbus map, results tail)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
import pytest

from holevision.runtime import cli
from holevision.runtime.journal import Journal
from holevision.runtime.publish import modbus_map as mm
from holevision.runtime.publish.plc_simulator import PlcSimulator
from holevision.runtime.service import Watchdog, build_service, sd_notify
from holevision.runtime.sources.synthetic import render_discs

from service_fakes import DiscDetector, loopback_config


def test_sd_notify_and_watchdog_talk_to_the_notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sd_notify("READY=1")
        assert server.recv(100) == b"READY=1"
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        clock = iter([10.0, 10.5, 11.2]).__next__
        watchdog = Watchdog(clock=clock)
        assert watchdog.interval_s == 1.0
        watchdog(), watchdog(), watchdog()       # at 10.0 (ping), 10.5 (too soon), 11.2 (ping)
        assert watchdog.pings == 2 and server.recv(100) == b"WATCHDOG=1"
    finally:
        server.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert sd_notify("READY=1") is False


def _run(service):
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    return runner


def test_metrics_and_health_endpoints(tmp_path):
    service = build_service(loopback_config(tmp_path, metrics=True, modbus=False, zmq=False),
                            detector=DiscDetector())
    service.start()
    runner = _run(service)
    port = service.servers[0].port
    try:
        deadline = time.monotonic() + 10
        while service.pipeline.frames < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read())
    finally:
        service.pipeline.stop()
        runner.join(10)
    assert 'holevision_frames_total{camera="cam0"}' in metrics
    assert "holevision_stage_seconds_bucket" in metrics and 'holevision_dropped_total{stage="capture"}' in metrics
    assert "holevision_camera_reconnects_total 0.0" in metrics
    assert health["healthy"] is True and health["camera"]["connected"] is True


def test_health_is_503_when_the_camera_is_gone(tmp_path):
    config = loopback_config(tmp_path, metrics=True, modbus=False, zmq=False,
                             source={"kind": "folder", "uri": str(tmp_path / "no-such-folder")})
    service = build_service(config, detector=DiscDetector()).start()
    runner = _run(service)
    try:
        time.sleep(0.3)
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://127.0.0.1:{service.servers[0].port}/health", timeout=5)
        assert error.value.code == 503
        assert "no-such-folder" in json.loads(error.value.read())["camera"]["last_error"]
    finally:
        service.pipeline.stop()
        runner.join(10)


def test_ng_verdict_reaches_modbus_and_the_ng_image_is_kept(tmp_path):
    from holevision.runtime.inspect.recipe import recipe_from_holes, save_recipe

    golden, truth = render_discs(5, 320, 256)
    holes = DiscDetector().detect(golden).holes.numbered()
    recipe = recipe_from_holes(holes.centers, holes.diameters_px, name="plate", units="px", position_tol=3.0)
    recipe_path = save_recipe(recipe, tmp_path / "plate.toml")
    # the part on the line lacks hole 7: paint it over with the plate's grey
    part = golden.copy()
    u, v = holes.centers[6]
    cv2.circle(part, (int(round(u)), int(round(v))), int(holes.diameters_px[6]), (170, 170, 170), -1)
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "part.png"), part)
    config = loopback_config(tmp_path / "state", fps=20, zmq=False,
                             source={"kind": "folder", "uri": str(images)},
                             inspect={"recipes": [str(recipe_path)], "active": 1})
    service = build_service(config, detector=DiscDetector()).start()
    runner = _run(service)
    try:
        with PlcSimulator(port=service.modbus.port, max_holes=8) as plc:
            deadline = time.monotonic() + 10
            while not plc.status() & mm.STATUS_RESULT_VALID and time.monotonic() < deadline:
                time.sleep(0.02)
            result = plc.read_result()
            assert plc.read(mm.RECIPE_SELECT, 1) == [1]            # the config's active recipe
            plc.write(mm.RECIPE_SELECT, [0])                       # the PLC switches inspection off
            deadline = time.monotonic() + 10
            after = plc.read_result()
            while (after["seq"] <= result["seq"] + 1 or after["verdict"] is not None) \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
                after = plc.read_result()
    finally:
        service.pipeline.stop()
        runner.join(10)
    assert after["verdict"] is None and after["counts"]["missing"] == 0    # code 0: no inspection ran
    assert result["verdict"] == "NG"
    assert result["counts"]["missing"] == 1 and result["counts"]["expected"] == len(holes)
    assert result["failing_mask"] == 1 << 6
    with Journal(tmp_path / "state").open(readonly=True) as journal:
        last = journal.tail(1, verdict="NG")[0]
    assert last["inspection"]["counts"]["missing"] == 1
    image = cv2.imread(last["_image_path"])
    assert image is not None and image.shape[1] == 320    # the overlay keeps the frame's width


def test_modbus_map_command_prints_the_table(capsys):
    assert cli.main(["modbus", "map", "--max-holes", "4", "--word-order", "CDAB"]) == 0
    out = capsys.readouterr().out
    assert "word order CDAB" in out and "result_sequence" in out and f"{mm.map_size(4)} registers" in out


def test_results_tail_command(tmp_path, capsys):
    service = build_service(loopback_config(tmp_path, modbus=False, zmq=False), detector=DiscDetector()).start()
    service.run(max_frames=3)
    assert cli.main(["results", "tail", "--state-dir", str(tmp_path), "-n", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and table[0].split()[0] == "seq"
    assert cli.main(["results", "tail", "--state-dir", str(tmp_path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(len(r["holes"]) == 20 for r in rows)
    assert cli.main(["results", "tail", "--state-dir", str(tmp_path / "nothing")]) == 2
    assert "no journal" in capsys.readouterr().err


def test_service_install_dry_run_prints_the_steps(capsys):
    assert cli.main(["service", "install", "--dry-run", "--no-start"]) in (0, 1)
    out = capsys.readouterr().out
    assert "install.sh" in out
