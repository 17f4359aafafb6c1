"""A PLC simulator: a pymodbus client that runs the trigger handshake against our Modbus server.

The demo prints what it receives; the tests use it to trigger 100 times and check 100 results in
order. It talks only Modbus, exactly as a PLC would (see ``modbus_map`` for the handshake).
"""

from __future__ import annotations

import time

from holevision.runtime.publish import modbus_map as mm


class PlcError(RuntimeError):
    """The camera did not follow the handshake in time, or answered a Modbus exception."""


class PlcSimulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 5020, word_order: str = "ABCD", max_holes: int = 32,
                 device_id: int = 1, timeout_s: float = 3.0, poll_s: float = 0.002):
        from pymodbus.client import ModbusTcpClient

        self.word_order = mm.check_word_order(word_order)
        self.max_holes = max_holes
        self.device_id = device_id
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=1)

    def __enter__(self) -> "PlcSimulator":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        if not self.client.connect():
            raise PlcError(f"cannot connect to the camera's Modbus server at "
                           f"{self.client.comm_params.host}:{self.client.comm_params.port}")

    def close(self) -> None:
        self.client.close()

    # -- register access -----------------------------------------------------------------------------
    def read(self, address: int, count: int) -> list[int]:
        values: list[int] = []
        while count > 0:
            n = min(count, 125)
            response = self.client.read_holding_registers(address, count=n, device_id=self.device_id)
            if response.isError():
                raise PlcError(f"read {address}+{n}: Modbus exception {getattr(response, 'exception_code', '?')}")
            values.extend(response.registers)
            address += n
            count -= n
        return values

    def write(self, address: int, values: list[int]) -> None:
        response = self.client.write_registers(address, values, device_id=self.device_id)
        if response.isError():
            raise PlcError(f"write {address}: Modbus exception {getattr(response, 'exception_code', '?')}")

    def status(self) -> int:
        return self.read(mm.STATUS, 1)[0]

    def _wait(self, condition, what: str) -> int:
        deadline = time.monotonic() + self.timeout_s
        while True:
            status = self.status()
            if condition(status):
                return status
            if time.monotonic() > deadline:
                raise PlcError(f"timed out after {self.timeout_s} s waiting for {what} (status=0b{status:06b})")
            time.sleep(self.poll_s)

    # -- the handshake -------------------------------------------------------------------------------
    def read_result(self) -> dict:
        """The result registers as a dict: header fields + ``holes``."""
        registers = self.read(mm.RESULT_TRIGGER_ID, mm.map_size(self.max_holes) - mm.RESULT_TRIGGER_ID)
        result = mm.decode_header(registers)
        result["holes"] = mm.decode_holes(registers, self.word_order)
        return result

    def trigger(self, trigger_id: int, robot_pose: list[float] | None = None) -> dict:
        """Trigger -> TriggerAck/Busy -> ResultValid -> read -> ResultAck -> cleared. Returns the result."""
        if robot_pose is not None:
            self.write(mm.ROBOT_POSE, mm.encode_robot_pose(robot_pose, self.word_order))
        self.write(mm.ROBOT_POSE_VALID, [1 if robot_pose is not None else 0])
        self.write(mm.TRIGGER_ID, [trigger_id & 0xFFFF])
        self.write(mm.CONTROL, [mm.CONTROL_TRIGGER])
        status = self._wait(lambda s: s & (mm.STATUS_TRIGGER_ACK | mm.STATUS_OVERRUN), "trigger ack")
        if status & mm.STATUS_OVERRUN and not status & mm.STATUS_TRIGGER_ACK:
            self.write(mm.CONTROL, [mm.CONTROL_CLEAR_ERROR])
            self.write(mm.CONTROL, [0])
            raise PlcError(f"trigger {trigger_id}: overrun (camera busy)")
        self.write(mm.CONTROL, [0])  # release Trigger once acknowledged
        status = self._wait(lambda s: s & (mm.STATUS_RESULT_VALID | mm.STATUS_ERROR), "result valid")
        if status & mm.STATUS_ERROR:
            code = self.read(mm.ERROR_CODE, 1)[0]
            self.write(mm.CONTROL, [mm.CONTROL_CLEAR_ERROR])
            self.write(mm.CONTROL, [0])
            raise PlcError(f"trigger {trigger_id}: camera error code {code}")
        result = self.read_result()
        self.write(mm.CONTROL, [mm.CONTROL_RESULT_ACK])
        self._wait(lambda s: not s & mm.STATUS_RESULT_VALID, "result valid cleared")
        self.write(mm.CONTROL, [0])
        return result
