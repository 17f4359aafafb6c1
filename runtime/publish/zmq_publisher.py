"""ZeroMQ PUB: every result on topic ``holes/<camera>``, a selected hole on ``select/<camera>``.

Frames are two-part messages ``[topic, JSON]`` (the result schema v1). The socket lives on this
publisher's thread; a slow or absent subscriber fills its own ZeroMQ high-water mark and then loses
messages (counted by ZeroMQ, and here when our queue overflows) - inference never waits.
"""

from __future__ import annotations

from holevision.runtime.publish.queued import QueuedPublisher


def result_topic(camera: str) -> bytes:
    return f"holes/{camera}".encode()


def select_topic(camera: str) -> bytes:
    return f"select/{camera}".encode()


class ZmqPublisher(QueuedPublisher):
    name = "zmq-pub"

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", camera: str = "cam0", queue_size: int = 64,
                 high_water_mark: int = 100):
        super().__init__(queue_size)
        self.endpoint = endpoint
        self.camera = camera
        self.high_water_mark = high_water_mark
        self._context = None
        self._socket = None
        self.bound_endpoint = ""

    def open_io(self) -> None:
        import zmq

        self._context = zmq.Context.instance()
        socket = self._context.socket(zmq.PUB)
        socket.setsockopt(zmq.SNDHWM, self.high_water_mark)
        socket.setsockopt(zmq.LINGER, 200)
        try:
            socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            socket.close(0)
            raise OSError(f"zmq: cannot bind PUB to {self.endpoint}: {exc} (publish.zmq.pub)") from None
        self.bound_endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._socket = socket

    def close_io(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def publish_selected(self, payload: bytes) -> bool:
        """Queue a selected hole's pose message for topic ``select/<camera>``."""
        return self.submit(("select", payload, None))

    def send(self, item) -> None:
        import zmq

        kind, first, second = item
        if kind == "result":
            topic, payload = result_topic(self.camera), second
        elif kind == "select":
            topic, payload = select_topic(self.camera), first
        else:
            return  # errors are results with an "error" field; readiness is not published
        try:
            self._socket.send_multipart([topic, payload], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
