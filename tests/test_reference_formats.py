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


def _reference_files(target: str) -> dict[str, bytes]:
    return {
        "ffconcat": f"ffconcat version 1.0\nfile {target}\n".encode(),
        "ffconcat_absolute": f"ffconcat version 1.0\nfile '{Path(target).resolve()}'\n".encode(),
        "hls": (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{target}\n"
                "#EXT-X-ENDLIST\n").encode(),
        "ffmetadata_like": f";FFMETADATA1\nfile={target}\n".encode(),
        "subfile_url": f"subfile,,start,0,end,0,,:{target}".encode(),
    }


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
