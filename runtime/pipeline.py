"""The service pipeline: capture thread -> newest frame -> detect + geometry + inspect -> result -> writer.

Threads::

    CaptureThread ──(one slot, newest wins)──> main thread: Pipeline.run()
                                                 detect -> geometry -> inspect -> Result
                                               ──(bounded queue)──> ResultWriter thread: journal, then
                                                                    each publisher's own bounded queue

Trigger modes: ``free-run`` processes the newest frame as fast as the model allows - when the detector
can run its model and its post-processing separately (``split_detector``), the model works on frame
N+1 on its own thread while the main thread extracts, locates and inspects frame N; ``software`` and
``plc`` wait for a trigger (``trigger()`` from the ZeroMQ command socket, ``request_trigger()`` from
the Modbus handshake) and process the first frame captured after it. Every trigger gets exactly one
result (an error result when no frame comes in time). The robot pose sent with a trigger (eye-in-hand)
is used for that frame's geometry.

The detector, geometry and inspector are duck-typed so tests can inject them:
``detector.detect(image) -> obj with .holes (Holes) and .timings (stage -> s)``,
``geometry(holes, T_base_flange or None) -> Holes``, ``inspector(holes, frame_size) -> dict | None``
(frame_size = (width, height) px, so a part partly out of view is judged NONE, not NG).
"""

from __future__ import annotations

import collections
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from holevision.runtime.detections import Holes
from holevision.runtime.result import ERROR_BAD_POSE, ERROR_CAMERA, ERROR_PROCESSING, Result, encode, hole_pose
from holevision.runtime.sources.base import Frame

log = logging.getLogger(__name__)

TRIGGER_MODES = ("free-run", "software", "plc")


@dataclass
class TriggerRequest:
    trigger_id: int | None
    robot_pose: object                       # None, {"format": "ur", "values": [...]}, {"T_base_flange": 4x4}
    requested_monotonic: float
    origin: str                              # "zmq" | "plc"
    done: threading.Event = field(default_factory=threading.Event)
    message: dict | None = None


def robot_pose_to_transform(robot_pose, default_format: str = "kuka") -> np.ndarray | None:
    """A robot pose as sent with a trigger -> T_base_flange (4x4, mm); None when no pose came.

    Accepts ``{"T_base_flange": 4x4}``, ``{"format": "ur"|"kuka"|"fanuc"|"abb"|"matrix", "values": [...]}``
    or a bare list of 6 numbers in ``default_format`` (what the Modbus registers carry).
    """
    if robot_pose is None:
        return None
    from holevision.calibration.poses import pose_to_transform

    if isinstance(robot_pose, dict) and "T_base_flange" in robot_pose:
        T = np.asarray(robot_pose["T_base_flange"], dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"robot_pose.T_base_flange: expected a 4x4 matrix, got shape {T.shape}")
        return pose_to_transform(T.reshape(-1), "matrix")
    if isinstance(robot_pose, dict):
        if "values" not in robot_pose:
            raise ValueError("robot_pose: expected {'format': ..., 'values': [...]} or {'T_base_flange': 4x4}")
        return pose_to_transform(robot_pose["values"], robot_pose.get("format", default_format))
    return pose_to_transform(list(robot_pose), default_format)


class ResultWriter:
    """Journal first, then publish: one thread, one bounded queue, flushed completely on ``stop``.

    ``submit`` never blocks the main thread; when the queue is full (a stalled disk) the oldest
    waiting result is dropped and counted.
    """

    def __init__(self, journal=None, publishers=(), queue_size: int = 256, overlay: Callable | None = None,
                 save_ng_images: bool = True, retention_every: int = 500):
        self.journal = journal
        self.publishers = list(publishers)
        self.overlay = overlay
        self.save_ng_images = save_ng_images
        self.retention_every = retention_every
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()          # guards the journal connection (writer + command threads)
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.errors = 0

    def start(self) -> "ResultWriter":
        self._thread = threading.Thread(target=self._run, name="holevision-result-writer", daemon=True)
        self._thread.start()
        return self

    def submit(self, message: dict, payload: bytes, image: np.ndarray | None = None, holes: Holes | None = None,
               statuses=None) -> None:
        item = (message, payload, image, holes, statuses)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except queue.Empty:  # pragma: no cover
                pass
            self._queue.put_nowait(item)

    def stop(self, timeout: float = 10.0) -> None:
        """Write and publish everything queued, then close the journal."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            if self.journal is not None:
                self.journal.close()

    def lookup(self, seq: int, camera: str | None = None) -> dict | None:
        if self.journal is None:
            return None
        with self._lock:
            return self.journal.get(seq, camera)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            message, payload, image, holes, statuses = item
            try:
                self._write(message, payload, image, holes, statuses)
            except Exception:  # noqa: BLE001 - a full disk must not stop publishing
                self.errors += 1
                log.exception("journal: cannot store seq %s", message.get("seq"))
            for publisher in self.publishers:
                publisher.publish_result(message, payload)

    def _write(self, message, payload, image, holes, statuses) -> None:
        if self.journal is None:
            return
        image_path = None
        if image is not None and self.save_ng_images and message.get("verdict") == "NG":
            annotated = self.overlay(image, holes, statuses) if self.overlay and holes is not None else image
            image_path = self.journal.save_ng_image(message, annotated)
        with self._lock:
            self.journal.append(message, payload, image_path)
            self.written += 1
            if self.written % self.retention_every == 0:
                self.journal.apply_retention()


def split_detector(detector):
    """(model_fn, post_fn) when the detector can run its model and its post-processing separately, else None.

    ``model_fn(image, timings) -> probability`` and ``post_fn(probability, image, timings) -> Holes``, each
    putting its stages' seconds in ``timings``. Uses ``detector.probability`` + ``detector.extract`` when
    both exist (an ``extract`` without a ``timings`` argument is timed whole, as "extract"); for a detector
    without ``extract`` (a stand-in) it calls ``holes.extract_holes`` with the detector's own
    post-processing settings.
    """
    probability = getattr(detector, "probability", None)
    if not callable(probability):
        return None
    extract = getattr(detector, "extract", None)
    if callable(extract):
        if "timings" in inspect.signature(extract).parameters:
            return probability, extract
        return probability, _timed_as_extract(extract)
    needed = ("threshold", "min_area_px", "refine", "min_diameter_px")
    if not all(hasattr(detector, name) for name in needed):
        return None
    from holevision.runtime.holes import extract_holes

    def post(prob, image):
        return extract_holes(prob, image, threshold=detector.threshold, min_area_px=detector.min_area_px,
                             refine=detector.refine, min_diameter_px=detector.min_diameter_px)

    return probability, _timed_as_extract(post)


def _timed_as_extract(post):
    """``post(prob, image)`` as ``post(prob, image, timings)``, its whole time the "extract" stage."""
    def timed(prob, image, timings):
        start = time.perf_counter()
        holes = post(prob, image)
        timings["extract"] = time.perf_counter() - start
        return holes

    return timed


class _ModelStage:
    """Free-run overlap: the model runs on the newest frame while the main thread post-processes the
    previous one (extraction, geometry, inspection). One slot, newest wins; superseded outputs count
    in ``dropped``."""

    def __init__(self, capture, model_fn):
        self.capture = capture
        self.model_fn = model_fn
        self._cond = threading.Condition()
        self._item = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holevision-model", daemon=True)
        self.dropped = 0

    def start(self) -> "_ModelStage":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._halt.is_set():
            frame = self.capture.next_frame(timeout=0.25)
            if frame is None:
                continue
            timings: dict[str, float] = {}
            try:
                item = (frame, self.model_fn(frame.image, timings), timings, None)
            except Exception as exc:  # noqa: BLE001 - reported as this frame's error result
                item = (frame, None, timings, exc)
            with self._cond:
                if self._item is not None:
                    self.dropped += 1
                self._item = item
                self._cond.notify_all()

    def next(self, timeout: float):
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


class Pipeline:
    def __init__(self, capture, detector, *, camera: str = "cam0", trigger_mode: str = "free-run",
                 writer: ResultWriter | None = None, geometry: Callable | None = None,
                 inspector: Callable | None = None, model_name: str = "", model_sha256: str = "",
                 metrics=None, trigger_frame_timeout_s: float = 2.0, recent: int = 256,
                 robot_pose_format: str = "kuka", eye_in_hand: bool = False, stale_after_s: float = 2.0,
                 on_result: Callable[[dict], None] | None = None, overlap: bool = True):
        if trigger_mode not in TRIGGER_MODES:
            raise ValueError(f"trigger.mode must be one of {TRIGGER_MODES}, got {trigger_mode!r}")
        self.capture = capture
        self.detector = detector
        self.camera = camera
        self.trigger_mode = trigger_mode
        self.writer = writer or ResultWriter().start()   # no journal, no publishers: results go to on_result
        self.geometry = geometry
        self.inspector = inspector
        self.model_name, self.model_sha256 = model_name, model_sha256
        self.metrics = metrics
        self.trigger_frame_timeout_s = trigger_frame_timeout_s
        self.robot_pose_format = robot_pose_format
        self.eye_in_hand = eye_in_hand
        self.stale_after_s = stale_after_s
        # free-run only: model of frame N+1 in parallel with post-processing of frame N
        self._split = split_detector(detector) if overlap and trigger_mode == "free-run" else None
        self._model_stage: _ModelStage | None = None
        self._model_dropped_total = 0
        self.on_result = on_result
        self._triggers: queue.Queue[TriggerRequest] = queue.Queue(maxsize=64)
        self._recent: collections.OrderedDict[int, dict] = collections.OrderedDict()
        self._recent_size = recent
        self._recent_lock = threading.Lock()
        self._stop = threading.Event()
        self.processing = False
        self.frames = 0
        self.triggers_rejected = 0
        self.last_result_monotonic: float | None = None
        self.last_seq = 0
        self.started_monotonic = time.monotonic()
        self.publishers: list = []   # for status/metrics only; the writer publishes
        self.extra_status: Callable[[], dict] | None = None

    # -- control from other threads ---------------------------------------------------------------------
    def stop(self) -> None:
        """Ask ``run`` to return after the current frame."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_trigger(self, trigger_id: int | None, robot_pose=None, origin: str = "plc") -> TriggerRequest:
        """Queue a trigger (PLC handshake or software); returns at once."""
        request = TriggerRequest(trigger_id, robot_pose, time.monotonic(), origin)
        try:
            self._triggers.put_nowait(request)
        except queue.Full:
            self.triggers_rejected += 1
            raise TimeoutError("trigger queue full: the camera is not keeping up with triggers") from None
        return request

    def trigger(self, trigger_id: int | None, robot_pose=None, timeout_s: float = 10.0) -> dict:
        """Software trigger from the command socket: waits for and returns the result message."""
        if self.trigger_mode == "free-run":
            raise ValueError("trigger: the service runs free-run (trigger.mode); results arrive on PUB")
        request = self.request_trigger(trigger_id, robot_pose, origin="zmq")
        if not request.done.wait(timeout_s):
            raise TimeoutError(f"trigger {trigger_id}: no result within {timeout_s:g} s")
        return request.message

    def result(self, seq: int) -> dict | None:
        with self._recent_lock:
            found = self._recent.get(seq)
        return found if found is not None else self.writer.lookup(seq, self.camera)

    def select(self, hole: int, seq: int | None = None) -> dict:
        """The pose of hole ``hole`` (overlay number) in result ``seq`` (default: the latest)."""
        if seq is None:
            with self._recent_lock:
                if not self._recent:
                    raise LookupError("select: no result yet")
                message = next(reversed(self._recent.values()))
        else:
            message = self.result(seq)
            if message is None:
                raise LookupError(f"select: no result with seq {seq}")
        selected = hole_pose(message, hole)
        from holevision.runtime.publish.zmq_publisher import ZmqPublisher

        payload = _json_bytes(selected)
        for publisher in self.publishers:
            if isinstance(publisher, ZmqPublisher):
                publisher.publish_selected(payload)
        return selected

    def _model_outputs_dropped(self) -> int:
        stage = self._model_stage
        return stage.dropped if stage is not None else self._model_dropped_total

    def status(self) -> dict:
        now = time.monotonic()
        capture = self.capture
        camera_connected = bool(getattr(capture, "connected", False)) and not capture.is_lost()
        dropped = {"capture": getattr(capture, "dropped", 0), "writer": self.writer.dropped,
                   "model_output": self._model_outputs_dropped(),
                   "triggers": self.triggers_rejected}
        for publisher in self.publishers:
            dropped[publisher.name] = publisher.dropped
        age = None if self.last_result_monotonic is None else round(now - self.last_result_monotonic, 3)
        status = {
            "camera_name": self.camera, "trigger_mode": self.trigger_mode, "model": self.model_name,
            "frames": self.frames, "last_seq": self.last_seq, "busy": self.processing,
            "uptime_s": round(now - self.started_monotonic, 1), "last_result_age_s": age,
            "camera": {"connected": camera_connected, "reconnects": getattr(capture, "reconnects", 0),
                       "repeated": getattr(capture, "repeated", 0), "last_error": getattr(capture, "last_error", "")},
            "dropped": dropped, "journal_errors": self.writer.errors,
            "healthy": camera_connected and not self._stop.is_set(),
        }
        if self.extra_status is not None:
            status.update(self.extra_status())
        return status

    # -- the main thread -----------------------------------------------------------------------------------
    def run(self, max_frames: int | None = None, watchdog: Callable[[], None] | None = None) -> int:
        """Process frames until ``stop()`` (or ``max_frames`` results); returns the number of results."""
        if hasattr(self.capture, "count_drops"):
            self.capture.count_drops = self.trigger_mode == "free-run"
        produced = 0
        if self._split is not None:
            self._model_stage = _ModelStage(self.capture, self._split[0]).start()
        try:
            while not self._stop.is_set() and (max_frames is None or produced < max_frames):
                if watchdog is not None:
                    watchdog()
                if self._step():
                    produced += 1
        finally:
            if self._model_stage is not None:
                self._model_stage.stop()
                self._model_dropped_total = self._model_stage.dropped
                self._model_stage = None
        return produced

    def _step(self) -> bool:
        """Take one frame (or trigger) and produce its result; False when nothing came in time."""
        if self._model_stage is not None:
            item = self._model_stage.next(timeout=0.25)
            if item is None:
                return False
            frame, probability, timings, error = item
            self._process(frame, None, modelled=(probability, timings, error))
        elif self.trigger_mode == "free-run":
            frame = self.capture.next_frame(timeout=0.25)
            if frame is None:
                return False
            self._process(frame, None)
        else:
            try:
                request = self._triggers.get(timeout=0.25)
            except queue.Empty:
                return False
            frame = self.capture.next_frame(timeout=self.trigger_frame_timeout_s,
                                            newer_than=request.requested_monotonic)
            if frame is None:
                self._fail(request, ERROR_CAMERA, f"no frame from camera {self.camera} within "
                                                  f"{self.trigger_frame_timeout_s:g} s of the trigger")
            else:
                self._process(frame, request)
        return True

    def _process(self, frame: Frame, request: TriggerRequest | None, modelled=None) -> dict:
        self.processing = True
        age_s = time.monotonic() - frame.capture_monotonic
        timings = {"queue": max(0.0, age_s * 1000.0)}
        holes, error, error_code, inspection, verdict, pose = Holes.empty(), None, 0, None, None, None
        statuses = None
        try:
            T_base_flange = None
            if request is not None and request.robot_pose is not None:
                try:
                    T_base_flange = robot_pose_to_transform(request.robot_pose, self.robot_pose_format)
                    pose = T_base_flange.tolist()
                except ValueError as exc:
                    raise _FrameError(ERROR_BAD_POSE, f"robot pose: {exc}") from None
            elif self.eye_in_hand and self.geometry is not None:
                raise _FrameError(ERROR_BAD_POSE, "eye-in-hand needs the robot pose with every trigger")
            if modelled is None:
                detection = self.detector.detect(frame.image)
                stage_timings = getattr(detection, "timings", None) or {}
                holes = detection.holes
            else:
                probability, stage_timings, model_error = modelled
                if model_error is not None:
                    raise model_error
                post_timings: dict[str, float] = {}
                holes = self._split[1](probability, frame.image, post_timings)
                stage_timings = {**stage_timings, **post_timings}
            for stage, seconds in stage_timings.items():
                timings[stage] = seconds * 1000.0
            holes = holes.numbered()
            if self.geometry is not None and len(holes):
                t = time.perf_counter()
                holes = self.geometry(holes, T_base_flange)
                timings["geometry"] = (time.perf_counter() - t) * 1000.0
            if self.inspector is not None:
                t = time.perf_counter()
                report = self.inspector(holes, (frame.image.shape[1], frame.image.shape[0]))
                timings["inspect"] = (time.perf_counter() - t) * 1000.0
                if report is not None:
                    inspection, statuses = report if isinstance(report, tuple) else (report, None)
                    verdict = inspection.get("verdict")
        except _FrameError as exc:
            error_code, error = exc.code, str(exc)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop a 24/7 service
            log.exception("frame %s failed", frame.seq)
            error_code, error = ERROR_PROCESSING, f"{type(exc).__name__}: {exc}"
        timings["total"] = (time.monotonic() - frame.capture_monotonic) * 1000.0   # capture -> result
        result = Result(seq=frame.seq, camera=self.camera, capture_epoch=frame.capture_epoch, done_epoch=time.time(),
                        holes=holes if error is None else Holes.empty(),
                        trigger_id=None if request is None else request.trigger_id,
                        model_name=self.model_name, model_sha256=self.model_sha256,
                        verdict=verdict if error is None else None, inspection=inspection,
                        timings_ms=timings, robot_pose=pose, width=frame.image.shape[1],
                        height=frame.image.shape[0], repeated=frame.repeated, stale=age_s > self.stale_after_s,
                        error=error, error_code=error_code)
        return self._emit(result, request, frame.image, holes, statuses)

    def _fail(self, request: TriggerRequest, code: int, why: str) -> dict:
        now = time.time()
        # no frame: seq 0 ("no frame") so the error never shadows a real result in the journal
        result = Result(seq=0, camera=self.camera, capture_epoch=now, done_epoch=now, holes=Holes.empty(),
                        trigger_id=request.trigger_id, model_name=self.model_name, model_sha256=self.model_sha256,
                        error=why, error_code=code)
        return self._emit(result, request, None, None, None)

    def _emit(self, result: Result, request, image, holes, statuses) -> dict:
        message, payload = encode(result)
        self.writer.submit(message, payload, image, holes, statuses)
        with self._recent_lock:
            if not result.error:
                self._recent[result.seq] = message
                while len(self._recent) > self._recent_size:
                    self._recent.popitem(last=False)
        self.frames += 1
        self.last_seq = max(self.last_seq, result.seq)
        self.last_result_monotonic = time.monotonic()
        self.processing = False
        if self.metrics is not None:
            self.metrics.observe_result(message)
        if request is not None:
            request.message = message
            request.done.set()
        if self.on_result is not None:
            self.on_result(message)
        return message


class _FrameError(Exception):
    def __init__(self, code: int, why: str):
        super().__init__(why)
        self.code = code


def _json_bytes(data: dict) -> bytes:
    import json

    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()

