"""The pipeline and the wired service on loopback: free-run, PLC triggers, robot pose, journal order."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from holevision.runtime.journal import Journal
from holevision.runtime.pipeline import Pipeline, ResultWriter, robot_pose_to_transform
from holevision.runtime.publish.plc_simulator import PlcSimulator
from holevision.runtime.publish.queued import QueuedPublisher
from holevision.runtime.service import build_service
from holevision.runtime.sources.capture import CaptureThread
from holevision.runtime.sources.synthetic import SyntheticSource

from service_fakes import DiscDetector, loopback_config


class RecordingPublisher(QueuedPublisher):
    name = "recording"

    def __init__(self, delay_s: float = 0.0, queue_size: int = 64):
        super().__init__(queue_size)
        self.delay_s = delay_s
        self.messages = []

    def send(self, item):
        if self.delay_s:
            time.sleep(self.delay_s)
        if item[0] == "result":
            self.messages.append(item[1])


def _capture(fps=100.0):
    return CaptureThread(lambda: SyntheticSource(seed=2, width=320, height=256, renderer="discs"), fps=fps)


def test_free_run_results_are_journaled_and_published_with_holes(tmp_path):
    journal = Journal(tmp_path).open()
    publisher = RecordingPublisher().start()
    writer = ResultWriter(journal, [publisher]).start()
    capture = _capture().start()
    pipeline = Pipeline(capture, DiscDetector(), writer=writer, model_name="discs")
    try:
        produced = pipeline.run(max_frames=10)
    finally:
        capture.stop()
        writer.stop()
        publisher.stop()
    assert produced == 10
    seqs = [m["seq"] for m in publisher.messages]
    assert len(seqs) == 10 and seqs == sorted(seqs)
    assert all(len(m["holes"]) == 20 for m in publisher.messages)     # the disc source draws 20 holes
    assert all(m["model"]["name"] == "discs" and "model" in m["timings_ms"] for m in publisher.messages)
    with Journal(tmp_path).open(readonly=True) as j:
        assert j.count() == 10
        assert j.get(seqs[3])["holes"] == publisher.messages[3]["holes"]


def test_journal_row_exists_before_any_publisher_sees_the_result(tmp_path):
    journal = Journal(tmp_path).open()
    seen = []

    class Checking(RecordingPublisher):
        def send(self, item):
            with Journal(tmp_path).open(readonly=True) as reader:
                seen.append(reader.get(item[1]["seq"]) is not None)

    checker = Checking().start()
    writer = ResultWriter(journal, [checker]).start()
    capture = _capture().start()
    try:
        Pipeline(capture, DiscDetector(), writer=writer).run(max_frames=5)
    finally:
        capture.stop()
        writer.stop()
        checker.stop()
    assert seen == [True] * 5


def test_stalled_publisher_does_not_stall_inference(tmp_path):
    release = threading.Event()

    class Stalled(RecordingPublisher):
        def send(self, item):
            release.wait(30)          # a dead peer: the first send never returns

    stalled = Stalled(queue_size=4).start()
    writer = ResultWriter(Journal(tmp_path).open(), [stalled]).start()
    capture = _capture(fps=500).start()
    pipeline = Pipeline(capture, DiscDetector(), writer=writer)
    produced = []
    runner = threading.Thread(target=lambda: produced.append(pipeline.run(max_frames=30)), daemon=True)
    try:
        runner.start()
        runner.join(20)               # liveness bound; with a blocking publisher run() would never return
        assert not runner.is_alive()
        deadline = time.monotonic() + 10
        while stalled.dropped + stalled.backlog < 29 and time.monotonic() < deadline:
            time.sleep(0.01)
        # one send in flight (stuck), four queued, the other 25 dropped - while still stuck
        assert (stalled.backlog, stalled.dropped) == (4, 25)
    finally:
        release.set()
        capture.stop()
        writer.stop()
        stalled.stop()
    assert produced == [30]
    with Journal(tmp_path).open(readonly=True) as journal:
        assert journal.count() == 30         # ... but every result is in the journal


def test_plc_triggers_through_the_wired_service_give_results_in_order(tmp_path):
    config = loopback_config(tmp_path, trigger="plc", fps=100, zmq=False)
    service = build_service(config, detector=DiscDetector()).start()
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        with PlcSimulator(port=service.modbus.port, max_holes=8, timeout_s=3) as plc:
            deadline = time.monotonic() + 3
            while not plc.status() & 1 and time.monotonic() < deadline:   # READY
                time.sleep(0.01)
            results = [plc.trigger(trigger_id) for trigger_id in range(1, 21)]
    finally:
        service.pipeline.stop()
        runner.join(10)
    assert [r["trigger_id"] for r in results] == list(range(1, 21))
    seqs = [r["seq"] for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20
    assert all(r["hole_count"] == 8 and r["holes_found"] == 20 for r in results)
    with Journal(tmp_path).open(readonly=True) as journal:
        assert [m["trigger_id"] for m in journal.tail(20)] == list(range(1, 21))


def test_robot_pose_formats_become_T_base_flange():
    T = robot_pose_to_transform({"format": "ur", "values": [0.1, 0.2, 0.3, 0, 0, 0]})
    assert np.allclose(T[:3, 3], [100, 200, 300])
    T = robot_pose_to_transform([10, 20, 30, 90, 0, 0], "kuka")
    assert np.allclose(T[:3, 3], [10, 20, 30]) and np.allclose(T[:3, 0], [0, 1, 0], atol=1e-9)
    matrix = np.eye(4)
    matrix[:3, 3] = [1, 2, 3]
    assert np.allclose(robot_pose_to_transform({"T_base_flange": matrix.tolist()}), matrix)
    assert robot_pose_to_transform(None) is None
    with pytest.raises(ValueError, match="T_base_flange"):
        robot_pose_to_transform({"T_base_flange": [[1, 0], [0, 1]]})


def test_trigger_without_a_camera_gets_an_error_result(tmp_path):
    class NoCamera:
        connected = False
        dropped = reconnects = repeated = 0

        def next_frame(self, timeout, newer_than=None):
            time.sleep(min(timeout, 0.05))
            return None

        def is_lost(self):
            return True

    recorder = RecordingPublisher().start()
    writer = ResultWriter(None, [recorder]).start()
    pipeline = Pipeline(NoCamera(), DiscDetector(), trigger_mode="software", writer=writer,
                        trigger_frame_timeout_s=0.1)
    runner = threading.Thread(target=pipeline.run, kwargs={"max_frames": 1}, daemon=True)
    runner.start()
    message = pipeline.trigger(4, None, timeout_s=3)
    runner.join(3)
    writer.stop()
    recorder.stop()
    assert message["trigger_id"] == 4 and message["error"]["code"] == 2 and message["holes"] == []
    assert pipeline.status()["healthy"] is False


def test_demo_calibration_puts_holes_in_the_base_frame(tmp_path):
    from holevision.runtime.config import parse_config
    from holevision.runtime.demo import DEMO_HEIGHT, DEMO_WIDTH, write_demo_calibration
    from holevision.runtime.detections import Holes
    from holevision.runtime.hole_geometry import HoleGeometry

    files = write_demo_calibration(tmp_path)
    config = parse_config({"calibration": {"mode": "eye-to-hand", **files}}, "demo.toml")
    geometry = HoleGeometry.from_config(config.calibration, "demo.toml")
    center = [DEMO_WIDTH / 2 - 0.5, DEMO_HEIGHT / 2 - 0.5]
    holes = Holes(centers=[center, [center[0] + 150, center[1] + 30]], axes=[[30.0, 30.0], [15.0, 15.0]],
                  angles=[0.0, 0.0], scores=[1.0, 1.0])
    located = geometry(holes)
    # 500 mm away at fx 1500 px: 1/3 mm per px; image +u = base +x, image +v = base -y
    assert located.points_base[0] == pytest.approx([400.0, 0.0, 0.0], abs=1e-6)
    assert located.points_base[1] == pytest.approx([450.0, -10.0, 0.0], abs=1e-2)
    assert located.diameters_mm == pytest.approx([10.0, 5.0], abs=1e-2)
    assert located.approach_base[0] == pytest.approx([0.0, 0.0, -1.0])
    with pytest.raises(Exception, match="mode"):
        bad = parse_config({"calibration": {"mode": "eye-in-hand", **files}}, "demo.toml")
        HoleGeometry.from_config(bad.calibration, "demo.toml")


def test_demo_prints_poses_received_over_zeromq_and_modbus(capsys):
    from holevision.runtime.demo import run_demo

    lines = []
    assert run_demo(frames=3, detector=DiscDetector(), printer=lines.append) == 0
    zmq_lines = [line for line in lines if line.startswith("[zmq")]
    modbus_lines = [line for line in lines if line.startswith("[modbus")]
    assert len(zmq_lines) == 3 and len(modbus_lines) == 3
    assert [f"trigger={i}" in line for i, line in zip((1, 2, 3), modbus_lines)] == [True] * 3


def test_eye_in_hand_uses_the_pose_sent_with_the_trigger(tmp_path):
    from holevision.calibration.handeye_file import HANDEYE_FORMAT, HANDEYE_VERSION
    from holevision.calibration.jsonio import write_json
    from holevision.runtime.config import parse_config
    from holevision.runtime.demo import DEMO_T_BASE_CAM, write_demo_calibration
    from holevision.runtime.hole_geometry import HoleGeometry

    files = write_demo_calibration(tmp_path)
    # camera on the flange, 100 mm along the flange z axis; the robot holds it where the demo camera is
    T_flange_cam = np.eye(4)
    T_flange_cam[2, 3] = 100.0
    write_json(tmp_path / "handeye_hand.json", HANDEYE_FORMAT, HANDEYE_VERSION,
               {"mode": "eye-in-hand", "T_flange_cam": T_flange_cam, "T_base_target": np.eye(4)})
    config = parse_config({"calibration": {"mode": "eye-in-hand", "camera": files["camera"], "plane": files["plane"],
                                           "handeye": str(tmp_path / "handeye_hand.json")}}, "hand.toml")
    geometry = HoleGeometry.from_config(config.calibration, "hand.toml")
    assert geometry.needs_robot_pose
    T_base_flange = np.array(DEMO_T_BASE_CAM) @ np.linalg.inv(T_flange_cam)
    holes = DiscDetector().detect(SyntheticSource(seed=3, width=640, height=512, renderer="discs").read()).holes
    in_hand = geometry(holes, T_base_flange)
    fixed = HoleGeometry.from_config(parse_config({"calibration": {"mode": "eye-to-hand", **files}}, "x").calibration)
    assert np.allclose(in_hand.points_base, fixed(holes).points_base, atol=1e-6)
    moved = T_base_flange.copy()
    moved[0, 3] += 25.0                                   # the robot moved 25 mm along base x
    assert np.allclose(geometry(holes, moved).points_base[:, 0], in_hand.points_base[:, 0] + 25.0, atol=1e-6)
    with pytest.raises(ValueError, match="robot pose"):
        geometry(holes, None)

    # through the pipeline: a trigger without a pose is refused with the bad-pose error code
    recorder = RecordingPublisher().start()
    writer = ResultWriter(None, [recorder]).start()
    capture = _capture().start()
    pipeline = Pipeline(capture, DiscDetector(), trigger_mode="software", writer=writer, geometry=geometry,
                        eye_in_hand=True)
    runner = threading.Thread(target=pipeline.run, kwargs={"max_frames": 2}, daemon=True)
    runner.start()
    try:
        refused = pipeline.trigger(1, None, timeout_s=5)
        pose = {"T_base_flange": moved.tolist()}
        located = pipeline.trigger(2, pose, timeout_s=5)
    finally:
        runner.join(5)
        capture.stop()
        writer.stop()
        recorder.stop()
    assert refused["error"]["code"] == 4 and "robot pose" in refused["error"]["message"]
    assert located["error"] is None and located["robot_pose"][0][3] == pytest.approx(moved[0, 3])
    assert all(h["x_mm"] is not None for h in located["holes"])


def test_stale_and_repeated_frames_are_flagged_in_the_result():
    from holevision.runtime.sources.base import Frame

    class OldFrames:
        connected, dropped, reconnects, repeated = True, 0, 0, 0

        def __init__(self):
            image = np.full((64, 64, 3), 170, np.uint8)
            now = time.monotonic()
            self.frames = [Frame(image, 1, time.time(), now, "cam0"),
                           Frame(image, 2, time.time() - 5, now - 5, "cam0", repeated=True)]

        def next_frame(self, timeout, newer_than=None):
            return self.frames.pop(0) if self.frames else None

        def is_lost(self):
            return False

    messages = []
    Pipeline(OldFrames(), DiscDetector(), stale_after_s=2.0, on_result=messages.append).run(max_frames=2)
    assert [m["image"]["stale"] for m in messages] == [False, True]
    assert [m["image"]["repeated"] for m in messages] == [False, True]


def test_free_run_overlaps_the_model_with_post_processing_and_reports_model_errors():
    from service_fakes import SplitDiscDetector

    detector = SplitDiscDetector(delay_s=0.01, fail_on_call=3)
    capture = _capture(fps=200).start()
    messages = []
    pipeline = Pipeline(capture, detector, on_result=messages.append)
    assert pipeline._split is not None
    try:
        pipeline.run(max_frames=8)
    finally:
        capture.stop()
    assert len(messages) == 8
    errors = [m for m in messages if m["error"]]
    assert len(errors) == 1 and "model exploded" in errors[0]["error"]["message"] and errors[0]["error"]["code"] == 1
    good = [m for m in messages if not m["error"]]
    assert all(len(m["holes"]) == 20 and "model" in m["timings_ms"] and "extract" in m["timings_ms"] for m in good)
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == 8
    # triggered modes stay serial (one trigger, one frame)
    assert Pipeline(capture, detector, trigger_mode="software")._split is None
