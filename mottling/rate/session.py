"""One rater's view of an archive: a seeded order and opaque ids that reveal no file name.

The order is a shuffle drawn from the rater's seed (a seeded hash of each path), so two raters do
not see the photos in the same order (no shared drift, no anchoring on a neighbour), the same rater
gets the same order back after a restart, and files added to the archive later do not reorder the
rest. Seed and a random secret are written once to
``OUT/<rater>.session.json``; each item's id is an HMAC of its path under that secret, so ids are
stable for the rater across restarts and server processes but say nothing about the file and
differ between raters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mottling.errors import InputError
from mottling.rate.archive import Archive, MediaItem

RATER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def check_rater_name(name: str) -> str:
    if not RATER_NAME.match(name or ""):
        raise InputError("a rater name is 1-40 letters, digits, '.', '_' or '-' (it names the "
                         f"rater's files), got {name[:60]!r}")
    return name


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_or_create_state(out_dir: Path, rater: str, seed: int | None) -> dict:
    """The rater's seed and secret: read back when the rater has a session, else drawn and saved.

    A ``seed`` that contradicts the recorded one is refused: changing the order halfway would
    silently mix two orders in one rater's file.
    """
    path = out_dir / f"{rater}.session.json"
    if path.is_file():
        state = json.loads(path.read_text(encoding="utf-8"))
        if seed is not None and int(seed) != int(state["seed"]):
            raise InputError(f"rater {rater} already rates with seed {state['seed']} "
                             f"(recorded in {path}); drop --seed or use another --out")
        return state
    state = {"rater": rater,
             "seed": int(seed) if seed is not None else secrets.randbelow(2**31),
             "secret": secrets.token_hex(16),
             "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "order": "photos and videos each sorted by sha256(f'{seed}:{path}')"}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(path, state)
    return state


def shuffle_key(seed: int, path: str) -> bytes:
    """Sorting by a seeded hash of the path shuffles, and files added to the archive later fall
    in among the others without reordering what the rater has already been shown."""
    return hashlib.sha256(f"{seed}:{path}".encode("utf-8")).digest()


@dataclass
class RaterSession:
    rater: str
    seed: int
    secret: bytes
    photos: list[MediaItem]       # in this rater's order
    videos: list[MediaItem]

    @classmethod
    def open(cls, archive: Archive, out_dir: Path, rater: str,
             seed: int | None = None) -> "RaterSession":
        check_rater_name(rater)
        state = load_or_create_state(out_dir, rater, seed)
        s = int(state["seed"])
        session = cls(rater=rater, seed=s, secret=bytes.fromhex(state["secret"]),
                      photos=sorted(archive.photos, key=lambda i: shuffle_key(s, i.path)),
                      videos=sorted(archive.videos, key=lambda i: shuffle_key(s, i.path)))
        session._ids = {session.item_id(i.path): i for i in (*session.photos, *session.videos)}
        return session

    def item_id(self, path: str) -> str:
        return hmac.new(self.secret, path.encode("utf-8"), hashlib.sha256).hexdigest()[:20]

    def item(self, item_id: str) -> MediaItem | None:
        return self._ids.get(item_id)

    def order_of(self) -> dict[str, int]:
        """path -> position (1-based) in this rater's order of its kind."""
        out = {i.path: k + 1 for k, i in enumerate(self.photos)}
        out.update({i.path: k + 1 for k, i in enumerate(self.videos)})
        return out
