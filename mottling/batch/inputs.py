"""Find the files a batch run must account for, and tell photos from videos by their bytes.

INPUT may be a folder (searched recursively), a zip file, a glob, a list file (``@paths.txt``, or
any ``.txt``/``.lst``/``.list`` file: one path per line, relative to the list's folder) or a single
file. Every file found becomes one ``InputItem``; nothing is filtered by extension, because a file
the runner cannot read must still come back as an error row, never vanish. Hidden files and folders
(``.DS_Store``, ``__MACOSX``, ``._*`` AppleDouble files) are the one exception: they are not part of
anyone's archive.

An archive is not trusted. Inside a folder or a glob, anything but a regular file or a folder
(a symbolic link, a FIFO, a socket, a device) and, inside a zip, a member whose name climbs out
(``..``, an absolute path), a member stored as a link and an encrypted member all become items
with a ``problem``: an error row decided here, without opening them. So a FIFO cannot hang the run,
a link to ``/dev/zero`` is never read and nothing outside the INPUT is reached through a name in it.
"""

from __future__ import annotations

import glob
import os
import stat
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from mottling.errors import InputError
from mottling.media import HEAD_BYTES, PHOTO_FORMATS, VIDEO_FORMATS, sniff_format

LIST_SUFFIXES = (".txt", ".lst", ".list")
ZIP_SEP = "!/"   # "archive.zip!/folder/photo.jpg": the member of a zip, as Java and GDAL spell it

_EXTENSION_FORMATS = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".png": "png", ".webp": "webp",
    ".heic": "heif", ".heif": "heif", ".hif": "heif", ".avif": "heif",
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".qt": "mov", ".webm": "webm", ".mkv": "webm",
}


def format_from_extension(name: str) -> str | None:
    return _EXTENSION_FORMATS.get(PurePosixPath(name).suffix.lower())


def kind_of_format(fmt: str | None) -> str:
    """"photo", "video" or "unknown"."""
    if fmt in PHOTO_FORMATS:
        return "photo"
    if fmt in VIDEO_FORMATS:
        return "video"
    return "unknown"


def recognise(head: bytes, name: str) -> tuple[str, str | None]:
    """(kind, format) from the content first; the extension only when the bytes say nothing.

    A truncated photo may be too short to carry its magic bytes: its extension then decides which
    decoder gets to explain what is wrong with it.
    """
    fmt = sniff_format(head)
    if fmt is None:
        fmt = format_from_extension(name)
    return kind_of_format(fmt), fmt


@dataclass(frozen=True)
class InputItem:
    """One file to account for. ``path`` is what the user sees; ``location`` is where to read it."""

    path: str                 # relative posix path shown in the results ("a/b.jpg", "c.zip!/d.jpg")
    location: str             # absolute path of the file, or of the zip holding it
    member: str | None = None  # name inside the zip
    size: int = -1            # bytes, as listed at discovery (-1: unknown)
    mtime_ns: int = 0         # for a zip member: its timestamp; lets a rerun notice a changed file
    problem: str | None = None  # why this entry is refused without being opened (its error row)

    def to_dict(self) -> dict:
        return {"path": self.path, "location": self.location, "member": self.member,
                "size": self.size, "mtime_ns": self.mtime_ns, "problem": self.problem}

    @classmethod
    def from_dict(cls, d: dict) -> "InputItem":
        member = d.get("member")
        problem = d.get("problem")
        return cls(path=str(d["path"]), location=str(d["location"]),
                   member=None if member is None or member != member else str(member),
                   size=int(d["size"]), mtime_ns=int(d["mtime_ns"]),
                   problem=None if problem is None or problem != problem else str(problem))


def _is_hidden(parts: Iterable[str]) -> bool:
    return any((p.startswith(".") and p not in (".", "..")) or p == "__MACOSX" for p in parts)


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def not_a_file(mode: int) -> str | None:
    """Why a filesystem object with this ``st_mode`` is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in _KINDS:
        if test(mode):
            if name == "a symbolic link":
                return "not read: a symbolic link inside the INPUT (links are not followed)"
            return f"not read: {name}, not a regular file"
    return "not read: not a regular file"


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member is refused without being read, or None."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/"):
        return "not read: an unsafe name in the archive ('..' or an absolute path)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "not read: a symbolic link stored in the archive (links are not followed)"
    if info.flag_bits & 0x1:
        return "not read: the member is encrypted"
    return None


def _real(path: Path) -> Path:
    """The path with links resolved; a link loop resolves to itself instead of raising."""
    return Path(os.path.realpath(path))


def shown_text(text: str) -> str:
    """A file name as it can be written to the table: bytes that are not UTF-8 (Python holds them
    as surrogates) become ``\\xff`` escapes instead of making Parquet and CSV refuse the row."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _display_path(path: Path, base: Path) -> str:
    """Relative to ``base`` when below it, else absolute."""
    try:
        return shown_text(path.relative_to(base).as_posix())
    except ValueError:
        return shown_text(path.as_posix())


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def _zip_items(zip_path: Path, shown: str) -> list[InputItem]:
    """The members of a zip, or the zip itself when it cannot be listed (it becomes an error row)."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError):  # a name not in UTF-8
        st = zip_path.stat()
        return [InputItem(shown, str(zip_path), None, st.st_size, st.st_mtime_ns)]
    items = []
    for info in infos:
        name = info.filename
        if _is_hidden(PurePosixPath(name).parts) or PurePosixPath(name).name.startswith("._"):
            continue
        y, mo, d, h, mi, s = info.date_time
        stamp = ((((y * 100 + mo) * 100 + d) * 100 + h) * 100 + mi) * 100 + s
        items.append(InputItem(f"{shown}{ZIP_SEP}{name}", str(zip_path), name, info.file_size,
                               stamp, _member_problem(info)))
    return items


def _file_items(path: Path, base: Path, inside: bool = False) -> list[InputItem]:
    """One file; ``inside`` a folder or glob, anything but a regular file is refused unopened."""
    shown = _display_path(path, base)
    try:
        st = path.lstat() if inside else path.stat()
    except OSError as err:
        return [InputItem(shown, str(path), None, -1, 0,
                          f"cannot read the file: {err.strerror or err}")]
    problem = not_a_file(st.st_mode)
    if problem is None and _is_zip(path):
        return _zip_items(path, shown)
    # A link the user named is read at its target (the reader never follows links itself).
    location = path if inside else Path(os.path.realpath(path))
    return [InputItem(shown, str(location), None, st.st_size, st.st_mtime_ns, problem)]


def _folder_items(folder: Path, skip: set[Path]) -> list[InputItem]:
    """Files below ``folder``, shown relative to its parent: ``trial/centre_1/p001.jpg``.

    Links are not followed (a linked folder is one refused item, not a silent gap) and a folder
    that cannot be listed is one error item too."""
    base = folder.resolve().parent
    folder = folder.resolve()
    items: list[InputItem] = []

    def unlistable(err: OSError) -> None:
        path = Path(err.filename or folder)
        items.append(InputItem(_display_path(path, base), str(path), None, -1, 0,
                               f"cannot list the folder: {err.strerror or err}"))

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False, onerror=unlistable):
        keep = []
        for d in sorted(dirnames):
            path = Path(dirpath, d)
            if _is_hidden([d]) or _real(path) in skip:
                continue
            if path.is_symlink():
                items.extend(_file_items(path, base, inside=True))   # one refused item
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if _is_hidden([name]):
                continue
            path = Path(dirpath, name)
            if _real(path) in skip:
                continue
            items.extend(_file_items(path, base, inside=True))
    return items


def _list_file_entries(list_file: Path) -> list[str]:
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the list file {list_file}: {err}") from None
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            entries.append(str(p if p.is_absolute() else list_file.parent / p))
    return entries


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_base(pattern: Path) -> Path:
    """The parent of the pattern's last folder without wildcards: files show below it."""
    fixed = []
    for part in pattern.parts:
        if _has_glob(part):
            break
        fixed.append(part)
    return Path(*fixed).parent if fixed else Path("/")


def discover(inputs: Sequence[str | os.PathLike], root: str | os.PathLike | None = None,
             skip: Iterable[str | os.PathLike] = ()) -> list[InputItem]:
    """Every file named by ``inputs``, sorted by shown path, each exactly once.

    Shown paths: a folder's files relative to the folder's parent (``trial/centre_1/p.jpg``), a
    zip's members after ``!/``, a glob's files like the folder it starts from, and single files
    relative to ``root`` (default: the working folder) when below it, else absolute.

    Raises ``InputError`` before any work starts when an INPUT names nothing (a missing path, a
    glob that matches nothing, an empty list file), so a typo never costs a long run.
    """
    root_path = Path(root or os.getcwd()).resolve()
    skip_paths = {Path(s).resolve() for s in skip}
    items: list[InputItem] = []
    missing: list[str] = []
    pending = [str(i) for i in inputs]
    if not pending:
        raise InputError("no INPUT given: name folders, zip files, globs or list files")
    while pending:
        raw = pending.pop(0)
        list_file = raw[1:] if raw.startswith("@") else None
        path = Path(list_file or raw).expanduser()
        if not path.is_absolute():
            path = root_path / path
        if list_file is not None or (path.is_file() and path.suffix.lower() in LIST_SUFFIXES):
            if not path.is_file():
                missing.append(f"{raw} (list file not found)")
                continue
            entries = _list_file_entries(path)
            if not entries:
                missing.append(f"{raw} (the list file names no paths)")
            pending[0:0] = entries
        elif path.is_dir():
            items.extend(_folder_items(path, skip_paths))
        elif path.exists() or path.is_symlink():
            # A file the user named is read even through a link; a dangling link is an error row.
            items.extend(_file_items(Path(os.path.abspath(path)), root_path))
        elif _has_glob(raw):
            matches = sorted(glob.glob(str(path), recursive=True))
            if not matches:
                missing.append(f"{raw} (the pattern matches no files)")
            base = _glob_base(path)
            for m in matches:
                mp = Path(os.path.abspath(m))        # not resolved: a matched link stays a link
                if _real(mp) in skip_paths or _is_hidden(mp.relative_to(base).parts):
                    continue
                items.extend(_folder_items(mp, skip_paths) if mp.is_dir() and not mp.is_symlink()
                             else _file_items(mp, base, inside=True))
        else:
            missing.append(f"{raw} (no such file or folder)")
    if missing:
        raise InputError("INPUT not found: " + "; ".join(missing))
    return _unique(items)


def _unique(items: list[InputItem]) -> list[InputItem]:
    """One item per file (the same file named twice is scored once); two different files that
    would show under the same path (two folders of the same name) show their absolute paths."""
    by_file: dict[tuple[str, str | None], InputItem] = {}
    for item in items:
        by_file.setdefault((item.location, item.member), item)
    shown = Counter(i.path for i in by_file.values())
    out = []
    for item in by_file.values():
        if shown[item.path] > 1:
            full = shown_text(item.location + (f"{ZIP_SEP}{item.member}" if item.member else ""))
            item = InputItem(full, item.location, item.member, item.size, item.mtime_ns, item.problem)
        out.append(item)
    return sorted(out, key=lambda i: i.path)
