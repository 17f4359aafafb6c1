"""Prometheus metrics and a ``/health`` endpoint on localhost.

``ServiceMetrics`` owns a private prometheus registry (no global state). Per-frame figures are
observed by the pipeline (``observe_result``); counters that other parts keep (capture drops, camera
reconnects, publisher drops, Modbus clients) are read at scrape time from ``status()``.

``GET /metrics`` -> Prometheus text; ``GET /health`` -> JSON, HTTP 200 when healthy, 503 otherwise.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    def __init__(self, status: Callable[[], dict]):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self._status = status
        self.frames = Counter("holevision_frames", "Frames processed", ["camera"], registry=self.registry)
        self.holes = Counter("holevision_holes", "Holes found", ["camera"], registry=self.registry)
        self.ng = Counter("holevision_ng", "Results with verdict NG", ["camera"], registry=self.registry)
        self.errors = Counter("holevision_errors", "Frames or triggers that failed, by error code",
                              ["camera", "code"], registry=self.registry)
        self.latency = Histogram("holevision_stage_seconds", "Time per pipeline stage", ["stage"],
                                 buckets=STAGE_BUCKETS_S, registry=self.registry)
        self.registry.register(_StatusCollector(status))

    def observe_result(self, message: dict) -> None:
        camera = message["camera"]
        self.frames.labels(camera).inc()
        self.holes.labels(camera).inc(len(message["holes"]))
        if message.get("verdict") == "NG":
            self.ng.labels(camera).inc()
        if message.get("error"):
            self.errors.labels(camera, str(message["error"]["code"])).inc()
        for stage, ms in message.get("timings_ms", {}).items():
            self.latency.labels(stage).observe(ms / 1000.0)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def health(self) -> tuple[bool, dict]:
        status = self._status()
        return bool(status.get("healthy", False)), status


class _StatusCollector:
    """Counters and gauges kept elsewhere, read when Prometheus scrapes."""

    def __init__(self, status: Callable[[], dict]):
        self._status = status

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = self._status()
        drops = CounterMetricFamily("holevision_dropped", "Items dropped by a bounded queue, by stage", labels=["stage"])
        for stage, count in status.get("dropped", {}).items():
            drops.add_metric([stage], count)
        yield drops
        yield CounterMetricFamily("holevision_camera_reconnects", "Camera reopened after a loss",
                                  value=status.get("camera", {}).get("reconnects", 0))
        yield CounterMetricFamily("holevision_repeated_frames", "Frames identical to the previous one",
                                  value=status.get("camera", {}).get("repeated", 0))
        yield GaugeMetricFamily("holevision_camera_connected", "1 when the camera delivers frames",
                                value=1 if status.get("camera", {}).get("connected") else 0)
        yield GaugeMetricFamily("holevision_modbus_clients", "Connected Modbus TCP clients",
                                value=status.get("modbus_clients", 0))
        yield GaugeMetricFamily("holevision_last_result_age_seconds", "Seconds since the last result",
                                value=status.get("last_result_age_s") or 0.0)


class MetricsServer:
    """``/metrics`` and ``/health`` over HTTP on (host, port), on its own thread; port 0 picks a free port."""

    def __init__(self, metrics: ServiceMetrics, host: str = "127.0.0.1", port: int = 9108):
        self.metrics = metrics
        handler = _make_handler(metrics)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise OSError(exc.errno, f"metrics: cannot listen on {host}:{port}: {exc.strerror} "
                                     f"(metrics.host / metrics.port)") from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "MetricsServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="holevision-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(metrics: ServiceMetrics):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.startswith("/metrics"):
                body, code, kind = metrics.exposition(), 200, "text/plain; version=0.0.4"
            elif self.path.startswith("/health"):
                healthy, status = metrics.health()
                body = json.dumps(status, default=str).encode()
                code, kind = (200 if healthy else 503), "application/json"
            else:
                body, code, kind = b"not found: try /metrics or /health\n", 404, "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep the service log for the service
            pass

    return Handler
