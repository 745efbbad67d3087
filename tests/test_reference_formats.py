"""No upload or archive entry can make a decoder open another file.

FFmpeg's concat, HLS and image-sequence demuxers follow names written inside the input. Each such
format is fed to the video decoder with a real, readable video next to it; the decoder must refuse
the input with the same message whether or not the referenced file exists, so nothing leaks.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from mottling.crt import decode_video
from mottling.errors import UnsupportedMediaError
from tests.hostile_support import OpenWatch, reference_files


def _write_clip(path: Path, n: int = 12, size=(64, 48), streams: tuple[int, ...] = (12,)) -> Path:
    """An MP4 with one video track per entry of ``streams`` (its frame count)."""
    with av.open(str(path), "w", format="mp4") as c:
        tracks = []
        for _ in streams:
            s = c.add_stream("libx264", rate=30)
            s.width, s.height = size
            s.pix_fmt = "yuv420p"
            s.options = {"preset": "ultrafast"}
            tracks.append(s)
        for s, count in zip(tracks, streams):
            for i in range(count):
                img = np.full((size[1], size[0], 3), (i * 9) % 255, np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                for p in s.encode(frame):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
    return path


_reference_files = reference_files


@pytest.mark.parametrize("kind", list(_reference_files("x")))
def test_reference_formats_never_open_the_referenced_file(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    _write_clip(tmp_path / "secret_clip.mp4")
    messages = set()
    for target in ("secret_clip.mp4", "missing_clip.mp4"):
        data = _reference_files(target)[kind]
        upload = tmp_path / f"upload_{kind}.mp4"
        upload.write_bytes(data)
        for source in (data, upload, str(upload)):
            with pytest.raises(UnsupportedMediaError) as err:
                decode_video(source)
            messages.add(str(err.value))
    assert len(messages) == 1, messages   # an existing and a missing target are indistinguishable


def test_file_names_are_never_read_as_protocols_or_patterns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = _write_clip(tmp_path / "clip_001.mp4")
    # A path that FFmpeg alone would read as an image-sequence pattern still names one real file.
    pattern = tmp_path / "clip_%03d.mp4"
    pattern.write_bytes(clip.read_bytes())
    assert len(decode_video(pattern).t_s) == 12
    for name in ("concat:clip_001.mp4|clip_001.mp4", "file:clip_001.mp4", "subfile,,start,0,end,0,,:clip_001.mp4"):
        with pytest.raises(Exception) as err:
            decode_video(name)
        assert "no such video file" in str(err.value)


def test_the_longest_video_track_is_used_not_a_thumbnail(tmp_path):
    clip = _write_clip(tmp_path / "thumb_first.mp4", streams=(1, 20))
    video = decode_video(clip)
    assert len(video.t_s) == 20


# -- over HTTP and in batch: the same files, watched by inotify ---------------------------------
@pytest.fixture()
def secret_folder(tmp_path, monkeypatch):
    """The working folder, holding a real video the reference files name; nothing may open it."""
    folder = tmp_path / "workdir"
    folder.mkdir()
    _write_clip(folder / "secret_clip.mp4")
    monkeypatch.chdir(folder)
    with OpenWatch(folder) as watch:
        watch.prove(folder / "secret_clip.mp4")
        yield folder, watch


def test_reference_uploads_over_http_never_open_a_file_and_cannot_probe(secret_folder, tmp_path):
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.settings import ServerSettings
    from tests.serving_support import photo_jpeg, tiny_model

    folder, watch = secret_folder
    model = tiny_model(tmp_path / "model")
    watch.events()
    jpeg = photo_jpeg(seed=2, size=96)
    with TestClient(create_app(ServerSettings(model_path=model))) as c:
        for kind in reference_files("x"):
            answers = set()
            for target in ("secret_clip.mp4", "missing_clip.mp4"):
                data = reference_files(target)[kind]
                for curve in ("false", "true"):
                    for url, files in (("/v1/crt", {"video": ("clip.mp4", data, "video/mp4")}),
                                       ("/v1/assess", {"video": ("clip.mp4", data, "video/mp4")}),
                                       ("/v1/assess", {"video": ("clip.mp4", data), "image": ("a.jpg", jpeg)})):
                        resp = c.post(f"{url}?curve={curve}", files=files, data={"site": "finger"})
                        body = resp.json()
                        body.pop("request_id", None)
                        part = body.get("crt", body) if url == "/v1/assess" else body
                        assert "curve" not in part and part.get("status") in (None, "error"), body
                        if "image" in files:
                            body["mottling"] = "scored" if "score" in body["mottling"] else body["mottling"]
                        answers.add((url, "image" in files, resp.status_code, repr(sorted(body.items()))))
            # an existing and a missing target answer byte for byte the same
            assert len(answers) == 3, (kind, answers)
            statuses = {a[2] for a in answers}
            assert statuses <= {415, 400, 200}, (kind, statuses)
    assert watch.events() == [], "a reference upload made the server open a file in its working folder"


def test_reference_files_in_a_batch_never_open_a_file(secret_folder, tmp_path):
    import zipfile

    import pyarrow.parquet as pq

    from mottling.batch.runner import BatchConfig, run_batch
    from tests.batch_support import tiny_model

    folder, watch = secret_folder
    model = tiny_model(tmp_path / "model")
    inputs = tmp_path / "archive"
    inputs.mkdir()
    with zipfile.ZipFile(inputs / "bundle.zip", "w") as zf:
        for target in ("secret_clip.mp4", "missing_clip.mp4"):
            for kind, data in reference_files(target).items():
                name = f"{kind}-{target.split('_')[0]}.mp4"
                (inputs / name).write_bytes(data)      # short ones dodge any magic-byte check
                zf.writestr(f"inner/{name}", data)
    watch.events()
    for workers in (1, 2):
        out = tmp_path / f"r{workers}.parquet"
        summary = run_batch(BatchConfig(inputs=(str(inputs),), out=str(out), site="finger",
                                        model=str(model), workers=workers), progress=False)
        rows = pq.read_table(out).to_pylist()
        assert len(rows) == summary.n_files == 4 * len(reference_files("x"))
        assert {r["status"] for r in rows} == {"error"}
        by_kind = {}
        for r in rows:
            by_kind.setdefault(r["path"].rsplit("/", 1)[-1].split("-")[0], set()).add(r["error"])
        assert all(len(errors) == 1 for errors in by_kind.values()), by_kind
    assert watch.events() == [], "a batch entry made a decoder open a file in the working folder"


def test_a_callers_file_object_is_left_open(tmp_path):
    clip = _write_clip(tmp_path / "clip.mp4")
    with clip.open("rb") as handle:
        decode_video(handle)
        assert not handle.closed
