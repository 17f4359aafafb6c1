"""The ZeroMQ command socket (REP): JSON request in, JSON reply out, one at a time.

Requests (``cmd`` names the command)::

    {"cmd": "trigger", "trigger_id": 7, "robot_pose": {"format": "ur", "values": [...]}, "timeout_s": 5}
        -> {"ok": true, "result": {result v1}}     (robot_pose optional; "T_base_flange": 4x4 also accepted)
    {"cmd": "status"}                -> {"ok": true, "status": {...}}
    {"cmd": "result", "seq": 42}     -> {"ok": true, "result": {...}}   (late joiners fetch what PUB dropped)
    {"cmd": "select", "hole": 3, "seq": 42}   (seq optional: latest)
        -> {"ok": true, "selected": {...}} and the same message on PUB topic ``select/<camera>``

Any problem -> {"ok": false, "error": "..."}. The handler is duck-typed: ``trigger(trigger_id,
robot_pose, timeout_s) -> dict``, ``status() -> dict``, ``result(seq) -> dict | None``,
``select(hole, seq) -> dict``.
"""

from __future__ import annotations

import json
import logging
import threading

log = logging.getLogger(__name__)

COMMANDS = ("trigger", "status", "result", "select")


def handle_request(handler, request: bytes) -> dict:
    """One request -> one reply dict (pure apart from the handler's calls)."""
    try:
        data = json.loads(request)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return {"ok": False, "error": f"request is not JSON: {exc}"}
    if not isinstance(data, dict) or data.get("cmd") not in COMMANDS:
        return {"ok": False, "error": f"request needs 'cmd', one of {', '.join(COMMANDS)}"}
    cmd = data["cmd"]
    try:
        if cmd == "status":
            return {"ok": True, "status": handler.status()}
        if cmd == "trigger":
            trigger_id = data.get("trigger_id")
            if trigger_id is not None and (not isinstance(trigger_id, int) or trigger_id < 0):
                return {"ok": False, "error": "trigger_id: expected a non-negative integer"}
            timeout_s = float(data.get("timeout_s", 10.0))
            return {"ok": True, "result": handler.trigger(trigger_id, data.get("robot_pose"), timeout_s)}
        if cmd == "result":
            seq = data.get("seq")
            if not isinstance(seq, int):
                return {"ok": False, "error": "seq: expected an integer"}
            found = handler.result(seq)
            if found is None:
                return {"ok": False, "error": f"no result with seq {seq} (journal retention or not yet taken)"}
            return {"ok": True, "result": found}
        hole = data.get("hole")
        if not isinstance(hole, int) or hole < 1:
            return {"ok": False, "error": "hole: expected a hole number >= 1 (the overlay's numbers)"}
        return {"ok": True, "selected": handler.select(hole, data.get("seq"))}
    except (ValueError, KeyError, TimeoutError, LookupError) as exc:
        return {"ok": False, "error": str(exc).strip("'\"")}


class ZmqCommandServer:
    """Serves ``handle_request`` on a REP socket on its own thread."""

    def __init__(self, handler, endpoint: str = "tcp://127.0.0.1:5556"):
        self.handler = handler
        self.endpoint = endpoint
        self.bound_endpoint = ""
        self.requests = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket = None

    def start(self) -> "ZmqCommandServer":
        import zmq

        socket = zmq.Context.instance().socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            socket.close(0)
            raise OSError(f"zmq: cannot bind command socket to {self.endpoint}: {exc} (publish.zmq.command)") from None
        self.bound_endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._socket = socket
        self._thread = threading.Thread(target=self._run, name="holevision-zmq-commands", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import zmq

        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            request = self._socket.recv()
            self.requests += 1
            try:
                reply = handle_request(self.handler, request)
            except Exception as exc:  # noqa: BLE001 - a REP socket must always answer
                log.exception("command failed")
                reply = {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
            self._socket.send(json.dumps(reply, allow_nan=False, default=str).encode())
        self._socket.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

