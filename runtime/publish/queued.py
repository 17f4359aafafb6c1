"""A publisher's own thread and bounded queue: ``submit`` never blocks the inference thread.

When the queue is full the oldest waiting item is dropped (the newest result is what a robot or PLC
wants) and ``dropped`` counts it. A send that raises is logged and counted in ``errors``; the thread
keeps going, so a dead peer costs only its own results.
"""

from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger(__name__)

_STOP = object()


class QueuedPublisher:
    """Subclasses implement ``send(item)`` (runs on the publisher thread) and may override ``open_io`` /
    ``close_io``. Items are ``(kind, a, b)``: ("result", message dict, JSON bytes), ("error", code,
    (text, trigger_id)), ("ready", bool, None)."""

    name = "publisher"

    def __init__(self, queue_size: int = 64):
        if queue_size < 1:
            raise ValueError(f"{self.name}: queue size must be >= 1, got {queue_size}")
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.errors = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "QueuedPublisher":
        self.open_io()
        self._thread = threading.Thread(target=self._run, name=f"holevision-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued (up to ``timeout``), then close."""
        if self._thread is not None:
            self._put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        self.close_io()

    def open_io(self) -> None:
        """Open sockets; runs on the caller's thread in ``start``."""

    def close_io(self) -> None:
        """Close sockets; runs after the thread has stopped."""

    def send(self, item) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the inference side ------------------------------------------------------------------------
    def publish_result(self, message: dict, payload: bytes) -> bool:
        """Queue one result (schema dict + its JSON bytes)."""
        return self.submit(("result", message, payload))

    def publish_error(self, code: int, text: str, trigger_id: int | None = None) -> bool:
        """Queue an error for a trigger that produced no result (camera lost, processing failed)."""
        return self.submit(("error", code, (text, trigger_id)))

    def publish_ready(self, ready: bool) -> bool:
        return self.submit(("ready", ready, None))

    def submit(self, item) -> bool:
        """Queue ``item`` without blocking; returns False when an older item had to be dropped."""
        return self._put(item)

    def _put(self, item) -> bool:
        with self._lock:
            try:
                self._queue.put_nowait(item)
                return True
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:  # pragma: no cover - raced with the consumer
                    pass
                self._queue.put_nowait(item)
                return False

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # -- the publisher thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self.send(item)
                self.sent += 1
            except Exception:  # noqa: BLE001 - a failing peer must not kill the publisher thread
                self.errors += 1
                log.exception("%s: send failed", self.name)
