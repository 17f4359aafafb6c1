"""`holevision demo`: the whole service on loopback, with a robot-side subscriber and a PLC simulator.

Synthetic camera -> bundled model -> example calibration (a camera 500 mm above the table, so every
hole gets x/y/z in mm) -> journal -> ZeroMQ PUB + Modbus TCP server. A built-in ZeroMQ subscriber
and a PLC simulator (pymodbus client running the trigger handshake) print what they receive. The PLC
triggers ``frames`` times; the demo exits 0 when both sides received every result.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

DEMO_WIDTH, DEMO_HEIGHT = 640, 512
# The synthetic camera's calibration: fx = fy = 1500 px, looking straight down from 500 mm
# (0.33 mm/px on the table), optical center 400 mm in front of the robot base.
DEMO_K = [[1500.0, 0.0, DEMO_WIDTH / 2 - 0.5], [0.0, 1500.0, DEMO_HEIGHT / 2 - 0.5], [0.0, 0.0, 1.0]]
DEMO_T_BASE_CAM = [[1.0, 0.0, 0.0, 400.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 500.0], [0.0, 0.0, 0.0, 1.0]]


def write_demo_calibration(folder: Path) -> dict[str, str]:
    """camera.json, plane.json and handeye.json of the synthetic camera (calibration's own formats)."""
    from holevision.calibration.camera import CameraModel
    from holevision.calibration.handeye_file import HANDEYE_FORMAT, HANDEYE_VERSION
    from holevision.calibration.jsonio import write_json
    from holevision.calibration.plane import Plane, save_plane
    from holevision.calibration.transforms import invert_transform

    folder.mkdir(parents=True, exist_ok=True)
    camera = CameraModel(K=np.array(DEMO_K), dist=np.zeros(5), image_size=(DEMO_WIDTH, DEMO_HEIGHT),
                         report={"note": "holevision demo: the synthetic camera's exact intrinsics"})
    camera.save(folder / "camera.json")
    T_base_cam = np.array(DEMO_T_BASE_CAM)
    table_base = Plane(point=np.zeros(3), normal=np.array([0.0, 0.0, 1.0]))       # the table top, z = 0
    save_plane(folder / "plane.json", table_base.transformed(invert_transform(T_base_cam)), table_base,
               {"note": "holevision demo: table top 500 mm below the camera"})
    write_json(folder / "handeye.json", HANDEYE_FORMAT, HANDEYE_VERSION, {
        "mode": "eye-to-hand", "T_base_cam": T_base_cam, "T_flange_target": np.eye(4),
        "note": "holevision demo: the synthetic camera's exact mounting"})
    return {name: str(folder / f"{name}.json") for name in ("camera", "plane", "handeye")}


def demo_config(state_dir: Path, calibration: dict[str, str], seed: int = 0, bundle: str = "default"):
    from holevision.runtime.config import parse_config

    return parse_config({
        "source": {"kind": "synthetic", "width": DEMO_WIDTH, "height": DEMO_HEIGHT, "fps": 10.0, "seed": seed},
        "model": {"bundle": bundle},
        "trigger": {"mode": "plc", "frame_timeout_s": 5.0},
        "publish": {"zmq": {"pub": "tcp://127.0.0.1:*", "command": "tcp://127.0.0.1:*"},
                    "modbus": {"port": 0, "max_holes": 16}},
        "calibration": {"mode": "eye-to-hand", **calibration},
        "journal": {"state_dir": str(state_dir)},
        "metrics": {"enabled": False},
    }, "<demo>")


def _fmt(value, spec: str = "7.1f") -> str:
    return "   nan " if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


def format_holes(holes: list[dict], limit: int = 3) -> str:
    parts = [f"#{h['id']} x={_fmt(h.get('x_mm'))} y={_fmt(h.get('y_mm'))} z={_fmt(h.get('z_mm'))} mm "
             f"d={_fmt(h.get('diameter_mm'), '.2f')} mm" for h in holes[:limit]]
    more = f" (+{len(holes) - limit} more)" if len(holes) > limit else ""
    return "; ".join(parts) + more if parts else "no holes"


class DemoSubscriber(threading.Thread):
    """The robot side: a ZeroMQ SUB on ``holes/<camera>`` that prints every result it gets."""

    def __init__(self, endpoint: str, printer=print):
        super().__init__(name="holevision-demo-subscriber", daemon=True)
        import zmq

        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"holes/")
        self.socket.connect(endpoint)
        self.received: list[dict] = []
        self.printer = printer
        self._halt = threading.Event()

    def run(self) -> None:
        import zmq

        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while not self._halt.is_set():
            if not poller.poll(100):
                continue
            topic, payload = self.socket.recv_multipart()
            message = json.loads(payload)
            self.received.append(message)
            self.printer(f"[zmq    {topic.decode()}] seq={message['seq']} trigger={message['trigger_id']} "
                         f"holes={len(message['holes'])}: {format_holes(message['holes'])}")
        self.socket.close(0)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)


def run_demo(frames: int = 5, seed: int = 0, state_dir: str | None = None, bundle: str = "default",
             detector=None, printer=print) -> int:
    """Run the demo; returns 0 when the subscriber and the PLC each received ``frames`` results."""
    from holevision.runtime.publish.plc_simulator import PlcSimulator
    from holevision.runtime.service import build_service

    with tempfile.TemporaryDirectory(prefix="holevision-demo-") as scratch:
        state = Path(state_dir) if state_dir else Path(scratch) / "state"
        calibration = write_demo_calibration(Path(scratch) / "calibration")
        config = demo_config(state, calibration, seed, bundle)
        printer(f"holevision demo: synthetic {DEMO_WIDTH}x{DEMO_HEIGHT} camera, model {bundle!r}, "
                f"eye-to-hand calibration (camera 500 mm above the table), journal in {state}")
        service = build_service(config, detector=detector).start()
        pub = service.publishers[0].bound_endpoint
        printer(f"  ZeroMQ PUB {pub} (topic holes/cam0), commands {service.servers[0].bound_endpoint}; "
                f"Modbus TCP server 127.0.0.1:{service.modbus.port}")
        subscriber = DemoSubscriber(pub, printer)
        subscriber.start()
        runner = threading.Thread(target=service.run, name="holevision-demo-service", daemon=True)
        runner.start()
        time.sleep(0.3)  # let the subscription reach the publisher (ZeroMQ's slow-joiner)
        plc_results = []
        try:
            with PlcSimulator(port=service.modbus.port, max_holes=16, timeout_s=60) as plc:
                for trigger_id in range(1, frames + 1):
                    result = plc.trigger(trigger_id)
                    plc_results.append(result)
                    printer(f"[modbus 127.0.0.1:{service.modbus.port}] trigger={result['trigger_id']} "
                            f"seq={result['seq']} holes={result['holes_found']} "
                            f"({result['processing_ms']} ms): {format_holes(result['holes'])}")
            deadline = time.monotonic() + 5
            while len(subscriber.received) < frames and time.monotonic() < deadline:
                time.sleep(0.05)
        except KeyboardInterrupt:
            printer("interrupted")
        finally:
            service.pipeline.stop()
            runner.join(30)
            subscriber.stop()
        printer(f"received {len(subscriber.received)} results over ZeroMQ and {len(plc_results)} over Modbus "
                f"for {frames} triggers")
        ok = len(subscriber.received) >= frames and len(plc_results) == frames
        return 0 if ok else 1
