"""The rating service without HTTP: the indexed archive, each rater's session and store, and
caches of what the page is shown.

Rendering is the slow part (a 12 MP photo takes a few hundred milliseconds to decode and re-encode,
a phone video a second or more to turn into frames). The page asks for the next items ahead of the
rater, and this class keeps the results in bounded caches, decoding each video once even when the
page's prefetch and the rater's click ask for it at the same moment.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mottling.errors import InputError, MottlingError
from mottling.rate.answers import answer_id_of, photo_record, video_record
from mottling.rate.archive import Archive, MediaItem, index_archive, read_bytes
from mottling.rate.media import RenderLimits, VideoFrames, decode_frames, render_photo
from mottling.rate.session import RaterSession, check_rater_name
from mottling.rate.store import AnswerStore

log = logging.getLogger(__name__)


class NotFound(MottlingError):
    http_status = 404


@dataclass(frozen=True)
class RateConfig:
    archives: tuple[str, ...]
    out_dir: Path
    rater: str | None = None          # fixed (``mottling rate --rater``) or chosen on the page
    seed: int | None = None
    limits: RenderLimits = field(default_factory=RenderLimits)
    photo_cache_bytes: int = 96 * 2**20
    video_cache_bytes: int = 384 * 2**20


class _LRU:
    """A byte-bounded least-recently-used cache."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: str, value: Any, size: int) -> None:
        with self._lock:
            if key in self._items:
                self.used -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self.used += size
            while self.used > self.budget and len(self._items) > 1:
                _, (_, s) = self._items.popitem(last=False)
                self.used -= s


class RateService:
    def __init__(self, config: RateConfig, archive: Archive | None = None) -> None:
        self.config = config
        self.archive = archive or index_archive(config.archives)
        self.out_dir = Path(config.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._raters: dict[str, tuple[RaterSession, AnswerStore]] = {}
        self._lock = threading.Lock()
        self._photos = _LRU(config.photo_cache_bytes)
        self._videos = _LRU(config.video_cache_bytes)
        self._decoding: dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rate-decode")
        if config.rater:
            self.rater(config.rater)   # creates the session file and the CSV at start

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for _, store in self._raters.values():
            store.close()

    # -- raters ---------------------------------------------------------------------------------
    def rater(self, name: str | None) -> tuple[RaterSession, AnswerStore]:
        if self.config.rater and name and name != self.config.rater:
            raise InputError(f"this server rates as {self.config.rater} only")
        name = check_rater_name(name or self.config.rater or "")
        with self._lock:
            if name not in self._raters:
                seed = self.config.seed if name == self.config.rater else None
                session = RaterSession.open(self.archive, self.out_dir, name, seed)
                store = AnswerStore(self.out_dir, name, session.seed)
                store.write_csv(session.order_of())
                self._raters[name] = (session, store)
            return self._raters[name]

    def session_view(self, name: str | None) -> dict[str, Any]:
        """What the page needs to start or resume: ids in order and this rater's own answers."""
        session, store = self.rater(name)
        latest = store.latest()

        def entry(item: MediaItem) -> dict[str, Any]:
            ans = latest.get(item.path)
            return {"id": session.item_id(item.path), "answer": _public(ans)}

        return {"rater": session.rater, "seed": session.seed,
                "photos": [entry(i) for i in session.photos],
                "videos": [entry(i) for i in session.videos]}

    # -- media ------------------------------------------------------------------------------------
    def _item(self, session: RaterSession, item_id: str, kind: str) -> MediaItem:
        item = session.item(item_id)
        if item is None or item.kind != kind:
            raise NotFound(f"no {kind} with id {item_id[:40]!r} in this session")
        return item

    def photo(self, name: str | None, item_id: str) -> bytes:
        session, _ = self.rater(name)
        item = self._item(session, item_id, "photo")
        cached = self._photos.get(item.path)
        if cached is None:
            data = read_bytes(item.source, self.config.limits.max_photo_bytes)
            cached = render_photo(data, self.config.limits)
            self._photos.put(item.path, cached, len(cached))
        return cached

    def _frames_future(self, item: MediaItem) -> Future | None:
        """The decode in progress or a new one; None when it finished since the cache was read."""
        with self._lock:
            if self._videos.get(item.path) is not None:
                return None
            fut = self._decoding.get(item.path)
            if fut is None:
                fut = self._pool.submit(self._decode, item)
                self._decoding[item.path] = fut
            return fut

    def _decode(self, item: MediaItem) -> VideoFrames:
        try:
            data = read_bytes(item.source, self.config.limits.max_video_bytes)
            frames = decode_frames(data, self.config.limits)
            self._videos.put(item.path, frames, frames.nbytes)
            return frames
        finally:
            with self._lock:
                self._decoding.pop(item.path, None)

    def frames(self, item: MediaItem) -> VideoFrames:
        while True:
            cached = self._videos.get(item.path)
            if cached is not None:
                return cached
            fut = self._frames_future(item)
            if fut is not None:
                return fut.result()

    def video(self, name: str | None, item_id: str) -> dict[str, Any]:
        session, _ = self.rater(name)
        frames = self.frames(self._item(session, item_id, "video"))
        return {"id": item_id, "frames": len(frames.t_s), "t_s": list(frames.t_s),
                "width": frames.width, "height": frames.height}

    def video_frame(self, name: str | None, item_id: str, index: int) -> bytes:
        session, _ = self.rater(name)
        frames = self.frames(self._item(session, item_id, "video"))
        if not 0 <= index < len(frames.jpegs):
            raise NotFound(f"the video has frames 0-{len(frames.jpegs) - 1}")
        return frames.jpegs[index]

    # -- answers ----------------------------------------------------------------------------------
    def answer(self, name: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        session, store = self.rater(name)
        answer_id = answer_id_of(payload)
        item = session.item(str(payload.get("id") or ""))
        if item is None:
            raise NotFound("no such item in this session")
        if item.kind == "photo":
            record = photo_record(payload)
        else:
            try:
                t_s: tuple[float, ...] = self.frames(item).t_s
            except MottlingError:
                if payload.get("unusable") is not True:
                    raise
                t_s = ()     # a video that cannot be decoded can still be called unusable
            record = video_record(payload, t_s)
        added = store.add(answer_id, item.path, item.kind, record)
        store.write_csv(session.order_of())
        return {"saved": True, "new": added, "answer": _public(store.latest().get(item.path)),
                "answers_stored": store.count()}


_PUBLIC = ("score", "unreadable", "site", "press_frame", "release_frame", "refill_frame",
           "crt_s", "unusable", "reason", "revisions")


def _public(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The answer as the page shows it back to the same rater: never the path."""
    if record is None:
        return None
    return {k: record.get(k) for k in _PUBLIC if k in record}


def open_service(archives: Sequence[str], out_dir: str | Path, rater: str | None = None,
                 seed: int | None = None) -> RateService:
    return RateService(RateConfig(archives=tuple(str(a) for a in archives), out_dir=Path(out_dir),
                                  rater=rater, seed=seed))
