"""The results journal: storage, retention, NG images, and SIGTERM losing nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from holevision.runtime.detections import Holes
from holevision.runtime.journal import Journal
from holevision.runtime.result import Result, to_dict, to_message

TESTS = Path(__file__).resolve().parent


def _result(seq: int, verdict=None, epoch=None) -> tuple[dict, bytes]:
    holes = Holes(centers=[[1.0, 2.0]], axes=[[5.0, 5.0]], angles=[0.0], scores=[0.5])
    result = Result(seq=seq, camera="cam0", capture_epoch=epoch or time.time(), done_epoch=time.time(),
                    holes=holes, verdict=verdict)
    return to_dict(result), to_message(result)


def test_append_get_tail_and_sequence_continuation(tmp_path):
    with Journal(tmp_path) as journal:
        for seq in range(1, 6):
            journal.append(*_result(seq, verdict="OK" if seq % 2 else "NG"))
        assert journal.count() == 5 and journal.last_seq("cam0") == 5 and journal.last_seq("other") == 0
        assert journal.get(3)["seq"] == 3 and journal.get(99) is None
        assert [m["seq"] for m in journal.tail(3)] == [3, 4, 5]
        assert [m["seq"] for m in journal.tail(10, verdict="NG")] == [2, 4]
    import sqlite3

    assert sqlite3.connect(tmp_path / "results.sqlite3").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_retention_by_count_age_and_image_size(tmp_path):
    journal = Journal(tmp_path, keep_results=3, keep_days=1.0, keep_ng_images_mb=0.05).open()
    old = time.time() - 3 * 86400
    journal.append(*_result(1, epoch=old))
    for seq in range(2, 8):
        journal.append(*_result(seq))
    rng = np.random.default_rng(0)
    paths = []
    for seq in range(2, 8):
        message, _ = _result(seq, verdict="NG")
        paths.append(journal.save_ng_image(message, rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)))
        os.utime(paths[-1], (time.time() - 10 + seq, time.time() - 10 + seq))
    removed = journal.apply_retention()
    assert [m["seq"] for m in journal.tail(10)] == [5, 6, 7]
    assert removed["rows"] == 4
    remaining = [p for p in paths if Path(p).exists()]
    total = sum(Path(p).stat().st_size for p in remaining)
    assert remaining and total <= 0.05 * 1024 * 1024 and paths[-1] in remaining   # newest kept
    journal.close()


def test_sigterm_loses_nothing_from_the_journal(tmp_path):
    script = tmp_path / "service.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from service_fakes import DiscDetector, loopback_config
        from holevision.runtime.service import build_service

        config = loopback_config({str(tmp_path / "state")!r}, fps=200, modbus=False, zmq=True)
        def printed(message):
            print(message["seq"], flush=True)
        service = build_service(config, detector=DiscDetector(delay_s=0.01), on_result=printed).start()
        print("started", flush=True)
        produced = service.run()
        print("stopped", produced, flush=True)
    """))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while len(lines) < 20 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        assert len(lines) >= 20, process.stderr.read()
        process.send_signal(signal.SIGTERM)
        rest, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    lines += rest.split()
    assert process.returncode == 0, err
    assert "stopped" in lines
    produced = [int(x) for x in lines if x.isdigit()][:-1]     # the last number is the count after "stopped"
    assert len(produced) >= 19
    with Journal(tmp_path / "state").open(readonly=True) as journal:
        stored = [m["seq"] for m in journal.tail(100_000)]
    assert stored == produced       # every result handed out before the stop is in the journal, in order
