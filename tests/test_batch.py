"""``mottling batch`` on a generated archive with broken files: every file accounted for, once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from mottling.batch import BatchConfig, run_batch
from mottling.batch.inputs import ZIP_SEP, InputItem, discover
from mottling.batch.rows import COLUMNS
from mottling.batch.worker import Scorer, ScoringConfig, Task
from mottling.cli import main
from tests.batch_support import (BROKEN_EXPECTED, make_archive, read_rows, row_differences,
                                 tiny_model)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    arch = make_archive(root, n_photos=6, n_videos=2)
    return {"root": root, "archive": arch, "model": tiny_model(root / "model"),
            "manifest": arch / "sites.csv"}


def _config(a, out: Path, **kw) -> BatchConfig:
    return BatchConfig(inputs=(str(a["archive"]),), out=str(out), model=str(a["model"]),
                       manifest=str(a["manifest"]), shard_size=4, **kw)


@pytest.fixture(scope="module")
def reference(archive):
    """One uninterrupted run in this process (one worker), with CSV."""
    out = archive["root"] / "ref" / "results.parquet"
    summary = run_batch(_config(archive, out, csv=True), progress=False)
    return {"summary": summary, "rows": read_rows(out), "out": out}


def test_every_file_becomes_exactly_one_row(archive, reference):
    rows = reference["rows"]
    on_disk = discover([archive["archive"]], skip=[archive["manifest"]])
    assert [r["path"] for r in rows] == [i.path for i in on_disk]
    assert len({r["path"] for r in rows}) == len(rows)
    assert all(r["status"] in ("ok", "rejected", "error") for r in rows)
    assert list(rows[0]) == list(COLUMNS)


def test_row_comparison_is_exact_except_for_crt_fits(reference):
    rows = reference["rows"]
    photo = next(i for i, r in enumerate(rows) if r["kind"] == "photo" and r["status"] == "ok")
    video = next(i for i, r in enumerate(rows) if r["kind"] == "video" and r["status"] == "ok")
    changed = [dict(r) for r in rows]
    changed[photo]["prob_0"] += 1e-12
    changed[video]["crt_s"] *= 1.01
    assert row_differences(rows, changed) == [f"{rows[photo]['path']}: prob_0 "
                                              f"{rows[photo]['prob_0']!r} != "
                                              f"{changed[photo]['prob_0']!r}"]
    changed[photo]["prob_0"] = rows[photo]["prob_0"]
    changed[video]["crt_s"] = rows[video]["crt_s"] + 0.5
    assert len(row_differences(rows, changed)) == 1


def test_rows_carry_results_and_provenance(archive, reference):
    card = json.loads(archive["model"].with_name("tiny-batch.card.json").read_text())
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in reference["rows"]}
    photos = [r for r in reference["rows"] if "/photos/photo_" in r["path"]]
    assert len(photos) == 6
    assert {r["format"] for r in photos} == {"png", "webp", "jpeg", "heif"}
    for r in photos:
        assert r["status"] == "ok" and r["kind"] == "photo" and r["error"] is None
        assert 0 <= r["score"] <= 5
        assert sum(r[f"prob_{k}"] for k in range(6)) == pytest.approx(1.0, abs=1e-6)
        assert r["model_sha256"] == card["sha256"] and r["model_version"] == "0.0.1"
        datetime.strptime(r["scored_utc"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert r["mottling_version"]
    one = photos[0]
    disk = next(archive["archive"].rglob(one["path"].rsplit("/", 1)[-1]))
    assert one["input_sha256"] == hashlib.sha256(disk.read_bytes()).hexdigest()
    assert one["input_bytes"] == disk.stat().st_size
    # recognised by content: a JPEG with a .dat extension, and a JPEG inside a zip
    assert by_name["no_extension_really_a_jpeg.dat"]["format"] == "jpeg"
    assert by_name["no_extension_really_a_jpeg.dat"]["status"] == "ok"
    assert by_name["gps_photo.jpg"]["status"] == "ok"
    assert ZIP_SEP in by_name["gps_photo.jpg"]["path"]


def test_videos_get_a_crt_with_the_site_from_the_manifest(reference):
    videos = [r for r in reference["rows"] if r["kind"] == "video" and "/finger/" in r["path"]]
    assert len(videos) == 2
    for r in videos:
        assert r["site"] == "finger" and r["threshold_s"] == 3.0, r
        assert r["status"] in ("ok", "rejected"), r["error"]
        if r["status"] == "ok":
            assert r["crt_s"] > 0 and r["crt_ci95_low"] <= r["crt_s"] <= r["crt_ci95_high"]
        else:
            assert r["reason"]
        assert r["model_sha256"] is None   # no model is involved in a CRT
    assert any(r["status"] == "ok" for r in videos)


@pytest.mark.parametrize("name, words", sorted(BROKEN_EXPECTED.items()))
def test_each_broken_file_is_an_error_row_with_a_clear_message(reference, name, words):
    (row,) = [r for r in reference["rows"] if r["path"].endswith(name)]
    assert row["status"] == "error"
    assert row["error"] and words in row["error"].lower()
    assert "Traceback" not in row["error"] and "internal error" not in row["error"]


def test_exif_and_gps_never_reach_the_outputs(reference):
    out = reference["out"]
    for path in (out, out.with_suffix(".csv"), out.with_name("results.config.json")):
        assert b"SECRETCAM" not in path.read_bytes()      # the camera make in the EXIF
    assert not [c for c in COLUMNS if "exif" in c or "gps" in c]


def test_progress_bar_only_when_asked_or_on_a_terminal(archive, tmp_path, capsys):
    photos = archive["archive"] / "photos"
    cfg = lambda name: BatchConfig(inputs=(str(photos),), out=str(tmp_path / name),  # noqa: E731
                                   model=str(archive["model"]))
    run_batch(cfg("quiet.parquet"))                 # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""
    run_batch(cfg("bar.parquet"), progress=True)
    err = capsys.readouterr().err
    assert "7/7" in err and "file/s" in err


def test_summary_counts_every_row(reference):
    s = reference["summary"]
    assert s.n_files == len(reference["rows"]) == sum(s.counts.values())
    assert s.n_errors == sum(r["status"] == "error" for r in reference["rows"])
    text = s.format()
    assert "photo" in text and "errors:" in text and "empty file" in text


def test_unreadable_files_become_error_rows(archive, tmp_path, monkeypatch):
    """Tests run as root, where chmod 000 blocks nothing: a file that vanishes after discovery, a
    folder where a file was listed, and a read refused with EACCES stand in for it."""
    import mottling.batch.worker as worker

    gone, folder, denied = (tmp_path / n for n in ("gone.jpg", "folder.jpg", "denied.jpg"))
    scorer = Scorer(ScoringConfig(model_path=str(archive["model"])))
    rows = {}
    for path in (gone, folder):
        rows[path.name] = scorer.score(Task(0, InputItem(path.name, str(path))))
    folder.mkdir()
    rows["folder.jpg"] = scorer.score(Task(0, InputItem("folder.jpg", str(folder))))

    def refuse(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(worker.os, "open", refuse)
    rows["denied.jpg"] = scorer.score(Task(0, InputItem("denied.jpg", str(denied))))
    assert "no longer exists" in rows["gone.jpg"]["error"]
    assert "a folder" in rows["folder.jpg"]["error"]
    assert "permission denied" in rows["denied.jpg"]["error"]
    assert {r["status"] for r in rows.values()} == {"error"}


def test_cli_exit_codes(archive, tmp_path, capsys):
    base = ["batch", "--model", str(archive["model"]), "--no-progress"]
    # broken files -> error rows -> exit 1
    assert main(base + [str(archive["archive"]), "--out", str(tmp_path / "all.parquet"),
                        "--manifest", str(archive["manifest"])]) == 1
    assert "errors:" in capsys.readouterr().out
    clean = archive["archive"] / "photos"
    assert main(base + [str(clean), "--out", str(tmp_path / "clean.parquet"), "--csv"]) == 0
    assert (tmp_path / "clean.csv").read_text().count("\n") == 1 + 7
    # a missing INPUT: one clear message, exit 2, and nothing written
    assert main(base + [str(clean), str(tmp_path / "nope"), "--out",
                        str(tmp_path / "none.parquet")]) == 2
    assert "INPUT not found" in capsys.readouterr().err
    assert not (tmp_path / "none.parquet").exists()
    assert not (tmp_path / "none.parquet.parts").exists()


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_kill_9_midway_then_rerun_gives_the_same_table(archive, reference, tmp_path):
    import psutil

    out = tmp_path / "results.parquet"
    cmd = [sys.executable, "-c", "import sys; from mottling.cli import main; sys.exit(main())",
           "batch", str(archive["archive"]), "--out",
           str(out), "--model", str(archive["model"]), "--manifest", str(archive["manifest"]),
           "--shard-size", "2", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # interrupted: 2 worker processes, slowed down so the kill lands midway
    proc = subprocess.Popen(cmd + ["--workers", "2", "--slow-down-s", "0.25"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out.with_name("results.parquet.parts")
    deadline = time.monotonic() + 60
    children: set[int] = set()
    try:
        while time.monotonic() < deadline:
            children |= set(_children(proc.pid))
            if len(list(parts.glob("shard-*.parquet"))) >= 2:
                break
            assert proc.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.02)
        children |= set(_children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finished = {p.name: p.stat().st_mtime_ns for p in parts.glob("shard-*.parquet")}
    n_shards = -(-len(reference["rows"]) // 2)
    assert 2 <= len(finished) < n_shards and not out.exists()
    # the orphaned workers notice their parent is gone and exit by themselves
    assert children, "expected worker processes"
    gone, alive = psutil.wait_procs([psutil.Process(c) for c in children if psutil.pid_exists(c)],
                                    timeout=10)
    assert not alive, f"workers left behind: {alive}"

    rerun = subprocess.run(cmd + ["--workers", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 1, rerun.stderr   # 1: the archive holds broken files
    assert f"{len(finished)} of {n_shards} shards were already done" in rerun.stdout
    for name, mtime in finished.items():          # finished shards were not redone
        assert (parts / name).stat().st_mtime_ns == mtime
    assert not row_differences(reference["rows"], read_rows(out))


CRASHER = '''
import os
import mottling.batch.worker as worker

_score = worker.Scorer.score


def score(self, task):
    if task.item.path.endswith("photo_002.jpg"):
        os._exit(139)        # what a segfault in a native decoder looks like from outside
    return _score(self, task)


worker.Scorer.score = score
'''


def test_a_worker_that_dies_costs_one_error_row_not_the_run(archive, reference, tmp_path,
                                                           monkeypatch):
    """Two worker processes, which load a sitecustomize that kills the process on one photo: that
    photo is an error row, and every other row equals the one-process reference."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASHER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), str(REPO)]))
    out = tmp_path / "results.parquet"
    run_batch(_config(archive, out, workers=2), progress=False)
    rows = read_rows(out)
    (crashed,) = [r for r in rows if r["path"].endswith("photo_002.jpg")]
    assert crashed["status"] == "error" and "worker process died" in crashed["error"]
    keep = lambda table: [r for r in table if not r["path"].endswith("photo_002.jpg")]  # noqa: E731
    assert not row_differences(keep(reference["rows"]), keep(rows))


def test_a_pool_broken_before_a_submit_loses_no_file(monkeypatch):
    """The race behind a flaky run of the test above: a worker dies, and before its future reports
    it the engine submits the next file to the now broken pool, which refuses it. That file must
    stay queued (it used to be dropped: "the engine stopped before every file was scored")."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    import mottling.batch.local_engine as engine

    class BreaksOnSecondSubmit:               # the pool's side of the race, made deterministic
        submits = 0

        def __init__(self, *args, **kwargs):
            self.broken = False

        def submit(self, fn, task):
            BreaksOnSecondSubmit.submits += 1
            if self.broken or BreaksOnSecondSubmit.submits == 2:
                self.broken = True
                raise BrokenProcessPool("a worker died")
            fut = Future()
            fut.set_result((int(task["task_id"]), {"path": task["item"]["path"]}))
            return fut

        def shutdown(self, wait=True, cancel_futures=False):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(engine, "_pool", lambda n, scoring: BreaksOnSecondSubmit())
    tasks = [Task(i, InputItem(f"photo_{i:03d}.jpg", f"/archive/photo_{i:03d}.jpg"), "knee", "cli") for i in range(5)]
    got = sorted(task_id for task_id, _ in engine.score_local(tasks, ScoringConfig(), workers=2))
    assert got == [0, 1, 2, 3, 4]
