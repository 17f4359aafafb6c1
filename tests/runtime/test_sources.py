"""Frame sources and the capture thread: numbering, repeated frames, a camera that disappears."""

from __future__ import annotations

import shutil
import threading
import time

import cv2
import numpy as np
import pytest

from holevision.runtime.sources.base import FrameSource, SourceError
from holevision.runtime.sources.capture import CaptureThread
from holevision.runtime.sources.folder import FolderSource
from holevision.runtime.sources.synthetic import SyntheticSource, render_discs


def _frames(capture: CaptureThread, n: int, timeout: float = 3.0) -> list:
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        frame = capture.next_frame(timeout=0.2)
        if frame is not None:
            frames.append(frame)
    return frames


class FlakyCamera(FrameSource):
    """Delivers `good` frames, then fails (unplugged); refuses `refuse` opens; then works again."""

    name = "flaky"

    def __init__(self, state: dict):
        self.state = state

    def open(self):
        self.state["opens"] += 1
        if self.state["unplugged"]:
            if self.state["refuse"] > 0:
                self.state["refuse"] -= 1
                raise SourceError("no such device")
            self.state["unplugged"] = False

    def read(self):
        time.sleep(0.005)
        if self.state["unplugged"]:
            raise SourceError("read failed")
        self.state["served"] += 1
        if self.state["served"] == self.state["good"]:
            self.state["unplugged"] = True
        image = np.zeros((8, 8, 3), np.uint8)
        image[0, 0] = self.state["served"] % 256
        return image


class HangingCamera(FrameSource):
    """The first device object hangs in read() (a driver stuck on a dead USB link) until closed."""

    name = "hanging"

    def __init__(self, generation: int):
        self.generation = generation
        self.closed = threading.Event()

    def read(self):
        if self.generation == 0:
            self.closed.wait(10)
            raise SourceError("device closed")
        time.sleep(0.01)
        return np.full((8, 8, 3), time.monotonic_ns() % 256, np.uint8)

    def close(self):
        self.closed.set()


def test_frames_are_numbered_and_timestamped():
    capture = CaptureThread(lambda: SyntheticSource(seed=1, width=160, height=128, renderer="discs"),
                            fps=200).start()
    try:
        frames = _frames(capture, 5)
    finally:
        capture.stop()
    assert len(frames) == 5
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert all(f.image.shape == (128, 160, 3) for f in frames)
    assert all(abs(f.capture_epoch - time.time()) < 10 for f in frames)
    assert not any(f.repeated for f in frames)


def test_camera_that_disappears_is_reopened_with_backoff():
    state = {"opens": 0, "served": 0, "good": 5, "refuse": 3, "unplugged": False}
    capture = CaptureThread(lambda: FlakyCamera(state), stale_after_s=1.0,
                            backoff_initial_s=0.02, backoff_max_s=0.1).start()
    try:
        frames = _frames(capture, 8, timeout=5)
    finally:
        capture.stop()
    assert len(frames) == 8, f"only {len(frames)} frames; last error {capture.last_error}"
    assert capture.reconnects == 1
    assert state["opens"] == 1 + 3 + 1        # first open, three refused, the successful reopen
    assert capture.failures >= 4
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)


def test_hung_camera_is_noticed_within_the_stale_time_and_reopened():
    generations = iter(range(100))
    capture = CaptureThread(lambda: HangingCamera(next(generations)), stale_after_s=0.3,
                            backoff_initial_s=0.01).start()
    try:
        started = time.monotonic()
        frame = capture.next_frame(timeout=3)
        elapsed = time.monotonic() - started
        assert frame is not None
        assert 0.3 <= elapsed < 2.0, elapsed   # not before the stale time, well within 2 s
    finally:
        capture.stop()
    assert capture.reconnects == 1


def test_repeated_frames_are_flagged():
    class Frozen(FrameSource):
        live = False

        def read(self):
            return np.full((32, 32, 3), 7, np.uint8)

    capture = CaptureThread(lambda: Frozen(), fps=100).start()
    try:
        frames = _frames(capture, 3)
    finally:
        capture.stop()
    assert [f.repeated for f in frames[1:]] == [True, True]
    assert capture.repeated >= 2


def test_folder_source_loops_and_a_removed_folder_is_reopened(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((16, 16, 3), 40 * i, np.uint8))
    source = FolderSource(folder)
    source.open()
    names = []
    for _ in range(4):
        source.read()
        names.append(source.current_name)
    assert names == ["img0.png", "img1.png", "img2.png", "img0.png"]

    backup = tmp_path / "backup"
    capture = CaptureThread(lambda: FolderSource(folder), fps=100, backoff_initial_s=0.02,
                            backoff_max_s=0.05).start()
    try:
        assert _frames(capture, 2)
        shutil.move(str(folder), str(backup))   # the share goes away ...
        time.sleep(0.2)
        assert capture.failures >= 1
        shutil.move(str(backup), str(folder))   # ... and comes back
        time.sleep(0.2)
        assert _frames(capture, 2)
    finally:
        capture.stop()
    assert capture.reconnects >= 1


def test_disc_renderer_is_deterministic_and_has_the_asked_holes():
    image, truth = render_discs(3, 320, 256, holes=6)
    again, _ = render_discs(3, 320, 256, holes=6)
    assert truth.shape == (6, 3) and np.array_equal(image, again)
    u, v = truth[0, :2].round().astype(int)
    assert image[v, u].mean() < 80 and image[5, 5].mean() > 140


def test_missing_folder_error_names_the_field(tmp_path):
    with pytest.raises(SourceError, match="source.uri"):
        FolderSource(tmp_path / "nope").open()
