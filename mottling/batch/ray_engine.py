"""The Ray Data engine: the same ``Scorer`` as the local engine, run by a pool of actors.

Each actor loads the ONNX model once, in its constructor, and ``map_batches`` streams the files
through the pool. Rows travel back as JSON strings: a float survives the round trip exactly, and a
column that is all nulls in one batch cannot clash with its type in another. The driver writes the
shards as their rows arrive, so a killed Ray run resumes like a local one.

Without ``address`` a private Ray instance is started on loopback (no dashboard) and shut down at
the end; with ``address`` (``ray://head:10001`` or ``auto``) the run joins that cluster, whose
workers must see the input files at the same paths (a shared file system).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterator, Sequence

import numpy as np

from mottling.batch.worker import Scorer, ScoringConfig, Task
from mottling.errors import MottlingError

log = logging.getLogger(__name__)

BATCH_SIZE = 4   # files per actor call: small, so a slow video does not hold others back


class ScoreActor:
    """A Ray actor (through ``map_batches``) holding one ``Scorer`` and so one loaded model."""

    def __init__(self, scoring: dict):
        self.scorer = Scorer(ScoringConfig(**scoring))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for text in batch["task"]:
            task = Task.from_dict(json.loads(text))
            row = self.scorer.score(task)
            out.append(json.dumps({"task_id": task.task_id, "row": row}))
        return {"result": np.array(out, dtype=object)}


def _actor_pool(workers: int) -> dict:
    """A fixed pool of ``workers`` actors (``compute=`` since Ray 2.51, ``concurrency=`` before)."""
    try:
        from ray.data import ActorPoolStrategy

        return {"compute": ActorPoolStrategy(size=workers)}
    except ImportError:  # pragma: no cover - old Ray
        return {"concurrency": workers}


def _loopback_only(enable: bool) -> bool | None:
    """Make a private Ray instance bind to 127.0.0.1, returning the previous setting.

    Ray turns ``_node_ip_address="127.0.0.1"`` into the machine's routable address unless its
    single-machine mode is on (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when ``ray`` is
    imported); when ``ray`` is already imported the constant is set directly, and put back later.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        from ray._private import ray_constants
    except ImportError:  # pragma: no cover - a Ray without this switch
        return None
    previous = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = not enable
    return previous


def _start_ray(address: str | None, num_cpus: int) -> tuple[bool, bool | None]:
    """Connect to (or start) Ray. Returns (whether this call started it and must shut it down,
    the cluster-mode setting to restore afterwards)."""
    try:
        import ray
    except ImportError:
        raise MottlingError("the Ray engine needs the distributed extra: "
                            "pip install 'mottling[distributed]'") from None
    if ray.is_initialized():
        return False, None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = logging.getLogger().level > logging.INFO
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=not quiet)
        return True, None
    previous = _loopback_only(True)
    ray.init(address=None, include_dashboard=False, num_cpus=num_cpus,
             _node_ip_address="127.0.0.1", logging_level=logging.WARNING,
             log_to_driver=not quiet)
    return True, previous


def score_ray(tasks: Sequence[Task], scoring: ScoringConfig, workers: int = 2,
              address: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(task_id, row)`` for every task, in completion order."""
    if not tasks:
        return
    started, cluster_mode = _start_ray(address, num_cpus=max(2, workers))
    import ray
    import ray.data

    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False   # ours is enough
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        items = [{"task": json.dumps(t.to_dict())} for t in tasks]
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * workers)))
        scored = ds.map_batches(ScoreActor, fn_constructor_kwargs={"scoring": scoring.to_dict()},
                                batch_size=BATCH_SIZE, batch_format="numpy", num_cpus=1,
                                **_actor_pool(workers))
        for batch in scored.iter_batches(batch_size=None, batch_format="numpy"):
            for text in batch["result"]:
                record = json.loads(text)
                yield int(record["task_id"]), record["row"]
    finally:
        if started:
            ray.shutdown()
        if cluster_mode is not None:
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
