"""Modbus TCP server: the PLC polls the register map of ``modbus_map`` and runs the trigger handshake.

Three parts, each doing one thing:

- ``RegisterBank``: the registers and the handshake state machine, thread-safe, no sockets. Reads and
  writes take one lock, so a result (all its registers, then RESULT_VALID and the sequence) becomes
  visible atomically.
- ``ModbusTcpServer``: a small Modbus TCP (MBAP) server on a thread per client, serving function codes
  3 and 4 (read), 6 and 16 (write). A request outside the map answers exception 0x02, a bad quantity
  0x03, an unknown function 0x01 - never silent zeros. It is written on the standard library rather
  than on pymodbus' server because pymodbus 3.x deprecates its datastore contexts (removed in v4) and
  its request decoder answers a bad quantity with 0x01 instead of 0x03; pymodbus is used as the client.
- ``ModbusServerPublisher``: the pipeline's publisher (own thread + bounded queue) that writes results
  into the bank and toggles the heartbeat.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable

from holevision.runtime.publish import modbus_map as mm
from holevision.runtime.publish.queued import QueuedPublisher

log = logging.getLogger(__name__)

EXC_ILLEGAL_FUNCTION = 0x01
EXC_ILLEGAL_ADDRESS = 0x02
EXC_ILLEGAL_VALUE = 0x03
MAX_READ = 125
MAX_WRITE = 123


class ModbusException(Exception):
    def __init__(self, code: int, why: str):
        super().__init__(why)
        self.code = code


TriggerCallback = Callable[[int, "list[float] | None"], None]


class RegisterBank:
    """Holding registers + the PLC handshake. ``on_trigger(trigger_id, robot_pose_or_None)`` is called
    (outside the lock) for every accepted trigger; it must return quickly (queue the work)."""

    def __init__(self, max_holes: int = 32, word_order: str = "ABCD", on_trigger: TriggerCallback | None = None):
        self.max_holes = max_holes
        self.word_order = mm.check_word_order(word_order)
        self.size = mm.map_size(max_holes)
        self._registers = [0] * self.size
        for k in range(max_holes):  # unused hole floats read NaN, not 0.0 (0 mm is a valid position)
            base = mm.HOLES_BASE + mm.HOLE_BLOCK * k
            for offset in (mm.HOLE_X, mm.HOLE_Y, mm.HOLE_Z, mm.HOLE_DIAMETER_MM, mm.HOLE_U, mm.HOLE_V,
                           mm.HOLE_DIAMETER_PX):
                self._registers[base + offset: base + offset + 2] = mm.float32_to_words(float("nan"), word_order)
        self._lock = threading.Lock()
        self.on_trigger = on_trigger
        self.triggers = 0
        self.overruns = 0
        self.results = 0

    # -- Modbus side -------------------------------------------------------------------------------
    def read(self, address: int, count: int) -> list[int]:
        if not 1 <= count <= MAX_READ:
            raise ModbusException(EXC_ILLEGAL_VALUE, f"read quantity {count} not in 1..{MAX_READ}")
        if address < 0 or address + count > self.size:
            raise ModbusException(EXC_ILLEGAL_ADDRESS, f"read {address}..{address + count - 1} outside 0..{self.size - 1}")
        with self._lock:
            return self._registers[address:address + count]

    def write(self, address: int, values: list[int]) -> None:
        """A PLC write. Only RW registers may be written; control edges drive the handshake."""
        if not 1 <= len(values) <= MAX_WRITE:
            raise ModbusException(EXC_ILLEGAL_VALUE, f"write quantity {len(values)} not in 1..{MAX_WRITE}")
        if address < 0 or address + len(values) > self.size:
            raise ModbusException(EXC_ILLEGAL_ADDRESS, f"write outside 0..{self.size - 1}")
        if any(a not in mm.PLC_WRITABLE for a in range(address, address + len(values))):
            raise ModbusException(EXC_ILLEGAL_ADDRESS, f"write to read-only register in {address}..{address + len(values) - 1}")
        trigger = None
        with self._lock:
            old_control = self._registers[mm.CONTROL]
            self._registers[address:address + len(values)] = [v & 0xFFFF for v in values]
            new_control = self._registers[mm.CONTROL]
            rising = new_control & ~old_control
            falling = old_control & ~new_control
            status = self._registers[mm.STATUS]
            if rising & mm.CONTROL_CLEAR_ERROR:
                status &= ~(mm.STATUS_ERROR | mm.STATUS_OVERRUN)
                self._registers[mm.ERROR_CODE] = mm.ERROR_NONE
            if rising & mm.CONTROL_RESULT_ACK:
                status &= ~mm.STATUS_RESULT_VALID
            if falling & mm.CONTROL_TRIGGER:
                status &= ~mm.STATUS_TRIGGER_ACK
            if rising & mm.CONTROL_TRIGGER:
                if status & mm.STATUS_BUSY:
                    status |= mm.STATUS_OVERRUN
                    self.overruns += 1
                else:
                    status |= mm.STATUS_TRIGGER_ACK | mm.STATUS_BUSY
                    status &= ~(mm.STATUS_RESULT_VALID | mm.STATUS_ERROR)
                    self.triggers += 1
                    pose = None
                    if self._registers[mm.ROBOT_POSE_VALID]:
                        pose = mm.decode_robot_pose(self._registers[mm.ROBOT_POSE:mm.ROBOT_POSE + 12], self.word_order)
                    trigger = (self._registers[mm.TRIGGER_ID], pose)
            self._registers[mm.STATUS] = status
        if trigger is not None and self.on_trigger is not None:
            self.on_trigger(*trigger)

    # -- camera side --------------------------------------------------------------------------------
    def publish_result(self, message: dict) -> None:
        """Write every result register, then RESULT_VALID + sequence, under one lock."""
        block = mm.encode_result_block(message, self.word_order, self.max_holes)
        with self._lock:
            self._registers[mm.RESULT_TRIGGER_ID:mm.RESULT_TRIGGER_ID + len(block)] = block
            status = self._registers[mm.STATUS]
            self._registers[mm.STATUS] = (status | mm.STATUS_RESULT_VALID) & ~mm.STATUS_BUSY
            self._registers[mm.ERROR_CODE] = mm.ERROR_NONE
            self.results += 1

    def publish_error(self, code: int) -> None:
        with self._lock:
            self._registers[mm.ERROR_CODE] = code
            status = self._registers[mm.STATUS]
            self._registers[mm.STATUS] = (status | mm.STATUS_ERROR) & ~mm.STATUS_BUSY

    def set_ready(self, ready: bool) -> None:
        with self._lock:
            if ready:
                self._registers[mm.STATUS] |= mm.STATUS_READY
            else:
                self._registers[mm.STATUS] &= ~mm.STATUS_READY

    def toggle_heartbeat(self) -> None:
        with self._lock:
            self._registers[mm.HEARTBEAT] ^= 1

    def set_recipe_select(self, number: int) -> None:
        """The recipe active at start (config ``inspect.active``), until the PLC writes another."""
        with self._lock:
            self._registers[mm.RECIPE_SELECT] = number & 0xFFFF

    def recipe_select(self) -> int:
        with self._lock:
            return self._registers[mm.RECIPE_SELECT]

    def status(self) -> int:
        with self._lock:
            return self._registers[mm.STATUS]


def handle_pdu(bank: RegisterBank, pdu: bytes) -> bytes:
    """One request PDU -> one response PDU (pure apart from the bank). Exceptions become 0x80|fc."""
    if not pdu:
        return b""
    function = pdu[0]
    try:
        if function in (3, 4):
            if len(pdu) != 5:
                raise ModbusException(EXC_ILLEGAL_VALUE, "read request must be 5 bytes")
            address, count = struct.unpack(">HH", pdu[1:5])
            values = bank.read(address, count)
            return struct.pack(">BB", function, 2 * len(values)) + struct.pack(f">{len(values)}H", *values)
        if function == 6:
            if len(pdu) != 5:
                raise ModbusException(EXC_ILLEGAL_VALUE, "write single request must be 5 bytes")
            address, value = struct.unpack(">HH", pdu[1:5])
            bank.write(address, [value])
            return pdu
        if function == 16:
            if len(pdu) < 6:
                raise ModbusException(EXC_ILLEGAL_VALUE, "write multiple request too short")
            address, count, byte_count = struct.unpack(">HHB", pdu[1:6])
            if not 1 <= count <= MAX_WRITE or byte_count != 2 * count or len(pdu) != 6 + byte_count:
                raise ModbusException(EXC_ILLEGAL_VALUE, f"write quantity {count} / byte count {byte_count} invalid")
            values = list(struct.unpack(f">{count}H", pdu[6:6 + byte_count]))
            bank.write(address, values)
            return struct.pack(">BHH", function, address, count)
        raise ModbusException(EXC_ILLEGAL_FUNCTION, f"function code {function} not supported")
    except ModbusException as exc:
        log.debug("modbus exception 0x%02x: %s", exc.code, exc)
        return struct.pack(">BB", (function | 0x80) & 0xFF, exc.code)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: ModbusTcpServer = self.server  # type: ignore[assignment]
        sock: socket.socket = self.request
        sock.settimeout(server.idle_timeout_s)
        server.client_connected(+1)
        try:
            while not server.stopping:
                header = _recv_exact(sock, 7)
                if header is None:
                    return
                transaction, protocol, length, unit = struct.unpack(">HHHB", header)
                if protocol != 0 or not 2 <= length <= 254:
                    return  # not Modbus TCP: drop the connection
                pdu = _recv_exact(sock, length - 1)
                if pdu is None:
                    return
                response = handle_pdu(server.bank, pdu)
                sock.sendall(struct.pack(">HHHB", transaction, 0, len(response) + 1, unit) + response)
        except (OSError, socket.timeout):
            return
        finally:
            server.client_connected(-1)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class ModbusTcpServer(socketserver.ThreadingTCPServer):
    """Serves a RegisterBank on (host, port); port 0 picks a free port (see ``.port``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, bank: RegisterBank, host: str = "127.0.0.1", port: int = 5020, idle_timeout_s: float = 60.0):
        self.bank = bank
        self.idle_timeout_s = idle_timeout_s
        self.stopping = False
        self.clients = 0
        self._clients_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"modbus: cannot listen on {host}:{port}: {exc.strerror} "
                                     f"(publish.modbus.host / publish.modbus.port)") from None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def client_connected(self, delta: int) -> None:
        with self._clients_lock:
            self.clients += delta

    def start(self) -> "ModbusTcpServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="holevision-modbus-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping = True
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(2.0)


class ModbusServerPublisher(QueuedPublisher):
    """Pipeline publisher: results/errors go into the bank on this thread; heartbeat at 1 Hz."""

    name = "modbus-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 5020, max_holes: int = 32, word_order: str = "ABCD",
                 on_trigger: TriggerCallback | None = None, queue_size: int = 16, heartbeat_s: float = 1.0):
        super().__init__(queue_size)
        self.bank = RegisterBank(max_holes, word_order, on_trigger)
        self._host, self._port = host, port
        self.server: ModbusTcpServer | None = None
        self._heartbeat_s = heartbeat_s
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.port if self.server else self._port

    @property
    def clients(self) -> int:
        return self.server.clients if self.server else 0

    def open_io(self) -> None:
        self.server = ModbusTcpServer(self.bank, self._host, self._port).start()
        self._heartbeat_thread = threading.Thread(target=self._beat, name="holevision-modbus-heartbeat", daemon=True)
        self._heartbeat_thread.start()

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(self._heartbeat_s):
            self.bank.toggle_heartbeat()

    def close_io(self) -> None:
        self._stop_heartbeat.set()
        self.bank.set_ready(False)
        if self.server is not None:
            self.server.stop()
            self.server = None

    def send(self, item) -> None:
        kind, first, _second = item
        if kind == "result" and first.get("error"):
            self.bank.publish_error(int(first["error"]["code"]))
        elif kind == "result":
            self.bank.publish_result(first)
        elif kind == "error":
            self.bank.publish_error(int(first))
        elif kind == "ready":
            self.bank.set_ready(bool(first))

    def wait_idle(self, timeout: float = 2.0) -> None:
        """Block until the queue is drained (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self.backlog and time.monotonic() < deadline:
            time.sleep(0.005)
