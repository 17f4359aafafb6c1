"""The capture thread: reads a FrameSource, numbers and timestamps frames, keeps only the newest.

- Every frame gets ``seq`` (first_seq + 1, + 2, ...) and capture times (wall + monotonic).
- A frame whose pixel subsample equals the previous one is flagged ``repeated`` (frozen camera).
- No frame for ``stale_after_s`` (default 2 s), a read error or a hung read: the camera is "lost";
  the source is closed and reopened with exponential backoff (``backoff_initial_s`` doubling up to
  ``backoff_max_s``), without restarting the process. ``reconnects`` counts successful reopens.
- One slot, newest wins: a frame overwritten before the pipeline took it counts in ``dropped``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from holevision.runtime.sources.base import Frame, FrameSource, SourceError, as_bgr
from holevision.runtime.sources.fingerprint import frame_fingerprint

log = logging.getLogger(__name__)


class CaptureThread:
    def __init__(self, make_source: Callable[[], FrameSource], camera: str = "cam0", fps: float | None = None,
                 stale_after_s: float = 2.0, backoff_initial_s: float = 0.2, backoff_max_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, first_seq: int = 0):
        self._make_source = make_source
        self.camera = camera
        self.fps = fps
        self.stale_after_s = stale_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self.first_seq = first_seq        # frames are numbered first_seq + 1, ... (continues a journal)
        self.count_drops = True           # False in triggered modes, where untaken frames are expected
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._latest_taken = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: FrameSource | None = None
        self._last_frame_at = clock()
        self._last_fingerprint: bytes | None = None
        self.connected = False
        self.frames = 0
        self.repeated = 0
        self.dropped = 0
        self.reconnects = 0
        self.failures = 0
        self.last_error = ""

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> "CaptureThread":
        self._thread = threading.Thread(target=self._run, name=f"holevision-capture-{self.camera}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        source = self._source
        if source is not None:
            _close_quietly(source)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the pipeline side -----------------------------------------------------------------------------
    def next_frame(self, timeout: float, newer_than: float | None = None) -> Frame | None:
        """The newest frame not yet taken (captured after ``newer_than`` (monotonic) if given), or None."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                frame = self._latest
                if frame is not None and not self._latest_taken and (
                        newer_than is None or frame.capture_monotonic > newer_than):
                    self._latest_taken = True
                    return frame
                remaining = deadline - self._clock()
                if remaining <= 0 or self._stop.is_set():
                    self._check_stale()
                    return None
                self._cond.wait(min(remaining, 0.1))
                self._check_stale()

    def is_lost(self) -> bool:
        return not self.connected or self._clock() - self._last_frame_at > self.stale_after_s

    def _check_stale(self) -> None:
        # A read that hangs inside a driver never returns; closing the device from here unblocks it and
        # lets the capture thread reopen it.
        if self.connected and self._clock() - self._last_frame_at > self.stale_after_s:
            log.warning("camera %s: no frame for %.1f s, reopening", self.camera, self._clock() - self._last_frame_at)
            self.connected = False
            source = self._source
            if source is not None:
                threading.Thread(target=_close_quietly, args=(source,), daemon=True).start()

    # -- the capture thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self.backoff_initial_s
        seq = self.first_seq
        first_open = True
        while not self._stop.is_set():
            source = self._make_source()
            try:
                source.open()
            except (SourceError, OSError) as exc:
                self._failed(f"cannot open {source.describe()}: {exc}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            self._source = source
            self.connected = True
            self._last_frame_at = self._clock()
            if not first_open:
                self.reconnects += 1
                log.warning("camera %s: reopened %s", self.camera, source.describe())
            first_open = False
            next_due = self._clock()
            try:
                while not self._stop.is_set() and self.connected:
                    if self.fps and not source.live:
                        delay = next_due - self._clock()
                        if delay > 0 and self._stop.wait(delay):
                            break
                        next_due = max(next_due + 1.0 / self.fps, self._clock() - 1.0 / self.fps)
                    image = source.read()
                    now = self._clock()
                    if image is None:
                        if now - self._last_frame_at > self.stale_after_s:
                            raise SourceError(f"no frame from {source.describe()} for {self.stale_after_s:g} s")
                        self._stop.wait(0.005)
                        continue
                    seq += 1
                    backoff = self.backoff_initial_s
                    self._publish(as_bgr(image), seq, now, source)
            except (SourceError, OSError, ValueError) as exc:
                if not self._stop.is_set():
                    self._failed(f"{source.describe()}: {exc}")
            except Exception as exc:  # noqa: BLE001 - a driver bug must not end capture for good
                if not self._stop.is_set():
                    self._failed(f"{source.describe()}: unexpected {type(exc).__name__}: {exc}")
            finally:
                self.connected = False
                self._source = None
                _close_quietly(source)
            if not self._stop.is_set():
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)

    def _failed(self, why: str) -> None:
        self.failures += 1
        self.connected = False
        self.last_error = why
        log.warning("camera %s: %s", self.camera, why)

    def _publish(self, image, seq: int, now: float, source: FrameSource) -> None:
        fingerprint = frame_fingerprint(image)
        repeated = fingerprint == self._last_fingerprint
        self._last_fingerprint = fingerprint
        frame = Frame(image=image, seq=seq, capture_epoch=time.time(), capture_monotonic=now,
                      camera=self.camera, repeated=repeated,
                      source_index=getattr(source, "position", -1), name=getattr(source, "current_name", ""))
        with self._cond:
            if self._latest is not None and not self._latest_taken and self.count_drops:
                self.dropped += 1
            self._latest = frame
            self._latest_taken = False
            self.frames += 1
            self.repeated += int(repeated)
            self._last_frame_at = now
            self._cond.notify_all()


def _close_quietly(source: FrameSource) -> None:
    try:
        source.close()
    except Exception:  # noqa: BLE001 - closing a dead device may fail in many ways
        log.debug("closing %s failed", source.describe(), exc_info=True)
