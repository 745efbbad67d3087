"""docs/errors.md is the one table of error codes; these tests hold the code to it.

The tables are read from the document itself: every class named there must carry the documented
HTTP status, every exit code must be one of ``mottling.cli``'s constants, and every status and exit
code must be produced by a real request or command below (and nothing else is).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import re
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

import mottling.errors
import serving.errors
import serving.uploads
from mottling import cli
from mottling.cli import main
from serving.app import create_app
from serving.schemas import ERROR_RESPONSES
from serving.settings import ServerSettings
from tests.serving_support import photo_jpeg, tiny_model

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _table(heading: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| \d+ \|", line)]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


HTTP_ROWS = {int(r[0]): re.findall(r"`(\w+)`", r[1]) for r in _table("HTTP statuses")}
EXIT_ROWS = {int(r[0]): r[1] for r in _table("CLI exit codes")}


def _clip(n: int, size=(64, 48), container: str = "mp4") -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height = size
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "ultrafast"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 100 + i, np.uint8),
                                               format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def media():
    clip = _clip(45)
    assert clip.find(b"moov") > len(clip) // 2          # the index sits at the end
    return {"jpeg": photo_jpeg(seed=3, size=128), "clip": clip, "one_frame": _clip(1)}


# -- the document ---------------------------------------------------------------------------------
def test_every_error_class_carries_its_documented_status():
    classes = {}
    for module in (mottling.errors, serving.errors, serving.uploads):
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, mottling.errors.MottlingError):
                classes[name] = obj
    documented = {name for names in HTTP_ROWS.values() for name in names}
    # every concrete error class is in the table (the base class is only ever a 500)
    assert set(classes) - {"MottlingError"} <= documented, set(classes) - documented
    for status, names in HTTP_ROWS.items():
        for name in names:
            if name == "AuthError":
                continue                 # carries 401 or 403 per instance, tested below
            if name in classes:
                assert classes[name].http_status == status, (name, status)


def test_openapi_lists_every_documented_client_and_server_error():
    assert set(ERROR_RESPONSES) == set(HTTP_ROWS) - {404, 500}


def test_exit_codes_are_the_documented_ones():
    constants = {v for k, v in vars(cli).items() if k.startswith("EXIT_")}
    assert constants == set(EXIT_ROWS)


# -- HTTP: a real request for every documented status --------------------------------------------
def _stalled_upload_status(model_path) -> int:
    """A body that never finishes, straight through the ASGI app with a short idle timeout."""
    app = create_app(ServerSettings(model_path=model_path, upload_idle_timeout_s=0.2,
                                    upload_min_rate_bytes_s=0))
    sent = []
    first = [{"type": "http.request", "body": b'--b\r\nContent-Disposition: form-data; name="video"; '
              b'filename="a.mp4"\r\n\r\n\x00\x00', "more_body": True}]

    async def receive():
        if first:
            return first.pop()
        await asyncio.sleep(3600)          # the client has gone quiet

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/crt", "raw_path": b"/v1/crt",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_every_documented_status_has_a_request_that_produces_it(model_path, tmp_path, media):
    jpeg, clip = media["jpeg"], media["clip"]
    seen: dict[int, list[str]] = {}

    def expect(status: int, resp, label: str) -> None:
        assert resp.status_code == status, (label, resp.status_code, resp.text)
        if status != 404:
            assert resp.json()["error"], label
        seen.setdefault(status, []).append(label)

    def crt(c, data, **fields):
        return c.post("/v1/crt", files={"video": ("v.mp4", data)}, data={"site": "finger", **fields})

    with TestClient(create_app(ServerSettings(model_path=model_path)), raise_server_exceptions=False) as c:
        expect(400, c.post("/v1/mottling", files={"image": ("a.jpg", b"")}), "zero-byte photo")
        expect(400, crt(c, b""), "zero-byte video")
        expect(400, c.post("/v1/mottling", files={"image": ("a.jpg", jpeg[:len(jpeg) // 2])}), "cut JPEG")
        expect(400, crt(c, clip[:len(clip) // 2]), "MP4 cut before its index")
        expect(400, c.post("/v1/mottling", content=b"--b\r\nbroken",
                           headers={"content-type": "multipart/form-data; boundary=b"}), "broken multipart")
        expect(404, c.get("/nope"), "unknown path")
        expect(415, c.post("/v1/mottling", files={"image": ("a.jpg", b"plain text, not a photo")}), "text photo")
        expect(415, crt(c, b"ffconcat version 1.0\nfile clip.mp4\n"), "playlist as video")
        expect(415, c.post("/v1/mottling", json={"image": "x"}), "JSON body")
        expect(422, c.post("/v1/mottling", files={"photo": ("a.jpg", jpeg)}), "no image part")
        expect(422, crt(c, clip, site="toe"), "bad site")
        expect(422, crt(c, clip, roi="-1,0,10,10"), "negative ROI")
        expect(422, crt(c, clip, roi="60,40,30,30"), "ROI outside the frame")
        expect(422, crt(c, media["one_frame"]), "one-frame video")
        expect(422, c.post("/v1/assess?format=xml", files={"image": ("a.jpg", jpeg)}), "bad query")

        def boom(*args, **kwargs):
            raise RuntimeError("a bug")

        c.app.state.analyzer.score_photo = boom
        expect(500, c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}), "a fault of ours")

    with TestClient(create_app(ServerSettings(model_path=model_path, api_key="k",
                                              max_image_bytes=1000, max_video_s=0.5))) as c:
        expect(401, c.get("/v1/model"), "no key")
        expect(403, c.get("/v1/model", headers={"X-API-Key": "wrong"}), "wrong key")
        key = {"X-API-Key": "k"}
        expect(413, c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}, headers=key), "photo too large")
        expect(413, c.post("/v1/crt", files={"video": ("v.mp4", clip)}, data={"site": "knee"}, headers=key),
               "video too long")

    with TestClient(create_app(ServerSettings(model_path=tmp_path / "missing.onnx"))) as c:
        expect(503, c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}), "model missing")
    with TestClient(create_app(ServerSettings(model_path=model_path, max_concurrent_uploads=1))) as c:
        c.app.state.uploads.active = 1
        expect(503, c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}), "busy")

    assert _stalled_upload_status(model_path) == 408
    seen[408] = ["stalled body"]
    assert set(seen) == set(HTTP_ROWS), set(HTTP_ROWS) ^ set(seen)


# -- CLI: a real command for every documented exit code -------------------------------------------
def test_every_documented_exit_code_has_a_command_that_produces_it(tmp_path, media, capsys):
    good = tmp_path / "clip.mp4"
    good.write_bytes(media["clip"])
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(media["clip"][:len(media["clip"]) // 2])
    text = tmp_path / "list.mp4"
    text.write_bytes(b"ffconcat version 1.0\nfile clip.mp4\n")
    seen = set()

    def expect(code: int, argv: list[str], one_error_line: bool = False) -> None:
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        if one_error_line:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), err
        seen.add(code)

    expect(0, ["crt", str(good), "--site", "finger", "--json"])
    # a bad video is a bad input (1), never the model-failure code (2)
    expect(1, ["crt", str(bad), "--site", "finger"], one_error_line=True)
    expect(1, ["crt", str(text), "--site", "knee", "--json"], one_error_line=True)
    expect(1, ["crt", str(tmp_path / "missing.mp4"), "--site", "knee"], one_error_line=True)
    expect(1, ["crt", str(good), "--site", "knee", "--roi", "60,40,30,30"], one_error_line=True)
    expect(2, ["crt", str(good), "--site", "knee", "--roi", "1,2"])
    expect(2, ["batch", str(tmp_path / "nope"), "--out", str(tmp_path / "r.parquet")])
    tampered = tmp_path / "model.onnx"
    tampered.write_bytes(b"not a model")
    expect(2, ["score", str(tmp_path / "x.jpg"), "--model", str(tampered)], one_error_line=True)
    seen.add(cli.EXIT_INTERRUPTED)   # Ctrl-C: click's Abort, not reproducible in-process
    assert seen == set(EXIT_ROWS)
