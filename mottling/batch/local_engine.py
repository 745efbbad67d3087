"""The local engine: ``--workers`` processes, each loading the model once in its initializer.

With one worker the files are scored in this process, which saves the start-up of a child.
Workers use the ``spawn`` start method: a fork would copy whatever threads the parent holds
(ONNX Runtime's pool, tqdm's monitor) into children that cannot use them.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from typing import Iterator, Sequence

from mottling.batch.worker import Scorer, ScoringConfig, Task

log = logging.getLogger(__name__)

_SCORER: Scorer | None = None   # one per worker process, set by the pool initializer


def _die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive a parent killed with ``kill -9`` (no cleanup runs then)."""
    try:  # Linux: the kernel sends SIGKILL when the parent goes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_worker(scoring: dict, parent_pid: int, log_level: int) -> None:
    global _SCORER
    _die_with_parent(parent_pid)
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    _SCORER = Scorer(ScoringConfig(**scoring))


def _score_task(task: dict) -> tuple[int, dict]:
    assert _SCORER is not None, "worker used before its initializer ran"
    return int(task["task_id"]), _SCORER.score(Task.from_dict(task))


def score_local(tasks: Sequence[Task], scoring: ScoringConfig, workers: int = 1,
                scorer: Scorer | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(task_id, row)`` for every task, in completion order."""
    if not tasks:
        return
    if workers <= 1:
        own = scorer is None
        scorer = scorer or Scorer(scoring)
        try:
            for task in tasks:
                yield task.task_id, scorer.score(task)
        finally:
            if own:
                scorer.close()
        return
    ctx = mp.get_context("spawn")
    n = min(workers, len(tasks))
    with ctx.Pool(n, initializer=_init_worker,
                  initargs=(scoring.to_dict(), os.getpid(), logging.getLogger().level)) as pool:
        yield from pool.imap_unordered(_score_task, [t.to_dict() for t in tasks], chunksize=1)
