"""The results journal: every result in SQLite (WAL) in the state directory, NG images beside it.

``Journal`` is the storage (append, get by seq, tail, retention); it is used from one thread at a
time (the pipeline's ``ResultWriter`` thread, or a command). Rows are committed with
``synchronous=FULL``: once ``append`` returns, the result survives a crash or power loss; only then is
it published.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

JOURNAL_FILE = "results.sqlite3"
NG_FOLDER = "ng_images"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT NOT NULL,
    seq INTEGER NOT NULL,
    trigger_id INTEGER,
    capture_epoch REAL NOT NULL,
    verdict TEXT,
    hole_count INTEGER NOT NULL,
    error_code INTEGER NOT NULL DEFAULT 0,
    image_path TEXT,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_camera_seq ON results (camera, seq);
CREATE INDEX IF NOT EXISTS results_capture ON results (capture_epoch);
"""


class JournalError(OSError):
    """The journal cannot be opened or written (disk full, read-only state directory...)."""


class Journal:
    def __init__(self, state_dir: str | Path, keep_results: int = 100_000, keep_days: float = 30.0,
                 keep_ng_images_mb: float = 2000.0):
        self.state_dir = Path(state_dir)
        self.keep_results = keep_results
        self.keep_days = keep_days
        self.keep_ng_images_bytes = int(keep_ng_images_mb * 1024 * 1024)
        self.path = self.state_dir / JOURNAL_FILE
        self.ng_dir = self.state_dir / NG_FOLDER
        self._db: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self, readonly: bool = False) -> "Journal":
        try:
            if readonly:
                if not self.path.exists():
                    raise JournalError(f"{self.path}: no journal here (journal.state_dir)")
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
                return self
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"{self.path}: cannot open the results journal: {exc} (journal.state_dir)") from None
        return self

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "Journal":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"{self.path}: journal is not open")
        return self._db

    # -- writing -----------------------------------------------------------------------------------
    def append(self, message: dict, payload: bytes, image_path: str | None = None) -> int:
        """Store one result (committed and synced when this returns); returns its row id."""
        error = message.get("error") or {}
        try:
            cursor = self.db.execute(
                "INSERT INTO results (camera, seq, trigger_id, capture_epoch, verdict, hole_count, error_code, "
                "image_path, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message["camera"], message["seq"], message.get("trigger_id"), message["capture_epoch"],
                 message.get("verdict"), len(message["holes"]), int(error.get("code", 0)), image_path,
                 payload.decode("utf-8")))
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot append seq {message['seq']}: {exc}") from None
        return int(cursor.lastrowid)

    def save_ng_image(self, message: dict, image) -> str:
        """Write the overlay image of an NG result as JPEG under ng_images/YYYY-MM-DD/; returns the path."""
        import cv2

        day = datetime.fromtimestamp(message["capture_epoch"], tz=timezone.utc).strftime("%Y-%m-%d")
        folder = self.ng_dir / day
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{message['camera']}_{message['seq']:09d}.jpg"
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise JournalError(f"{path}: cannot write NG image")
        return str(path)

    def apply_retention(self, now: float | None = None) -> dict:
        """Delete rows beyond keep_results or older than keep_days, and NG images beyond the size budget."""
        now = time.time() if now is None else now
        cutoff = now - self.keep_days * 86400.0
        removed_rows = self.db.execute("DELETE FROM results WHERE capture_epoch < ?", (cutoff,)).rowcount
        removed_rows += self.db.execute(
            "DELETE FROM results WHERE id <= (SELECT id FROM results ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (self.keep_results,)).rowcount
        removed_images = 0
        if self.ng_dir.is_dir():
            images = sorted(self.ng_dir.rglob("*.jpg"), key=lambda p: p.stat().st_mtime, reverse=True)
            total = 0
            for image in images:
                stat = image.stat()
                total += stat.st_size
                if total > self.keep_ng_images_bytes or stat.st_mtime < cutoff:
                    image.unlink(missing_ok=True)
                    removed_images += 1
            for folder in self.ng_dir.iterdir():
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        return {"rows": removed_rows, "images": removed_images}

    # -- reading -----------------------------------------------------------------------------------
    def get(self, seq: int, camera: str | None = None) -> dict | None:
        """The newest result with this seq (and camera), as the published message dict."""
        if camera is None:
            row = self.db.execute("SELECT message FROM results WHERE seq = ? ORDER BY id DESC LIMIT 1",
                                  (seq,)).fetchone()
        else:
            row = self.db.execute("SELECT message FROM results WHERE seq = ? AND camera = ? ORDER BY id DESC "
                                  "LIMIT 1", (seq, camera)).fetchone()
        return None if row is None else json.loads(row[0])

    def tail(self, count: int = 20, camera: str | None = None, verdict: str | None = None) -> list[dict]:
        """The last ``count`` results, oldest first."""
        where, args = [], []
        if camera:
            where.append("camera = ?")
            args.append(camera)
        if verdict:
            where.append("verdict = ?")
            args.append(verdict)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self.db.execute(f"SELECT message, image_path FROM results {clause} ORDER BY id DESC LIMIT ?",
                               (*args, count)).fetchall()
        out = []
        for message, image_path in reversed(rows):
            data = json.loads(message)
            data["_image_path"] = image_path
            out.append(data)
        return out

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def last_seq(self, camera: str) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM results WHERE camera = ?", (camera,)).fetchone()
        return int(row[0] or 0)
