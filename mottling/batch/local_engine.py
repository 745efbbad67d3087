"""The local engine: ``--workers`` processes, each loading the model once in its initializer.

With one worker the files are scored in this process, which saves the start-up of a child (and
means a hard crash in a native decoder ends the run; the finished shards are kept).
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
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, Sequence

import mottling
from mottling.batch.rows import empty_row
from mottling.batch.worker import Scorer, ScoringConfig, Task, utc_now

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


def _pool(n: int, scoring: ScoringConfig) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(scoring.to_dict(), os.getpid(),
                                         logging.getLogger().level))


def _crash_row(task: Task) -> dict:
    row = empty_row(task.item.path)
    row.update(status="error", mottling_version=mottling.__version__, scored_utc=utc_now(),
               error="the worker process died while scoring this file (a crash in a decoder?)")
    return row


def score_local(tasks: Sequence[Task], scoring: ScoringConfig, workers: int = 1,
                scorer: Scorer | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(task_id, row)`` for every task, in completion order.

    With several workers, each has one file in flight at a time, so when a worker process dies
    (a native decoder crashing on a hostile file) the files that were in flight are known: each is
    retried alone in a fresh process, and the one that kills its process again gets an error row.
    The run goes on either way.
    """
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
    queue = list(reversed(tasks))
    suspects: list[Task] = []
    while queue:
        in_flight: dict = {}
        pool = _pool(min(workers, len(queue)), scoring)
        try:
            while queue or in_flight:
                while queue and len(in_flight) < workers:
                    # Taken off the queue only once submitted: a pool broken by a worker that
                    # just died refuses the submit, and the task must stay queued, not be lost.
                    fut = pool.submit(_score_task, queue[-1].to_dict())
                    in_flight[fut] = queue.pop()
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in done:
                    result = fut.result()      # raises BrokenProcessPool if a worker died
                    del in_flight[fut]
                    yield result
        except BrokenProcessPool:
            suspects = list(in_flight.values())
            log.warning("a worker process died; retrying %d files one by one", len(suspects))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for task in suspects:
            with _pool(1, scoring) as alone:
                try:
                    yield alone.submit(_score_task, task.to_dict()).result()
                except BrokenProcessPool:
                    yield task.task_id, _crash_row(task)
        suspects = []
