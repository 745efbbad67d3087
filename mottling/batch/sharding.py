"""Deterministic shards, each written atomically, so an interrupted run resumes where it stopped.

The plan (sorted files cut into fixed-size shards) depends only on the inputs and the settings.
Each shard's file name carries a hash of everything that decides its rows (file identities, sites,
model hash, package version), so a rerun recognises finished shards and recomputes any whose
inputs or settings changed. A shard is written to a temporary name and then renamed with
``os.replace``: after a ``kill -9`` a shard file is either complete or absent, never half there.
(img2dataset does the same with its ``*_stats.json`` markers.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from mottling.batch.rows import SCHEMA, rows_to_table
from mottling.batch.worker import Task

log = logging.getLogger(__name__)

SHARD_GLOB = "shard-*.parquet"


@dataclass(frozen=True)
class Shard:
    index: int
    key: str
    tasks: tuple[Task, ...]

    @property
    def filename(self) -> str:
        return f"shard-{self.index:05d}-{self.key}.parquet"


def plan_shards(tasks: Sequence[Task], shard_size: int, fingerprint: dict[str, Any]) -> list[Shard]:
    """Cut ``tasks`` (already in their final order) into shards of ``shard_size``."""
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    settings = json.dumps(fingerprint, sort_keys=True)
    shards = []
    for index, start in enumerate(range(0, len(tasks), shard_size)):
        chunk = tuple(tasks[start:start + shard_size])
        h = hashlib.sha256(settings.encode())
        for t in chunk:
            identity = [t.item.path, t.item.location, t.item.member, t.item.size, t.item.mtime_ns,
                        t.site, t.site_error]
            h.update(json.dumps(identity).encode())
        shards.append(Shard(index, h.hexdigest()[:16], chunk))
    return shards


class ShardStore:
    """The folder of finished shards beside the output file."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for tmp in self.folder.glob("*.tmp"):   # left by a run killed while writing
            tmp.unlink(missing_ok=True)

    def path(self, shard: Shard) -> Path:
        return self.folder / shard.filename

    def is_done(self, shard: Shard) -> bool:
        return self.path(shard).is_file()

    def write(self, shard: Shard, rows: list[dict[str, Any]]) -> Path:
        """Write the shard's rows in plan order, atomically."""
        if len(rows) != len(shard.tasks):
            raise ValueError(f"shard {shard.index} has {len(rows)} rows for {len(shard.tasks)} files")
        final = self.path(shard)
        tmp = final.with_name(f"{final.name}.{os.getpid()}.tmp")
        pq.write_table(rows_to_table(rows), tmp)
        with open(tmp, "rb") as fh:       # the rename must not overtake the data on a crash
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final

    def read(self, shard: Shard) -> pa.Table:
        return pq.read_table(self.path(shard), schema=SCHEMA)

    def remove_stale(self, shards: Sequence[Shard]) -> int:
        """Delete shard files that belong to no shard of the current plan."""
        keep = {s.filename for s in shards}
        stale = [p for p in self.folder.glob(SHARD_GLOB) if p.name not in keep]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)


class ShardCollector:
    """Gathers rows that arrive in any order and writes each shard as soon as it is complete."""

    def __init__(self, store: ShardStore, shards: Sequence[Shard]):
        self.store = store
        self._where: dict[int, tuple[Shard, int]] = {}
        self._rows: dict[int, list[dict | None]] = {}
        self._missing: dict[int, int] = {}
        for shard in shards:
            self._rows[shard.index] = [None] * len(shard.tasks)
            self._missing[shard.index] = len(shard.tasks)
            for pos, task in enumerate(shard.tasks):
                self._where[task.task_id] = (shard, pos)
        self.written = 0

    def add(self, task_id: int, row: dict[str, Any]) -> Shard | None:
        """Store one row; returns the shard if this row completed (and wrote) it."""
        shard, pos = self._where[task_id]
        rows = self._rows[shard.index]
        if rows[pos] is not None:
            raise RuntimeError(f"row for task {task_id} arrived twice")
        rows[pos] = row
        self._missing[shard.index] -= 1
        if self._missing[shard.index] == 0:
            self.store.write(shard, rows)   # type: ignore[arg-type]
            del self._rows[shard.index]
            self.written += 1
            log.info("shard %d written (%d files)", shard.index, len(shard.tasks))
            return shard
        return None

    @property
    def complete(self) -> bool:
        return not self._rows
