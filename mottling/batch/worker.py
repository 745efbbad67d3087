"""Score one file into one row. Never raises: whatever goes wrong becomes the row's ``error``.

A ``Scorer`` lives once per worker process (or Ray actor) and loads the model once, on creation.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import time
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import mottling
from mottling.batch.inputs import HEAD_BYTES, InputItem, not_a_file, recognise
from mottling.batch.rows import empty_row, fill_crt, fill_photo
from mottling.errors import MottlingError

log = logging.getLogger(__name__)

UNSUPPORTED = ("unsupported file: the content is neither a photo (JPEG, PNG, WebP, HEIC) nor a "
               "video (MP4, MOV, WebM)")


@dataclass(frozen=True)
class Task:
    """One file of the plan, with the body site the plan resolved for it (videos only)."""

    task_id: int
    item: InputItem
    site: str | None = None
    site_error: str | None = None   # why no site could be found, shown if the file is a video

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "item": self.item.to_dict(), "site": self.site,
                "site_error": self.site_error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Task":
        return cls(int(d["task_id"]), InputItem.from_dict(d["item"]), d.get("site"),
                   d.get("site_error"))


@dataclass(frozen=True)
class ScoringConfig:
    """What every worker needs to score a file; plain values so it pickles and travels to Ray."""

    model_path: str | None = None
    max_file_bytes: int = 1 << 30
    intra_op_threads: int | None = None   # ONNX Runtime threads per worker (1 when many workers)
    slow_down_s: float = 0.0     # testing aid: sleep this long per file (to interrupt a run)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class _ReadError(Exception):
    """A file that cannot be read; ``str`` is the row's message."""


class Scorer:
    def __init__(self, config: ScoringConfig, load: bool = True, model=None):
        self.config = config
        self._model = model
        self._model_error: str | None = None
        self._zips: dict[str, zipfile.ZipFile] = {}
        if load:
            self.model()

    # -- model --------------------------------------------------------------------------------
    def model(self):
        """The model, loaded on first use and kept; a load failure is remembered, not retried."""
        if self._model is None and self._model_error is None:
            try:
                from mottling.photo.model import load_model

                self._model = load_model(self.config.model_path,
                                         intra_op_threads=self.config.intra_op_threads)
            except MottlingError as err:
                self._model_error = f"model unavailable: {err}"
            except Exception as err:  # noqa: BLE001 -- an ImportError or an ONNX Runtime failure
                self._model_error = f"model unavailable: {type(err).__name__}: {err}"
                log.warning("model load failed", exc_info=True)
        if self._model is None:
            raise _ModelUnavailable(self._model_error)
        return self._model

    # -- reading ------------------------------------------------------------------------------
    def _zip(self, location: str) -> zipfile.ZipFile:
        zf = self._zips.get(location)
        if zf is None:
            if len(self._zips) >= 4:
                self._zips.pop(next(iter(self._zips))).close()
            zf = self._zips[location] = zipfile.ZipFile(location)
        return zf

    def _read(self, item: InputItem) -> bytes:
        if item.problem is not None:          # decided at discovery, without opening it
            raise _ReadError(item.problem)
        limit = self.config.max_file_bytes
        try:
            if item.member is not None:
                info = self._zip(item.location).getinfo(item.member)
                if info.file_size > limit:
                    raise _ReadError(f"file too large: {_mib(info.file_size)} (limit {_mib(limit)})")
                return self._zip(item.location).read(item.member)
            return _read_regular_file(item.location, limit)
        except FileNotFoundError:
            raise _ReadError("cannot read the file: it no longer exists") from None
        except IsADirectoryError:
            raise _ReadError("cannot read the file: it is a folder, not a file") from None
        except PermissionError:
            raise _ReadError("cannot read the file: permission denied") from None
        except (zipfile.BadZipFile, KeyError, EOFError, ValueError, RuntimeError) as err:
            # RuntimeError: zipfile's "encrypted, password required" and unsupported methods
            raise _ReadError(f"cannot read the file from its zip archive: {err}") from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise _ReadError("not read: a symbolic link (links are not followed)") from None
            raise _ReadError(f"cannot read the file: {err.strerror or err}") from None

    # -- scoring ------------------------------------------------------------------------------
    def score(self, task: Task) -> dict[str, Any]:
        """One row for ``task``; every failure is caught here and described in ``error``."""
        item = task.item
        row = empty_row(item.path)
        row["mottling_version"] = mottling.__version__
        try:
            if self.config.slow_down_s:
                time.sleep(self.config.slow_down_s)
            self._score_into(row, task)
        except (_ReadError, _ModelUnavailable) as err:
            row["status"], row["error"] = "error", str(err)
        except MottlingError as err:          # every bad input raises one of these
            row["status"], row["error"] = "error", str(err)
        except Exception as err:  # noqa: BLE001 -- one broken file must not end the run
            log.warning("unexpected failure on %s: %r", item.path, err)
            log.debug("traceback", exc_info=True)
            row["status"], row["error"] = "error", f"internal error: {type(err).__name__}: {err}"
        row["scored_utc"] = utc_now()
        return row

    def _score_into(self, row: dict[str, Any], task: Task) -> None:
        item = task.item
        data = self._read(item)
        row["input_bytes"] = len(data)
        row["input_sha256"] = hashlib.sha256(data).hexdigest()
        kind, fmt = recognise(data[:HEAD_BYTES], item.member or item.location)
        row["kind"], row["format"] = kind, fmt
        if not data:
            raise _ReadError("empty file (0 bytes)")
        if kind == "photo":
            self._score_photo(row, data, item.path)
        elif kind == "video":
            self._score_video(row, data, task)
        elif item.member is None and (data[:4] == b"PK\x03\x04"
                                      or item.location.lower().endswith(".zip")):
            raise _ReadError(f"not a readable zip archive: {_zip_problem(data)}")
        else:
            raise _ReadError(UNSUPPORTED)

    def _score_photo(self, row: dict[str, Any], data: bytes, path: str) -> None:
        from mottling.photo.decode import load_photo

        model = self.model()
        row["model_version"], row["model_sha256"] = model.version, model.sha256
        image = load_photo(data, model.input_size).image
        (result,) = model.predict([image], paths=[path])
        fill_photo(row, result.to_dict())
        row["status"] = "ok"

    def _score_video(self, row: dict[str, Any], data: bytes, task: Task) -> None:
        if task.site is None:
            raise _ReadError(task.site_error or "no body site for this video: give --site, "
                             "--site-from-path or a --manifest with a site column")
        row["site"] = task.site
        try:
            from mottling.crt import measure_crt
        except ImportError as err:
            raise _ReadError(f"CRT measurement is not available in this install: {err}") from None
        result = measure_crt(data, site=task.site, path=task.item.path)
        fill_crt(row, result.to_dict())

    def close(self) -> None:
        for zf in self._zips.values():
            zf.close()
        self._zips.clear()


class _ModelUnavailable(Exception):
    pass


def _read_regular_file(location: str, limit: int) -> bytes:
    """The bytes of a regular file, checked on the open handle itself.

    ``O_NOFOLLOW`` refuses a link put in the file's place since discovery, ``O_NONBLOCK`` keeps a
    FIFO from blocking the open, and ``fstat`` on the handle refuses anything but a regular file
    before a byte is read (a device such as ``/dev/zero`` would otherwise be read to the limit).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(location, flags)
    try:
        st = os.fstat(fd)
        problem = not_a_file(st.st_mode)
        if problem is not None:
            raise _ReadError(problem)
        if st.st_size > limit:
            raise _ReadError(f"file too large: {_mib(st.st_size)} (limit {_mib(limit)})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _ReadError(f"file too large: more than {_mib(limit)}")
    return data


def _zip_problem(data: bytes) -> str:
    try:
        zipfile.ZipFile(io.BytesIO(data)).testzip()
    except Exception as err:  # noqa: BLE001 -- only the message is wanted
        return str(err) or type(err).__name__
    return "unknown problem"
