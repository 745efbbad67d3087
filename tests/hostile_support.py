"""Shared by the hostile-input tests: files that name other files, and a watch that sees any open.

``OpenWatch`` uses Linux inotify, so it sees an open by anyone in this process, FFmpeg's C code
included, which a patched ``builtins.open`` would miss. Each test first proves the watch works by
opening a watched file itself.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading
from pathlib import Path

import pytest

IN_ACCESS, IN_OPEN = 0x1, 0x20


def reference_files(target: str) -> dict[str, bytes]:
    """Inputs in formats whose readers follow a name written inside them."""
    absolute = str(Path(target).resolve())
    return {
        "ffconcat": f"ffconcat version 1.0\nfile {target}\n".encode(),
        "ffconcat_absolute": f"ffconcat version 1.0\nfile '{absolute}'\n".encode(),
        "hls": (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{target}\n"
                "#EXT-X-ENDLIST\n").encode(),
        "hls_file_url": (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nfile://{absolute}\n"
                         "#EXT-X-ENDLIST\n").encode(),
        "ffmetadata_like": f";FFMETADATA1\nfile={target}\n".encode(),
        "concat_protocol": f"concat:{target}|{target}".encode(),
        "subfile_url": f"subfile,,start,0,end,0,,:{target}".encode(),
        "short": f"file {target}".encode()[:12],
    }


class OpenWatch:
    """Records every open or read of the files in ``folder`` while it is active."""

    def __init__(self, folder: Path) -> None:
        if not sys.platform.startswith("linux"):
            pytest.skip("the open watch uses Linux inotify")
        self.folder = folder
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            pytest.skip("inotify is not available here")
        if self._libc.inotify_add_watch(self._fd, str(folder).encode(), IN_OPEN | IN_ACCESS) < 0:
            pytest.skip("cannot watch the folder with inotify")

    def events(self) -> list[str]:
        """Names of the files in the folder opened or read since the last call."""
        names = []
        while True:
            try:
                buf = os.read(self._fd, 65536)
            except BlockingIOError:
                return names
            offset = 0
            while offset < len(buf):
                _, mask, _, length = struct.unpack_from("iIII", buf, offset)
                name = buf[offset + 16: offset + 16 + length].rstrip(b"\0").decode()
                if name:   # an empty name is the folder itself being listed (Python's imports do)
                    names.append(name)
                offset += 16 + length

    def prove(self, sentinel: Path) -> None:
        """The watch sees an open of ``sentinel`` (so a silent watch means a real absence)."""
        self.events()
        sentinel.open("rb").close()
        assert sentinel.name in self.events(), "the inotify watch does not see opens here"

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> "OpenWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_bounded(work, limit_s: float):
    """Run ``work`` in a daemon thread; a hang fails the test instead of blocking the suite."""
    box: dict = {}

    def target():
        try:
            box["value"] = work()
        except BaseException as err:  # noqa: BLE001 -- re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"hung for more than {limit_s} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")
