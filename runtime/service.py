"""`holevision run`: build the pipeline from a config, run it under systemd, stop cleanly.

- systemd ``Type=notify``: READY=1 once everything listens and the camera thread runs; WATCHDOG=1 from
  the main loop at half of ``WatchdogSec`` (a stuck main thread stops the pings and systemd restarts
  us); STOPPING=1 on the way out. The notify protocol is one datagram to ``$NOTIFY_SOCKET``, written
  here by hand (no dependency).
- SIGTERM / SIGINT: the frame being processed is finished, the journal is flushed (every result
  taken is written and published), then the sockets close.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. "READY=1") to systemd; False when not run by systemd (no $NOTIFY_SOCKET)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify(%s) failed: %s", state, exc)
        return False


class Watchdog:
    """Pings systemd's watchdog at half the interval it asked for ($WATCHDOG_USEC); no-op otherwise."""

    def __init__(self, clock=time.monotonic):
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        enabled = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.interval_s = int(usec) / 1e6 / 2 if enabled else None
        self._clock = clock
        self._last = 0.0
        self.pings = 0

    def __call__(self) -> None:
        if self.interval_s is None:
            return
        now = self._clock()
        if now - self._last >= self.interval_s:
            self._last = now
            if sd_notify("WATCHDOG=1"):
                self.pings += 1


@dataclass
class Service:
    """Everything `run` starts, in start order; ``stop`` closes in reverse and flushes the journal."""

    pipeline: object
    capture: object
    writer: object
    publishers: list = field(default_factory=list)
    servers: list = field(default_factory=list)   # ZeroMQ command socket, metrics HTTP
    modbus: object | None = None

    def start(self) -> "Service":
        for publisher in self.publishers:
            publisher.start()
        self.writer.start()
        for server in self.servers:
            server.start()
        self.capture.start()
        return self

    def run(self, max_frames: int | None = None) -> int:
        """Run until SIGTERM/SIGINT or ``max_frames``; returns the number of results produced."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        watchdog = Watchdog()
        for publisher in self.publishers:
            publisher.publish_ready(True)
        sd_notify("READY=1\nSTATUS=processing frames")
        try:
            return self.pipeline.run(max_frames=max_frames, watchdog=watchdog)
        finally:
            sd_notify("STOPPING=1")
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, _frame) -> None:
        log.warning("%s: finishing the current frame, flushing the journal", signal.Signals(signum).name)
        self.pipeline.stop()

    def stop(self) -> None:
        self.pipeline.stop()
        self.capture.stop()
        self.writer.stop()           # journal + hand to publishers everything already produced
        for server in reversed(self.servers):
            server.stop()
        for publisher in self.publishers:
            publisher.stop()


def build_service(config, *, detector=None, config_path: str = "config", on_result=None) -> Service:
    """Wire sources, model, geometry, inspection, journal, publishers and metrics from a Config.

    ``detector`` overrides the model (tests, benchmarks); otherwise the bundle in ``config.model`` runs.
    """
    from holevision.runtime.hole_geometry import HoleGeometry
    from holevision.runtime.journal import Journal
    from holevision.runtime.pipeline import Pipeline, ResultWriter
    from holevision.runtime.sources.capture import CaptureThread
    from holevision.runtime.sources.factory import source_factory

    source_config = config.source
    camera = source_config.camera_name
    if detector is None:
        from holevision.runtime.detector import Detector

        detector = Detector(bundle=config.model.bundle, engine=config.model.engine, threads=config.model.threads,
                            threshold=config.model.threshold, min_diameter_px=config.model.min_diameter_px,
                            providers=config.model.providers or None, flips=config.model.flips,
                            verify=config.model.verifier)
    model_name = str(getattr(detector, "model_name", "") or "")
    model_sha = str(getattr(detector, "model_sha256", "") or "")
    geometry = HoleGeometry.from_config(config.calibration, config_path)

    inspector, library, modbus_bank = None, None, None
    if config.inspect.recipes:
        from holevision.runtime.inspect.library import RecipeLibrary
        from holevision.runtime.inspect.measure import inspect_holes, overlay_statuses

        library = RecipeLibrary.from_config(config.inspect)

        def inspector(holes, frame_size=None):
            if modbus_bank is not None:        # the PLC selects the recipe by number (0 = no inspection)
                _select_recipe_from_plc(library, modbus_bank.recipe_select())
            recipe = library.active
            if recipe is None:
                return None
            inspection = inspect_holes(recipe, holes, frame_size=frame_size)
            return inspection.to_dict(), overlay_statuses(inspection, holes)

    journal = Journal(config.journal.state_dir, config.journal.keep_results, config.journal.keep_days,
                      config.journal.keep_ng_images_mb).open()
    first_seq = journal.last_seq(camera)  # sequence numbers continue across restarts
    journal.apply_retention()
    overlay = None
    try:
        from holevision.runtime.overlay import draw_overlay as overlay
    except ImportError:
        pass

    capture = CaptureThread(source_factory(source_config), camera=camera, fps=source_config.fps,
                            stale_after_s=source_config.stale_after_s, first_seq=first_seq)
    publishers, servers, modbus = [], [], None
    zmq_config, modbus_config = config.publish.zmq, config.publish.modbus
    if zmq_config.enabled:
        from holevision.runtime.publish.zmq_publisher import ZmqPublisher

        publishers.append(ZmqPublisher(zmq_config.pub, camera, zmq_config.queue))
    writer = ResultWriter(journal, publishers, overlay=overlay, save_ng_images=config.journal.save_ng_images)
    pipeline = Pipeline(capture, detector, camera=camera, trigger_mode=config.trigger.mode, writer=writer,
                        geometry=geometry, inspector=inspector, model_name=model_name, model_sha256=model_sha,
                        trigger_frame_timeout_s=config.trigger.frame_timeout_s,
                        robot_pose_format=config.calibration.robot_pose_format,
                        eye_in_hand=bool(geometry is not None and geometry.needs_robot_pose), on_result=on_result,
                        stale_after_s=source_config.stale_after_s)
    if modbus_config.enabled:
        if modbus_config.mode == "server":
            from holevision.runtime.publish.modbus_server import ModbusServerPublisher

            def on_plc_trigger(trigger_id, pose):
                if config.trigger.mode != "plc":
                    log.warning("PLC trigger ignored: trigger.mode is %r", config.trigger.mode)
                    modbus.publish_error(1, "trigger.mode is not plc", trigger_id)
                    return
                try:
                    pipeline.request_trigger(trigger_id, pose, origin="plc")
                except TimeoutError as exc:
                    modbus.publish_error(3, str(exc), trigger_id)

            modbus = ModbusServerPublisher(modbus_config.host, modbus_config.port, modbus_config.max_holes,
                                           modbus_config.word_order, on_trigger=on_plc_trigger)
            modbus.bank.set_recipe_select(config.inspect.active)
            modbus_bank = modbus.bank
        else:
            from holevision.runtime.publish.modbus_client import ModbusClientPublisher

            modbus = ModbusClientPublisher(modbus_config.host, modbus_config.port, modbus_config.max_holes,
                                           modbus_config.word_order, modbus_config.unit_id,
                                           modbus_config.client_register_offset)
        publishers.append(modbus)
    if zmq_config.enabled:
        from holevision.runtime.publish.zmq_commands import ZmqCommandServer

        servers.append(ZmqCommandServer(pipeline, zmq_config.command))
    pipeline.publishers = publishers
    writer.publishers = publishers   # the Modbus publisher joined after the writer was made
    pipeline.extra_status = lambda: {"modbus_clients": getattr(modbus, "clients", 0),
                                     "recipe": library.active_number if library is not None else 0}
    if config.metrics.enabled:
        from holevision.runtime.metrics import MetricsServer, ServiceMetrics

        metrics = ServiceMetrics(pipeline.status)
        pipeline.metrics = metrics
        servers.append(MetricsServer(metrics, config.metrics.host, config.metrics.port))
    return Service(pipeline=pipeline, capture=capture, writer=writer, publishers=publishers, servers=servers,
                   modbus=modbus)


def _select_recipe_from_plc(library, number: int) -> None:
    if number != library.active_number:
        try:
            library.select(number)
        except ValueError as exc:
            log.warning("PLC recipe_select %d: %s", number, exc)
