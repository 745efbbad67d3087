"""The media of a rating archive: which files are photos, which are videos, and how to read them.

An archive is one or more folders or zip files (a single photo or video works too). Files are found
by ``mottling.batch.inputs.discover`` and told apart by their first bytes (``mottling.media``), never
by their names. Every item is known by its path *inside* the archive (``trial/centre_1/p.jpg``,
``trial.zip!/p.jpg``): that is the only path a rater file ever holds. A symlink that leads out of
its folder, or a zip member named ``../x``, is skipped rather than read, so the server can never be
made to serve a file from outside the archive.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence

from mottling.batch.inputs import ZIP_SEP, InputItem, discover, recognise
from mottling.errors import InputError
from mottling.media import HEAD_BYTES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaItem:
    """One photo or video of the archive. ``path`` is what rater files hold; ``source`` reads it."""

    path: str
    kind: str          # "photo" | "video"
    format: str        # "jpeg", "png", "mp4", ...
    source: InputItem


@dataclass
class Archive:
    photos: list[MediaItem] = field(default_factory=list)
    videos: list[MediaItem] = field(default_factory=list)
    # path -> why it is not offered to the rater (not a photo or video, a link leading out, ...)
    skipped: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)   # the archives' own names, for the record

    def by_path(self) -> dict[str, MediaItem]:
        return {i.path: i for i in (*self.photos, *self.videos)}


def _inside(path: str, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _unsafe_member(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.startswith("/") or ".." in parts or (bool(parts) and ":" in parts[0])


def read_head(item: InputItem, n: int = HEAD_BYTES) -> bytes:
    if item.member is None:
        with open(item.location, "rb") as fh:
            return fh.read(n)
    with zipfile.ZipFile(item.location) as zf, zf.open(item.member) as fh:
        return fh.read(n)


def read_bytes(item: InputItem, max_bytes: int) -> bytes:
    """The whole file, refusing one larger than ``max_bytes`` before reading it."""
    try:
        return _read_bytes(item, max_bytes)
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError) as err:
        # moved, deleted or changed since the archive was indexed
        raise InputError(f"the file can no longer be read ({type(err).__name__})") from None


def _read_bytes(item: InputItem, max_bytes: int) -> bytes:
    if item.member is None:
        size = os.path.getsize(item.location)
        if size > max_bytes:
            raise InputError(f"the file is {size / 2**20:.0f} MiB; the limit is "
                             f"{max_bytes / 2**20:.0f} MiB")
        with open(item.location, "rb") as fh:
            return fh.read()
    with zipfile.ZipFile(item.location) as zf:
        info = zf.getinfo(item.member)
        if info.file_size > max_bytes:
            raise InputError(f"the file is {info.file_size / 2**20:.0f} MiB; the limit is "
                             f"{max_bytes / 2**20:.0f} MiB")
        with zf.open(info) as fh:
            data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError("the zip member is larger than it claims")
    return data


def index_archive(inputs: Sequence[str | os.PathLike]) -> Archive:
    """Find and sniff every file under ``inputs``; raises ``InputError`` when one names nothing."""
    archive = Archive()
    seen: set[str] = set()
    for raw in inputs:
        given = Path(raw).expanduser()
        if not given.exists():
            raise InputError(f"ARCHIVE not found: {raw}")
        given = given.resolve()
        if given.name in archive.names:
            # paths start with the archive's name: two archives of one name would mix their files
            raise InputError(f"two archives are named {given.name!r}; rename or zip one of them")
        archive.names.append(given.name)
        # Shown relative to the archive's parent, so every path starts with the archive's own name.
        items = discover([given], root=given.parent)
        root = given if given.is_dir() else given.parent
        for src in items:
            path = src.path
            if path in seen:
                continue
            seen.add(path)
            if src.problem is not None:   # a FIFO, device, link or unsafe member: never opened
                archive.skipped[path] = src.problem
                continue
            if src.member is None and not _inside(src.location, root):
                archive.skipped[path] = "a link that leads outside the archive"
                continue
            if src.member is not None and _unsafe_member(src.member):
                archive.skipped[path] = "a zip member named outside the zip"
                continue
            if src.member is None and src.location.lower().endswith(".zip"):
                archive.skipped[path] = "a zip file that cannot be listed"
                continue
            try:
                head = read_head(src)
            except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as err:
                archive.skipped[path] = f"cannot be read ({type(err).__name__})"
                continue
            kind, fmt = recognise(head, path)
            if kind == "photo":
                archive.photos.append(MediaItem(path, kind, fmt or "", src))
            elif kind == "video":
                archive.videos.append(MediaItem(path, kind, fmt or "", src))
            else:
                archive.skipped[path] = "not a photo or video"
    if not archive.photos and not archive.videos:
        raise InputError("the archive holds no photo or video to rate: "
                         + ", ".join(str(i) for i in inputs))
    log.info("archive: %d photos, %d videos, %d skipped", len(archive.photos),
             len(archive.videos), len(archive.skipped))
    return archive


__all__ = ["Archive", "MediaItem", "ZIP_SEP", "index_archive", "read_bytes", "read_head"]
