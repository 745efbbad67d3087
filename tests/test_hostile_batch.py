"""``mottling batch`` on hostile archives: every filesystem object kind and every unsafe zip entry
is exactly one error row, quickly, and nothing outside the INPUT is opened through a name in it."""

from __future__ import annotations

import io
import os
import socket
import stat
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mottling.batch.inputs import discover
from mottling.batch.runner import BatchConfig, run_batch
from tests.batch_support import tiny_model
from tests.hostile_support import OpenWatch, run_bounded


def _jpeg() -> bytes:
    from mottling.synth.images import render_photo

    buf = io.BytesIO()
    render_photo(seed=4, score=2, skin_tone=3, size=64).image.save(buf, format="JPEG")
    return buf.getvalue()


def _zip_with_unsafe_members(path: Path, jpeg: bytes) -> dict[str, str]:
    """Members that must be refused unread, with the words of their error; and one good one."""
    expected = {}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("good/photo.jpg", jpeg)
        for name in ("evil/../../x.jpg", "../up.jpg", "/etc/abs.jpg"):
            zf.writestr(name, jpeg)
            expected[name] = "unsafe name"
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        expected["link.jpg"] = "symbolic link"
        zf.writestr("locked.jpg", jpeg)
        expected["locked.jpg"] = "encrypted"
    _mark_encrypted(path, b"locked.jpg")
    return expected


def _mark_encrypted(path: Path, name: bytes) -> None:
    """Set the 'encrypted' flag of one member in its local and central headers (zipfile cannot
    write encrypted members)."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at:start + name_at + len(name)] == name:
                data[start + flag_at] |= 0x1
            start += 4
    path.write_bytes(bytes(data))


@pytest.fixture()
def hostile_tree(tmp_path):
    """An INPUT folder holding one of every kind of filesystem object, and a watched folder
    outside it that links point into."""
    jpeg = _jpeg()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg)
    (outside / "inner").mkdir()
    (outside / "inner" / "deep.jpg").write_bytes(jpeg)
    with zipfile.ZipFile(outside / "other.zip", "w") as zf:
        zf.writestr("p.jpg", jpeg)

    root = tmp_path / "trial"
    root.mkdir()
    (root / "ok.jpg").write_bytes(jpeg)
    expected = {"trial/ok.jpg": None}
    os.mkfifo(root / "pipe.jpg")
    expected["trial/pipe.jpg"] = "FIFO"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(root / "sock.jpg"))
    expected["trial/sock.jpg"] = "socket"
    links = {"zero.jpg": "/dev/zero", "null.mp4": "/dev/null", "secret.jpg": outside / "secret.jpg",
             "other.zip": outside / "other.zip", "linked_folder": outside / "inner",
             "dangling.jpg": tmp_path / "nothing.jpg", "loop.jpg": root / "loop.jpg"}
    for name, target in links.items():
        os.symlink(target, root / name)
        expected[f"trial/{name}"] = "symbolic link"
    (root / "sub").mkdir()
    os.symlink("../ok.jpg", root / "sub" / "relative.jpg")     # even inside the folder: not followed
    expected["trial/sub/relative.jpg"] = "symbolic link"
    for name, words in _zip_with_unsafe_members(root / "bundle.zip", jpeg).items():
        expected[f"trial/bundle.zip!/{name}"] = words
    expected["trial/bundle.zip!/good/photo.jpg"] = None
    try:
        yield root, outside, expected
    finally:
        server.close()


def _run_with_watchdog(config: BatchConfig, limit_s: float):
    """run_batch in a thread: a hang fails the test instead of blocking it for ever."""
    started = time.monotonic()
    summary = run_bounded(lambda: run_batch(config, progress=False), limit_s)
    return summary, time.monotonic() - started


def test_every_filesystem_object_kind_is_one_clear_row(hostile_tree, tmp_path):
    root, outside, expected = hostile_tree
    model = tiny_model(tmp_path / "model")
    out = tmp_path / "results.parquet"
    with OpenWatch(outside) as watch, OpenWatch(outside / "inner") as inner:
        watch.prove(outside / "secret.jpg")
        inner.prove(outside / "inner" / "deep.jpg")
        summary, seconds = _run_with_watchdog(
            BatchConfig(inputs=(str(root),), out=str(out), model=str(model), site="knee"), 120)
        opened = watch.events() + inner.events()
    rows = {r["path"]: r for r in pq.read_table(out).to_pylist()}
    assert sorted(rows) == sorted(expected)            # one row per entry: none lost, none extra
    for path, words in expected.items():
        row = rows[path]
        if words is None:
            assert row["status"] == "ok", row
        else:
            assert row["status"] == "error" and words in row["error"], (path, row["error"])
            assert row["input_bytes"] is None, (path, "the entry was read")
    assert opened == [], f"files outside the INPUT were opened: {opened}"
    assert summary.n_files == len(expected)


def test_named_special_files_are_error_rows_not_hangs(tmp_path):
    """Special files named directly as INPUT (a FIFO, a link to /dev/zero) are refused on the
    open handle, before a byte is read."""
    os.mkfifo(tmp_path / "pipe.jpg")
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    model = tiny_model(tmp_path / "model")
    out = tmp_path / "r.parquet"
    _run_with_watchdog(BatchConfig(inputs=(str(tmp_path / "pipe.jpg"), str(tmp_path / "zero.jpg")),
                                   out=str(out), model=str(model)), 120)
    rows = {Path(r["path"]).name: r for r in pq.read_table(out).to_pylist()}
    assert "FIFO" in rows["pipe.jpg"]["error"]
    assert "character device" in rows["zero.jpg"]["error"]


def test_discovery_marks_unsafe_entries_without_opening_them(hostile_tree):
    root, _, expected = hostile_tree
    items = {i.path: i for i in discover([str(root)], root=root.parent)}
    assert set(items) == set(expected)
    assert [p for p, i in items.items() if i.problem is None] == ["trial/bundle.zip!/good/photo.jpg",
                                                                    "trial/ok.jpg"]


def test_the_rater_index_skips_the_same_entries_without_opening_them(hostile_tree):
    """The rater page indexes archives with the same discovery: a FIFO must not hang it either."""
    from mottling.rate.archive import index_archive

    root, outside, expected = hostile_tree
    with OpenWatch(outside) as watch:
        watch.prove(outside / "secret.jpg")
        archive = run_bounded(lambda: index_archive([root]), 60)
        assert watch.events() == []
    offered = sorted(i.path for i in (*archive.photos, *archive.videos))
    assert offered == ["trial/bundle.zip!/good/photo.jpg", "trial/ok.jpg"]
    assert set(archive.skipped) == {p for p, words in expected.items() if words is not None}


def test_odd_file_names_are_rows_not_a_crash(tmp_path):
    """Names that are not UTF-8 (any byte string is a valid Linux name), hold a newline or are very
    long each get their row; a zip whose flagged-UTF-8 names are not UTF-8 is one error row."""
    jpeg = _jpeg()
    folder = tmp_path / "odd"
    folder.mkdir()
    os.makedirs(os.fsencode(folder), exist_ok=True)
    with open(os.fsencode(folder) + b"/bad\xff\xfename.jpg", "wb") as fh:
        fh.write(jpeg)
    (folder / "new\nline.jpg").write_bytes(jpeg)
    (folder / ("a" * 250 + ".jpg")).write_bytes(jpeg)
    with zipfile.ZipFile(folder / "names.zip", "w") as zf:
        zf.writestr("placeholder_name.jpg", jpeg)
    data = bytearray((folder / "names.zip").read_bytes())
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = data.find(signature)
        data[at + flag_at + 1] |= 0x08                      # bit 11: the name is UTF-8...
        data[at + name_at:at + name_at + 4] = b"\xff\xfe\xfd\xfc"   # ...but it is not
    (folder / "names.zip").write_bytes(bytes(data))
    out = tmp_path / "r.parquet"
    summary, _ = _run_with_watchdog(BatchConfig(inputs=(str(folder),), out=str(out),
                                                model=str(tiny_model(tmp_path / "model"))), 120)
    rows = {r["path"]: r for r in pq.read_table(out).to_pylist()}
    assert summary.n_files == 4 == len(rows)
    assert rows["odd/bad\\xff\\xfename.jpg"]["status"] == "ok"
    assert rows["odd/new\nline.jpg"]["status"] == "ok" and rows["odd/" + "a" * 250 + ".jpg"]["status"] == "ok"
    assert rows["odd/names.zip"]["status"] == "error" and "zip" in rows["odd/names.zip"]["error"]
