"""``run_batch``: discover the files, plan shards, score the unfinished ones, assemble the table.

Every discovered file ends up as exactly one row of the output, whatever happens to it. The
output is assembled from the shard files only, so a run that was killed and restarted produces the
same table as one that never stopped.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import mottling
from mottling.batch.inputs import discover
from mottling.batch.sharding import ShardCollector, ShardStore, plan_shards
from mottling.batch.sites import SiteResolver, load_manifest
from mottling.batch.worker import Scorer, ScoringConfig, Task
from mottling.errors import InputError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchConfig:
    """One batch run's settings; written, resolved, next to the output."""

    inputs: tuple[str, ...]
    out: str
    csv: bool = False
    workers: int = 1
    engine: str = "local"
    ray_address: str | None = None
    site: str | None = None
    site_from_path: str | None = None
    manifest: str | None = None
    model: str | None = None
    shard_size: int = 32
    max_file_bytes: int = 1 << 30
    slow_down_s: float = 0.0   # testing aid: sleep per file, so a test can interrupt a run

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.workers < 1:
            raise InputError("--workers must be at least 1")

    @property
    def out_path(self) -> Path:
        return Path(self.out).expanduser().resolve()

    @property
    def parts_dir(self) -> Path:
        return self.out_path.with_name(self.out_path.name + ".parts")

    @property
    def csv_path(self) -> Path | None:
        return self.out_path.with_suffix(".csv") if self.csv else None

    @property
    def config_path(self) -> Path:
        return self.out_path.with_name(self.out_path.stem + ".config.json")


@dataclass
class BatchSummary:
    out: Path
    csv: Path | None
    n_files: int
    counts: dict[tuple[str, str], int]
    errors: Counter
    shards_total: int
    shards_skipped: int
    seconds: float
    model_version: str | None = None
    files_scored: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def n_errors(self) -> int:
        return sum(n for (kind, status), n in self.counts.items() if status == "error")

    def format(self) -> str:
        rate = self.files_scored / self.seconds if self.seconds > 0 else 0.0
        lines = [f"mottling batch: {self.n_files} files, {self.files_scored} scored in "
                 f"{self.seconds:.1f} s ({rate:.1f} files/s); {self.shards_skipped} of "
                 f"{self.shards_total} shards were already done",
                 f"  {'':8s}{'ok':>8s}{'rejected':>10s}{'error':>8s}"]
        for kind in ("photo", "video", "unknown"):
            cells = [self.counts.get((kind, s), 0) for s in ("ok", "rejected", "error")]
            if any(cells):
                lines.append(f"  {kind:8s}{cells[0]:>8d}{cells[1]:>10d}{cells[2]:>8d}")
        if self.errors:
            lines.append("errors:")
            for message, n in self.errors.most_common(10):
                lines.append(f"  {n} x {message}")
            if len(self.errors) > 10:
                lines.append(f"  ... and {len(self.errors) - 10} other messages")
        outputs = str(self.out) + (f" and {self.csv}" if self.csv else "")
        lines.append(f"results: {outputs}")
        return "\n".join(lines)


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _load_model(config: BatchConfig):
    """Fail before any work when the model is missing or fails its hash check."""
    from mottling.photo.model import load_model

    return load_model(config.model)


def _engine_rows(config: BatchConfig, tasks: list[Task], scoring: ScoringConfig,
                 model) -> Iterator[tuple[int, dict]]:
    if config.engine == "ray":
        from mottling.batch.ray_engine import score_ray

        return score_ray(tasks, scoring, workers=config.workers, address=config.ray_address)
    from mottling.batch.local_engine import score_local

    scorer = Scorer(scoring, load=False, model=model) if config.workers <= 1 else None
    return score_local(tasks, scoring, workers=config.workers, scorer=scorer)


def plan_tasks(config: BatchConfig) -> list[Task]:
    """The files of the run, each with its site resolved. Raises before any work on bad INPUT."""
    skip = [config.out_path, config.out_path.with_suffix(".csv"), config.config_path,
            config.parts_dir]
    if config.manifest:
        skip.append(Path(config.manifest))
    manifest = {}
    if config.manifest:
        if not Path(config.manifest).is_file():
            raise InputError(f"manifest not found: {config.manifest}")
        manifest = load_manifest(config.manifest)
    resolver = SiteResolver(site=config.site, pattern=config.site_from_path, manifest=manifest,
                            manifest_dir=Path(config.manifest).parent if config.manifest else None)
    items = discover(config.inputs, skip=skip)
    if not items:
        raise InputError("INPUT holds no files")
    return [Task(i, item, *resolver.resolve(item)) for i, item in enumerate(items)]


def run_batch(config: BatchConfig, progress: bool | None = None) -> BatchSummary:
    started = time.perf_counter()
    tasks = plan_tasks(config)
    model = _load_model(config)
    scoring = ScoringConfig(model_path=config.model, max_file_bytes=config.max_file_bytes,
                            intra_op_threads=1 if config.workers > 1 else None,
                            slow_down_s=config.slow_down_s)
    fingerprint = {"model_sha256": model.sha256, "mottling_version": mottling.__version__,
                   "max_file_bytes": config.max_file_bytes}
    shards = plan_shards(tasks, config.shard_size, fingerprint)
    store = ShardStore(config.parts_dir)
    store.prepare()
    for path in (config.out_path, config.csv_path, config.config_path):
        if path is not None:   # left by a run killed while writing its final files
            for tmp in path.parent.glob(f".{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
    stale = store.remove_stale(shards)
    if stale:
        log.info("removed %d shard files from an earlier run with other inputs or settings", stale)
    pending = [s for s in shards if not store.is_done(s)]
    done_files = sum(len(s.tasks) for s in shards) - sum(len(s.tasks) for s in pending)
    log.info("%d files in %d shards; %d shards already done", len(tasks), len(shards),
             len(shards) - len(pending))

    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    collector = ShardCollector(store, pending)
    pending_tasks = [t for s in pending for t in s.tasks]
    with tqdm(total=len(tasks), initial=done_files, unit="file", disable=not show,
              dynamic_ncols=True, smoothing=0.1) as bar:
        for task_id, row in _engine_rows(config, pending_tasks, scoring, model):
            collector.add(task_id, row)
            bar.update(1)
    if not collector.complete:
        raise RuntimeError("the engine stopped before every file was scored")

    table = pa.concat_tables([store.read(s) for s in shards])
    meta = {"mottling.batch": json.dumps({"config": asdict(config), "model_version": model.version,
                                          "model_sha256": model.sha256,
                                          "mottling_version": mottling.__version__})}
    table = table.replace_schema_metadata(meta)
    out = config.out_path
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out, lambda p: pq.write_table(table, p))
    if config.csv_path is not None:
        _atomic_write(config.csv_path, lambda p: pacsv.write_csv(table, p))
    resolved = {**asdict(config), "model_version": model.version,
                "model_sha256": model.sha256, "mottling_version": mottling.__version__}
    _atomic_write(config.config_path,
                  lambda p: p.write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8"))
    return _summarise(config, table, len(shards), len(shards) - len(pending), len(pending_tasks),
                      time.perf_counter() - started, model.version)


def _summarise(config: BatchConfig, table: pa.Table, n_shards: int, n_skipped: int,
               n_scored: int, seconds: float, model_version: str) -> BatchSummary:
    kinds = table.column("kind").to_pylist()
    statuses = table.column("status").to_pylist()
    errors = Counter(e for e, s in zip(table.column("error").to_pylist(), statuses)
                     if s == "error")
    return BatchSummary(out=config.out_path, csv=config.csv_path, n_files=table.num_rows,
                        counts=Counter(zip(kinds, statuses)), errors=errors,
                        shards_total=n_shards, shards_skipped=n_skipped, seconds=seconds,
                        model_version=model_version, files_scored=n_scored)
