"""ZeroMQ on loopback: a SUB receives results, the command socket answers, a stalled SUB costs nothing."""

from __future__ import annotations

import json
import threading
import time

import pytest

from holevision.runtime.publish.zmq_commands import handle_request
from holevision.runtime.result import from_message
from holevision.runtime.service import build_service

from service_fakes import DiscDetector, loopback_config

zmq = pytest.importorskip("zmq")


def _running_service(tmp_path, trigger="free-run", fps=50.0, detector=None):
    config = loopback_config(tmp_path, trigger=trigger, fps=fps, modbus=False)
    service = build_service(config, detector=detector or DiscDetector()).start()
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    return service, runner


def _endpoints(service):
    pub = service.publishers[0].bound_endpoint
    command = service.servers[0].bound_endpoint
    return pub, command


def _request(endpoint: str, request: dict, timeout_ms: int = 5000) -> dict:
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
    socket.connect(endpoint)
    try:
        socket.send(json.dumps(request).encode())
        return json.loads(socket.recv())
    finally:
        socket.close()


def test_subscriber_receives_results_and_commands_answer(tmp_path):
    service, runner = _running_service(tmp_path)
    try:
        pub, command = _endpoints(service)
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"holes/")
        sub.setsockopt(zmq.RCVTIMEO, 5000)
        sub.connect(pub)
        received = []
        while len(received) < 3:
            topic, payload = sub.recv_multipart()
            received.append((topic, from_message(payload)))
        assert all(topic == b"holes/cam0" for topic, _ in received)
        seqs = [m["seq"] for _, m in received]
        assert seqs == sorted(seqs) and all(len(m["holes"]) == 20 for _, m in received)

        status = _request(command, {"cmd": "status"})
        assert status["ok"] and status["status"]["camera"]["connected"] and status["status"]["frames"] >= 3

        late = _request(command, {"cmd": "result", "seq": seqs[0]})      # a late joiner fetches by seq
        assert late["ok"] and late["result"]["holes"] == received[0][1]["holes"]
        assert not _request(command, {"cmd": "result", "seq": 10 ** 9})["ok"]

        selector = zmq.Context.instance().socket(zmq.SUB)
        selector.setsockopt(zmq.SUBSCRIBE, b"select/")
        selector.setsockopt(zmq.RCVTIMEO, 5000)
        selector.connect(pub)
        time.sleep(0.2)   # let the subscription reach the publisher
        chosen = _request(command, {"cmd": "select", "hole": 2, "seq": seqs[1]})
        assert chosen["ok"] and chosen["selected"]["hole"]["id"] == 2
        topic, payload = selector.recv_multipart()
        assert topic == b"select/cam0" and json.loads(payload)["hole"] == chosen["selected"]["hole"]
        assert not _request(command, {"cmd": "select", "hole": 99, "seq": seqs[1]})["ok"]
        assert "cmd" in _request(command, {"nothing": 1})["error"]
        # free-run: a software trigger is refused with a clear message
        assert "free-run" in _request(command, {"cmd": "trigger"})["error"]
        sub.close()
        selector.close()
    finally:
        service.pipeline.stop()
        runner.join(10)


def test_software_trigger_replies_with_the_result_and_uses_the_robot_pose(tmp_path):
    service, runner = _running_service(tmp_path, trigger="software", fps=100)
    try:
        _, command = _endpoints(service)
        pose = {"format": "kuka", "values": [100, 200, 300, 0, 0, 0]}
        replies = [_request(command, {"cmd": "trigger", "trigger_id": i, "robot_pose": pose}) for i in (1, 2, 3)]
    finally:
        service.pipeline.stop()
        runner.join(10)
    assert [r["result"]["trigger_id"] for r in replies] == [1, 2, 3]
    assert replies[0]["result"]["robot_pose"][0][3] == pytest.approx(100)
    assert all(len(r["result"]["holes"]) == 20 for r in replies)


def test_stalled_subscriber_does_not_slow_inference(tmp_path):
    # A subscriber that connects and never reads: its buffers and ZeroMQ's high-water mark fill up,
    # after which PUB drops for it. The pipeline must keep producing and the publisher keep sending.
    service, runner = _running_service(tmp_path, fps=1000)
    stalled = zmq.Context.instance().socket(zmq.SUB)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.connect(_endpoints(service)[0])
    publisher = service.publishers[0]
    try:
        deadline = time.monotonic() + 20      # liveness bound only; the figure checked is a count
        while publisher.sent < 600 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.pipeline.stop()
        runner.join(10)
        stalled.close(0)
    # 600 results of ~6 kB each are far more than the high-water mark (100) and socket buffers hold,
    # so a blocking publisher would have stopped long before.
    assert publisher.sent >= 600
    assert service.pipeline.frames >= 600


def test_bad_requests_get_clear_errors():
    class Handler:
        def status(self):
            return {}

    assert "not JSON" in handle_request(Handler(), b"{nope")["error"]
    assert "seq" in handle_request(Handler(), b'{"cmd": "result", "seq": "x"}')["error"]
    assert "hole" in handle_request(Handler(), b'{"cmd": "select", "hole": 0}')["error"]
    assert "trigger_id" in handle_request(Handler(), b'{"cmd": "trigger", "trigger_id": -1}')["error"]
