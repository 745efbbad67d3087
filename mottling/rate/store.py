"""Every answer kept the moment it is given, and one tidy CSV per rater made from them.

Answers go to ``OUT/<rater>.answers.sqlite`` in WAL mode with ``synchronous=FULL``: each answer is
its own committed transaction, fsync'd before the page is told it is saved, so a killed server or a
power cut loses nothing the page saw confirmed. Nothing is ever updated in place: changing an
answer appends a new row, and the latest row per file is the answer (the others count as
revisions). Each row carries the page's ``answer_id``; a resend of the same answer (the reply was
lost, the page retried) is ignored, so no answer is ever stored twice. SQLite also makes several
server processes (``mottling serve --workers N``) safe on the same file.

``OUT/<rater>.csv`` is rewritten atomically (write, fsync, rename) after every answer and at start,
so it is never half written; it is derived data and can always be remade from the database.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mottling.rate.answers import CSV_COLUMNS

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    given_utc TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_path ON answers(path);
"""


class AnswerStore:
    def __init__(self, out_dir: Path, rater: str, seed: int) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rater = rater
        self.seed = seed
        self.db_path = self.out_dir / f"{rater}.answers.sqlite"
        self.csv_path = self.out_dir / f"{rater}.csv"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, answer_id: str, path: str, kind: str, record: dict[str, Any]) -> bool:
        """Store one answer durably; False when this ``answer_id`` was already stored."""
        given = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO answers (answer_id, path, kind, given_utc, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (answer_id, path, kind, given, json.dumps(record, allow_nan=False)))
            return cur.rowcount == 1

    def latest(self) -> dict[str, dict[str, Any]]:
        """path -> the latest answer (with ``given_utc``, ``revisions``, ``answer_id``)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path, kind, given_utc, record, answer_id, n FROM answers JOIN "
                "(SELECT MAX(seq) AS last, COUNT(*) AS n FROM answers GROUP BY path) "
                "ON seq = last ORDER BY seq").fetchall()
        out = {}
        for path, kind, given, record, answer_id, n in rows:
            rec = json.loads(record)
            rec.update(path=path, kind=kind, given_utc=given, revisions=n - 1, answer_id=answer_id)
            out[path] = rec
        return out

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def write_csv(self, order: dict[str, int]) -> Path:
        """The tidy file: one row per answered file, in the order the rater answered them."""
        latest = self.latest()
        tmp = self.csv_path.with_name(f".{self.csv_path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for path, rec in latest.items():
                row = {k: ("" if rec.get(k) is None else rec.get(k)) for k in CSV_COLUMNS}
                row.update(path=path, rater=self.rater, order=order.get(path, ""), seed=self.seed)
                writer.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.csv_path)
        return self.csv_path
