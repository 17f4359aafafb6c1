"""The Modbus TCP server on loopback: a real pymodbus client, a raw socket, the handshake, exceptions."""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time

import pytest

from holevision.runtime.detections import Holes
from holevision.runtime.publish import modbus_map as mm
from holevision.runtime.publish.modbus_server import ModbusServerPublisher
from holevision.runtime.publish.plc_simulator import PlcError, PlcSimulator
from holevision.runtime.result import Result, to_dict

pytest.importorskip("pymodbus")


def _message(seq: int, trigger_id: int | None, n_holes: int = 2) -> dict:
    holes = Holes(centers=[[10.0 * (i + 1), 20.0] for i in range(n_holes)], axes=[[8.0, 8.0]] * n_holes,
                  angles=[0.0] * n_holes, scores=[0.95] * n_holes,
                  points_base=[[seq + 0.5, i, -1.0] for i in range(n_holes)])
    return to_dict(Result(seq=seq, camera="cam0", capture_epoch=time.time(), done_epoch=time.time(),
                          holes=holes, trigger_id=trigger_id))


class FakeCamera:
    """Answers every accepted trigger with a result on its own thread, like the pipeline does."""

    def __init__(self, delay_s: float = 0.0):
        self.triggers: queue.Queue = queue.Queue()
        self.delay_s = delay_s
        self.seq = 0
        self.poses = []
        self.publisher = ModbusServerPublisher(port=0, max_holes=4, word_order="CDAB", on_trigger=self.on_trigger)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def on_trigger(self, trigger_id, pose):
        self.triggers.put((trigger_id, pose))

    def _run(self):
        while not self._stop.is_set():
            try:
                trigger_id, pose = self.triggers.get(timeout=0.05)
            except queue.Empty:
                continue
            time.sleep(self.delay_s)
            self.seq += 1
            self.poses.append(pose)
            message = _message(self.seq, trigger_id)
            self.publisher.publish_result(message, to_message_bytes(message))

    def __enter__(self):
        self.publisher.start()
        self.publisher.publish_ready(True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(1)
        self.publisher.stop()


def to_message_bytes(message: dict) -> bytes:
    import json
    return json.dumps(message).encode()


def _raw_request(port: int, pdu: bytes, transaction: int = 7) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(struct.pack(">HHHB", transaction, 0, len(pdu) + 1, 1) + pdu)
        header = sock.recv(7)
        tid, proto, length, unit = struct.unpack(">HHHB", header)
        assert tid == transaction and proto == 0
        body = b""
        while len(body) < length - 1:
            body += sock.recv(length - 1 - len(body))
        return body


def test_plc_simulator_triggers_100_times_and_gets_100_results_in_order():
    with FakeCamera() as camera, PlcSimulator(port=camera.publisher.port, word_order="CDAB", max_holes=4) as plc:
        assert plc.status() & mm.STATUS_READY
        results = [plc.trigger(trigger_id) for trigger_id in range(1, 101)]
    assert [r["trigger_id"] for r in results] == list(range(1, 101))
    assert [r["seq"] for r in results] == list(range(1, 101))
    assert all(r["hole_count"] == 2 for r in results)
    assert results[41]["holes"][0]["x_mm"] == pytest.approx(42.5)
    assert camera.publisher.bank.triggers == 100 and camera.publisher.bank.overruns == 0


def test_handshake_states_and_robot_pose_reach_the_camera():
    with FakeCamera(delay_s=0.3) as camera, PlcSimulator(port=camera.publisher.port, word_order="CDAB",
                                                         max_holes=4) as plc:
        plc.write(mm.ROBOT_POSE, mm.encode_robot_pose([100, 200, 300, 0, 0, 1.5], "CDAB"))
        plc.write(mm.ROBOT_POSE_VALID, [1])
        plc.write(mm.TRIGGER_ID, [5])
        plc.write(mm.CONTROL, [mm.CONTROL_TRIGGER])
        status = plc.status()
        assert status & mm.STATUS_TRIGGER_ACK and status & mm.STATUS_BUSY and not status & mm.STATUS_RESULT_VALID
        # a second rising edge while busy is an overrun, visible to the PLC, and starts nothing
        plc.write(mm.CONTROL, [0])
        assert not plc.status() & mm.STATUS_TRIGGER_ACK
        plc.write(mm.CONTROL, [mm.CONTROL_TRIGGER])
        assert plc.status() & mm.STATUS_OVERRUN
        plc.write(mm.CONTROL, [0])
        deadline = time.monotonic() + 3
        while not plc.status() & mm.STATUS_RESULT_VALID and time.monotonic() < deadline:
            time.sleep(0.01)
        status = plc.status()
        assert status & mm.STATUS_RESULT_VALID and not status & mm.STATUS_BUSY
        assert plc.read_result()["trigger_id"] == 5
        plc.write(mm.CONTROL, [mm.CONTROL_RESULT_ACK])
        assert not plc.status() & mm.STATUS_RESULT_VALID
        plc.write(mm.CONTROL, [mm.CONTROL_CLEAR_ERROR])
        assert not plc.status() & mm.STATUS_OVERRUN
    assert camera.publisher.bank.triggers == 1 and camera.publisher.bank.overruns == 1
    assert camera.poses[0] == pytest.approx([100, 200, 300, 0, 0, 1.5], abs=1e-4)


def test_pymodbus_client_gets_exceptions_not_zeros():
    from pymodbus.client import ModbusTcpClient

    with FakeCamera() as camera:
        size = camera.publisher.bank.size
        client = ModbusTcpClient("127.0.0.1", port=camera.publisher.port, timeout=2, retries=0)
        assert client.connect()
        try:
            ok = client.read_holding_registers(0, count=10, device_id=1)
            assert not ok.isError() and len(ok.registers) == 10
            outside = client.read_holding_registers(size - 2, count=5, device_id=1)
            assert outside.isError() and outside.exception_code == 0x02
            read_only = client.write_register(mm.RESULT_SEQUENCE, 1, device_id=1)
            assert read_only.isError() and read_only.exception_code == 0x02
        finally:
            client.close()


def test_raw_socket_reads_map_and_gets_exception_codes():
    with FakeCamera() as camera:
        port = camera.publisher.port
        message = _message(seq=3, trigger_id=11)
        camera.publisher.bank.publish_result(message)
        body = _raw_request(port, struct.pack(">BHH", 3, mm.RESULT_TRIGGER_ID, 20))
        assert body[0] == 3 and body[1] == 40
        registers = struct.unpack(">20H", body[2:])
        assert registers[mm.RESULT_TRIGGER_ID - 30] == 11 and registers[mm.RESULT_SEQUENCE - 30] == 3
        assert _raw_request(port, struct.pack(">BHH", 3, 0, 0)) == bytes([0x83, 0x03])       # quantity 0
        assert _raw_request(port, struct.pack(">BHH", 3, 0, 126)) == bytes([0x83, 0x03])     # quantity > 125
        assert _raw_request(port, struct.pack(">BHH", 3, 60000, 1)) == bytes([0x83, 0x02])   # outside the map
        assert _raw_request(port, struct.pack(">BHH", 4, 0, 2))[0] == 4                     # input registers too
        assert _raw_request(port, struct.pack(">BHHB", 16, 2, 2, 3) + b"\x00\x01\x00") == bytes([0x90, 0x03])
        assert _raw_request(port, bytes([0x2B, 0x0E, 0x01, 0x00])) == bytes([0xAB, 0x01])    # unsupported function


def test_heartbeat_toggles():
    publisher = ModbusServerPublisher(port=0, heartbeat_s=0.05).start()
    try:
        seen = set()
        deadline = time.monotonic() + 2
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.add(publisher.bank.read(mm.HEARTBEAT, 1)[0])
            time.sleep(0.01)
        assert seen == {0, 1}
    finally:
        publisher.stop()


def test_error_is_visible_to_the_plc():
    publisher = ModbusServerPublisher(port=0, on_trigger=lambda tid, pose: publisher.publish_error(
        mm.ERROR_CAMERA, "camera lost", tid)).start()
    try:
        with PlcSimulator(port=publisher.port, timeout_s=2) as plc:
            with pytest.raises(PlcError, match="error code 2"):
                plc.trigger(1)
            assert not plc.status() & mm.STATUS_ERROR  # the simulator cleared it
    finally:
        publisher.stop()


def test_client_mode_writes_results_into_the_plc_registers():
    from holevision.runtime.publish.modbus_client import ModbusClientPublisher
    from holevision.runtime.publish.modbus_server import ModbusException, ModbusTcpServer, RegisterBank

    class PlcMemory(RegisterBank):
        """A PLC's holding registers: everything writable, nothing interpreted."""

        def write(self, address, values):
            if address < 0 or address + len(values) > self.size:
                raise ModbusException(0x02, "outside")
            with self._lock:
                self._registers[address:address + len(values)] = list(values)

    offset = 100
    memory = PlcMemory(max_holes=16)                      # 306 registers: room for the offset + a 2-hole map
    plc = ModbusTcpServer(memory, port=0).start()
    publisher = ModbusClientPublisher("127.0.0.1", plc.port, max_holes=2, word_order="DCBA",
                                      register_offset=offset).start()
    try:
        message = _message(seq=77, trigger_id=5)
        publisher.publish_ready(True)
        publisher.publish_result(message, b"")
        deadline = time.monotonic() + 3
        while publisher.sent < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert publisher.sent == 2 and publisher.errors == 0
        registers = memory.read(offset + mm.RESULT_TRIGGER_ID, mm.map_size(2) - mm.RESULT_TRIGGER_ID)
        header = mm.decode_header(registers)
        assert header["seq"] == 77 and header["trigger_id"] == 5 and header["hole_count"] == 2
        holes = mm.decode_holes(registers, "DCBA")
        assert holes[1]["x_mm"] == pytest.approx(77.5) and holes[1]["u"] == pytest.approx(20.0)
        status = memory.read(offset + mm.STATUS, 1)[0]
        assert status & mm.STATUS_READY and status & mm.STATUS_RESULT_VALID
    finally:
        publisher.stop()
        plc.stop()


def test_client_mode_survives_an_absent_plc():
    from holevision.runtime.publish.modbus_client import ModbusClientPublisher

    with socket.socket() as probe:                         # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    publisher = ModbusClientPublisher("127.0.0.1", port, timeout_s=0.2).start()
    try:
        for seq in range(5):
            publisher.publish_result(_message(seq=seq, trigger_id=None), b"")
        deadline = time.monotonic() + 3
        while publisher.backlog and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        publisher.stop()
    assert publisher.errors + publisher.dropped == 5 and publisher.sent <= 5
