"""Modbus TCP client mode: write each result into a PLC's holding registers (the PLC is the server).

The same map as the server, shifted by ``register_offset``. Order per result: hole blocks, then the
header (which holds the sequence), then STATUS with RESULT_VALID - so a PLC that watches the sequence
or the status register never reads a half-written result. A lost PLC connection is retried with
backoff on the publisher's own thread; results queued meanwhile are dropped oldest-first and counted.
"""

from __future__ import annotations

import logging
import time

from holevision.runtime.publish import modbus_map as mm
from holevision.runtime.publish.queued import QueuedPublisher

log = logging.getLogger(__name__)

MAX_WRITE = 123


class ModbusClientPublisher(QueuedPublisher):
    name = "modbus-client"

    def __init__(self, host: str, port: int = 502, max_holes: int = 32, word_order: str = "ABCD",
                 device_id: int = 1, register_offset: int = 0, queue_size: int = 16, timeout_s: float = 1.0,
                 backoff_max_s: float = 10.0):
        super().__init__(queue_size)
        self.host, self.port = host, port
        self.max_holes = max_holes
        self.word_order = mm.check_word_order(word_order)
        self.device_id = device_id
        self.register_offset = register_offset
        self.timeout_s = timeout_s
        self.backoff_max_s = backoff_max_s
        self._client = None
        self._retry_at = 0.0
        self._backoff = 0.5
        self._status = 0
        self.clients = 0   # for the metrics: 1 while connected to the PLC

    def open_io(self) -> None:
        from pymodbus.client import ModbusTcpClient

        self._client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0)

    def close_io(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _connected(self) -> bool:
        if self._client.connected:
            return True
        if time.monotonic() < self._retry_at:
            return False
        if self._client.connect():
            self._backoff = 0.5
            self.clients = 1
            return True
        self.clients = 0
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max_s)
        raise ConnectionError(f"modbus client: PLC at {self.host}:{self.port} not reachable (publish.modbus.host)")

    def _write(self, address: int, values: list[int]) -> None:
        for start in range(0, len(values), MAX_WRITE):
            chunk = values[start:start + MAX_WRITE]
            response = self._client.write_registers(self.register_offset + address + start, chunk,
                                                    device_id=self.device_id)
            if response.isError():
                raise ConnectionError(f"modbus client: PLC refused write at {self.register_offset + address + start}: "
                                      f"{response}")

    def send(self, item) -> None:
        kind, first, _second = item
        if not self._connected():
            self.dropped += 1
            return
        try:
            if kind == "ready":
                self._status = (self._status | mm.STATUS_READY) if first else (self._status & ~mm.STATUS_READY)
                self._write(mm.STATUS, [self._status])
                return
            if kind != "result":
                return
            if first.get("error"):
                self._status |= mm.STATUS_ERROR
                self._write(mm.ERROR_CODE, [int(first["error"]["code"])])
                self._write(mm.STATUS, [self._status])
                return
            block = mm.encode_result_block(first, self.word_order, self.max_holes)
            header_len = mm.HOLES_BASE - mm.RESULT_TRIGGER_ID
            self._write(mm.HOLES_BASE, block[header_len:])
            self._write(mm.RESULT_TRIGGER_ID, block[:header_len])
            self._status = (self._status | mm.STATUS_RESULT_VALID) & ~mm.STATUS_ERROR
            self._write(mm.STATUS, [self._status])
        except (ConnectionError, OSError):
            self._client.close()
            self.clients = 0
            raise
