"""The rater parts without a browser: archive safety, blinding, storage, answers and consensus."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import uuid
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from mottling.agreement import load_label_files, load_labels
from mottling.cli import main
from mottling.errors import InputError, UnprocessableInputError
from mottling.rate.answers import photo_record, video_record
from mottling.rate.archive import index_archive
from mottling.rate.consensus import build_consensus, photo_consensus, video_consensus
from mottling.rate.media import render_photo
from mottling.rate.service import NotFound, open_service
from tests.rate_support import make_archive, tiny_jpeg


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def small(tmp_path):
    return make_archive(tmp_path, n_photos=8, n_videos=2, zipped_photos=2)


def test_archive_keeps_paths_inside_and_skips_what_leads_out(small, tmp_path):
    secret = tmp_path / "outside.jpg"
    secret.write_bytes(tiny_jpeg(99))
    os.symlink(secret, small / "centre_0" / "link.jpg")
    with zipfile.ZipFile(small / "evil.zip", "w") as zf:
        zf.writestr("../escape.jpg", tiny_jpeg(1))
        zf.writestr("fine/ok.jpg", tiny_jpeg(2))
    (small / "renamed.mp4").write_bytes(tiny_jpeg(3))      # sniffed by content: a photo
    archive = index_archive([small])
    paths = {i.path for i in (*archive.photos, *archive.videos)}
    assert all(p.startswith("trial/") for p in paths | set(archive.skipped))
    assert "trial/centre_0/link.jpg" in archive.skipped
    assert not any("escape" in p for p in paths)              # never offered
    assert "trial/evil.zip!/fine/ok.jpg" in paths and "trial/extra.zip!/late/patient_0007.jpg" in paths
    assert next(i for i in archive.photos if i.path == "trial/renamed.mp4").kind == "photo"
    assert archive.skipped["trial/notes.txt"] == "not a photo or video"
    assert len(archive.videos) == 2
    with pytest.raises(InputError, match="not found"):
        index_archive([tmp_path / "nope"])


def test_photos_are_shown_without_any_metadata():
    exif = Image.Exif()
    exif[0x010F] = "LeakyPhoneMaker"
    exif[0x010E] = "Patient Jane Doe, bed 4"
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 29.0)
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (180, 120, 110)).save(buf, format="JPEG", exif=exif)
    shown = render_photo(buf.getvalue())
    assert b"LeakyPhoneMaker" not in shown and b"Jane" not in shown and b"Exif" not in shown
    assert Image.open(io.BytesIO(shown)).size == (300, 200)
    sideways = Image.Exif()
    sideways[0x0112] = 6                                 # stored sideways: shown upright
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (180, 120, 110)).save(buf, format="JPEG", exif=sideways)
    assert Image.open(io.BytesIO(render_photo(buf.getvalue()))).size == (200, 300)


def test_sessions_are_seeded_recorded_and_blind_between_raters(small, tmp_path):
    out = tmp_path / "out"
    a = open_service([small], out, rater="alice", seed=7)
    view_a = a.session_view("alice")
    assert view_a["seed"] == 7
    again = open_service([small], out, rater="alice")               # restart: same order, ids
    assert again.session_view("alice") == view_a
    with pytest.raises(InputError, match="already rates with seed 7"):
        open_service([small], out, rater="alice", seed=8)
    b = open_service([small], out, rater="bob", seed=8)
    view_b = b.session_view("bob")
    assert {e["id"] for e in view_a["photos"]}.isdisjoint({e["id"] for e in view_b["photos"]})
    with pytest.raises(NotFound):                                     # alice's ids mean nothing to bob
        b.photo("bob", view_a["photos"][0]["id"])
    with pytest.raises(InputError, match="rates as bob only"):
        b.session_view("alice")
    assert "trial" not in repr(view_a) and "patient" not in repr(view_a)
    with pytest.raises(InputError, match="rater name"):
        open_service([small], out, rater="../x")


def test_answers_are_stored_once_and_the_latest_wins(small, tmp_path):
    out = tmp_path / "out"
    svc = open_service([small], out, rater="alice", seed=1)
    view = svc.session_view("alice")
    first, second = view["photos"][0]["id"], view["photos"][1]["id"]
    aid = str(uuid.uuid4())
    assert svc.answer("alice", {"answer_id": aid, "id": first, "score": 2})["new"] is True
    assert svc.answer("alice", {"answer_id": aid, "id": first, "score": 2})["new"] is False
    svc.answer("alice", {"answer_id": str(uuid.uuid4()), "id": first, "score": 4})
    svc.answer("alice", {"answer_id": str(uuid.uuid4()), "id": second, "unreadable": True})
    vid = view["videos"][0]["id"]
    assert svc.video("alice", vid)["frames"] == 12
    saved = svc.answer("alice", {"answer_id": str(uuid.uuid4()), "id": vid, "site": "finger",
                                 "release_frame": 2, "refill_frame": 8})
    assert saved["answer"]["crt_s"] == pytest.approx(0.30 - 0.07)
    rows = {r["path"]: r for r in _rows(out / "alice.csv")}
    assert len(rows) == 3
    changed = next(r for r in rows.values() if r["revisions"] == "1")
    assert changed["score"] == "4"
    with sqlite3.connect(out / "alice.answers.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4
    labels = load_labels(out / "alice.csv")            # what `mottling agreement` reads
    assert sorted(v["alice"] for v in labels.scores.values()) == [4]
    assert list(labels.crts.values()) == [{"alice": pytest.approx(0.23)}]
    with pytest.raises(InputError, match="UUID"):
        svc.answer("alice", {"answer_id": "1", "id": first, "score": 1})


def test_answer_validation():
    assert photo_record({"score": 0})["score"] == 0
    for bad in ({"score": 6}, {"score": "3"}, {"score": True}, {}):
        with pytest.raises(UnprocessableInputError):
            photo_record(bad)
    t = [0.0, 0.1, 0.25, 0.3]
    rec = video_record({"site": "knee", "press_frame": 0, "release_frame": 1, "refill_frame": 3}, t)
    assert rec["crt_s"] == pytest.approx(0.2) and rec["press_s"] == 0.0
    for bad, words in (({"site": "knee", "release_frame": 2, "refill_frame": 1}, "after the release"),
                       ({"release_frame": 1, "refill_frame": 2}, "choose the site"),
                       ({"site": "knee", "release_frame": 1, "refill_frame": 4}, "frame index"),
                       ({"site": "knee", "press_frame": 2, "release_frame": 1, "refill_frame": 3},
                        "press must come before"),
                       ({"unusable": True}, "say why")):
        with pytest.raises(UnprocessableInputError, match=words):
            video_record(bad, t)
    broken = video_record({"unusable": True, "reason": "camera moved", "release_frame": 1}, t)
    assert broken["crt_s"] is None and broken["release_frame"] == 1


def _r(**kw) -> dict:
    return {k: str(v) for k, v in kw.items()}


def test_consensus_majority_median_and_ties_are_listed():
    three = {"a": _r(score=2), "b": _r(score=2), "c": _r(score=4)}
    assert photo_consensus(three, "majority", 2)["score"] == 2
    assert photo_consensus(three, "median", 2)["score"] == 2
    split = {"a": _r(score=1), "b": _r(score=3)}
    assert photo_consensus(split, "majority", 2)["candidates"] == [1, 3]
    assert "between 1 and 3" in photo_consensus(split, "median", 2)["reason"]
    spread = {"a": _r(score=1), "b": _r(score=2), "c": _r(score=4)}
    assert "tie" in photo_consensus(spread, "majority", 2)["reason"]
    assert photo_consensus(spread, "median", 2)["score"] == 2
    dark = {"a": _r(score="", unreadable=1), "b": _r(score="", unreadable=1), "c": _r(score=3)}
    assert "unreadable for 2 of 3" in photo_consensus(dark, "majority", 1)["reason"]
    assert "needed" in photo_consensus({"a": _r(score=3)}, "majority", 2)["reason"]
    v = {"a": _r(site="knee", crt_s=2.0, release_s=1.0), "b": _r(site="knee", crt_s=3.0, release_s=1.1),
         "c": _r(site="finger", crt_s=2.2, release_s=1.0)}
    got = video_consensus(v, 2)
    assert got["site"] == "knee" and got["crt_s"] == 2.2 and got["crt_spread_s"] == 1.0
    split_site = {"a": _r(site="knee", crt_s=2.0), "b": _r(site="finger", crt_s=2.0)}
    assert "site" in video_consensus(split_site, 2)["reason"]
    bad = {"a": _r(unusable=1, reason="camera moved"), "b": _r(unusable=1, reason="dark"),
           "c": _r(site="knee", crt_s=2.0)}
    assert "unusable" in video_consensus(bad, 1)["reason"]


def test_consensus_copies_zip_members_out_for_training_and_refuses_doubles(small, tmp_path):
    out = tmp_path / "out"
    for rater, seed in (("a", 1), ("b", 2)):
        svc = open_service([small], out, rater=rater, seed=seed)
        for e in svc.session_view(rater)["photos"]:
            svc.answer(rater, {"answer_id": str(uuid.uuid4()), "id": e["id"], "score": 3})
    summary = build_consensus([out / "a.csv", out / "b.csv"], tmp_path / "cons", root=small.parent)
    rows = _rows(tmp_path / "cons" / "manifest.csv")
    assert summary["photos_in_manifest"] == 8 and summary["ties"] == 0
    zipped = [r for r in rows if "!/" in r["archive_path"]]
    assert len(zipped) == 2 and all(r["path"].startswith("unzipped/") for r in zipped)
    assert all((tmp_path / "cons" / r["path"]).is_file() for r in rows)
    with pytest.raises(InputError, match="twice"):
        build_consensus([out / "a.csv", out / "a.csv"], tmp_path / "c2")
    with pytest.raises(InputError, match="already rated"):
        load_label_files([out / "a.csv", out / "a.csv"])


def test_agreement_runs_on_rater_files_alone(small, tmp_path, capsys):
    out = tmp_path / "out"
    for rater, delta in (("a", 0), ("b", 1)):
        svc = open_service([small], out, rater=rater, seed=1)
        for k, e in enumerate(svc.session_view(rater)["photos"]):
            svc.answer(rater, {"answer_id": str(uuid.uuid4()), "id": e["id"],
                               "score": min(5, k % 6 + (delta if k % 2 else 0))})
    assert main(["agreement", "--labels", str(out / "a.csv"), "--labels", str(out / "b.csv"),
                 "--out", str(tmp_path / "rep")]) == 0
    assert "a vs b: scores n=8" in capsys.readouterr().out
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| a vs b | 8 |" in report and "compared with each other only" in report
    assert "model vs" not in report


@pytest.mark.parametrize("rotation", [0, 90])
def test_video_frames_are_upright_and_keep_every_timestamp(tmp_path, rotation):
    """A generated phone clip (variable rate, rotation metadata): every frame, its own time."""
    from mottling.rate.media import decode_frames
    from mottling.synth.videos import RefillSpec, render_refill_video

    spec = RefillSpec(seed=5, width=128, height=96, rotation=rotation, pre_press_s=0.3,
                      press_duration_s=0.5, post_release_s=0.8, vfr=True, vfr_jitter=0.3,
                      vfr_drop=0.1)
    truth = render_refill_video(tmp_path / "clip.mp4", spec)
    frames = decode_frames((tmp_path / "clip.mp4").read_bytes())
    assert len(frames.t_s) == truth["frames"]
    assert (frames.width, frames.height) == (truth["width"], truth["height"])
    assert frames.t_s[-1] == pytest.approx(truth["duration_s"], abs=1e-4)
    steps = [b - a for a, b in zip(frames.t_s, frames.t_s[1:])]
    assert min(steps) > 0 and max(steps) > 1.5 * min(steps)       # really variable-rate
    release = min(range(len(frames.t_s)), key=lambda i: abs(frames.t_s[i] - truth["release_s"]))
    assert abs(frames.t_s[release] - truth["release_s"]) <= max(steps) / 2


def test_two_archives_of_one_name_are_refused(tmp_path):
    a = make_archive(tmp_path / "a", n_photos=1, n_videos=0)
    b = make_archive(tmp_path / "b", n_photos=1, n_videos=0)
    with pytest.raises(InputError, match="two archives are named 'trial'"):
        index_archive([a, b])


def test_broken_media_are_errors_and_can_be_called_unusable(tmp_path):
    trial = make_archive(tmp_path, n_photos=1, n_videos=1)
    good = (trial / "videos" / "refill_000.mp4").read_bytes()
    (trial / "videos" / "truncated.mp4").write_bytes(good[:200])
    (trial / "centre_0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 20)
    svc = open_service([trial], tmp_path / "out", rater="dee", seed=3)
    session, _ = svc.rater("dee")
    broken = session.item_id("trial/videos/truncated.mp4")
    with pytest.raises(InputError):
        svc.video("dee", broken)
    with pytest.raises(InputError):
        svc.answer("dee", {"answer_id": str(uuid.uuid4()), "id": broken, "site": "knee",
                           "release_frame": 1, "refill_frame": 2})
    with pytest.raises(InputError):                  # the page then offers "unreadable" only
        svc.photo("dee", session.item_id("trial/centre_0/broken.jpg"))
    gone = trial / "centre_0" / "patient_0000.jpg"
    gone.unlink()                                     # deleted after the archive was indexed
    with pytest.raises(InputError, match="can no longer be read"):
        svc.photo("dee", session.item_id("trial/centre_0/patient_0000.jpg"))
    saved = svc.answer("dee", {"answer_id": str(uuid.uuid4()), "id": broken, "unusable": True,
                               "reason": "other: file is cut short"})
    assert saved["answer"]["unusable"] == 1
    row = next(r for r in _rows(tmp_path / "out" / "dee.csv") if r["path"].endswith("truncated.mp4"))
    assert row["unusable"] == "1" and row["frames"] == "0" and row["crt_s"] == ""


def test_files_added_later_do_not_reorder_the_rest(small, tmp_path):
    out = tmp_path / "out"
    before = [i.path for i in open_service([small], out, rater="al", seed=4).rater("al")[0].photos]
    (small / "centre_1" / "late_arrival.jpg").write_bytes(tiny_jpeg(500))
    after = [i.path for i in open_service([small], out, rater="al").rater("al")[0].photos]
    assert len(after) == len(before) + 1
    assert [p for p in after if p in before] == before
    other = [i.path for i in open_service([small], out, rater="bo", seed=5).rater("bo")[0].photos]
    assert other != after and sorted(other) == sorted(after)
