"""Hostile and odd clients against the HTTP service: stalled and trickling uploads, partial
assessments, and photos that must not wait behind videos."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import ServerSettings
from tests.serving_support import photo_jpeg, refill_video, running_server, tiny_model

STALL_HEAD = (b"POST /v1/mottling HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"image\"; "
              b"filename=\"a.jpg\"\r\n\r\n\xff\xd8")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def jpeg():
    return photo_jpeg(seed=7, score=2)


@pytest.fixture(scope="module")
def finger_video(tmp_path_factory):
    path, _ = refill_video(tmp_path_factory.mktemp("video"), site="finger", seed=21)
    return path.read_bytes()


def _read_answer(sock: socket.socket, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


@pytest.mark.slow
def test_stalled_and_trickling_clients_free_their_slots_and_readiness_shows_it(model_path, tmp_path, jpeg):
    """Real sockets against the real server: two clients send headers and part of a body, one then
    stops and one trickles a byte every 0.4 s (so the idle timeout alone would never end it). Both slots are taken, so uploads get 503 and /readyz
    says busy; both are cut off with a 408 within the configured limits and the server recovers."""
    env = {"MOTTLING_MODEL_PATH": str(model_path), "MOTTLING_MAX_CONCURRENT_UPLOADS": "2",
           "MOTTLING_UPLOAD_IDLE_TIMEOUT_S": "3", "MOTTLING_UPLOAD_RATE_GRACE_S": "4",
           "MOTTLING_UPLOAD_MIN_RATE_BYTES_S": "1000"}
    with running_server(env, log_path=tmp_path / "server.log", cwd=tmp_path) as (base, proc):
        port = int(base.rsplit(":", 1)[1])
        stalled = socket.create_connection(("127.0.0.1", port))
        trickler = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(STALL_HEAD)
        trickler.sendall(STALL_HEAD)
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.4):
                try:
                    trickler.sendall(b"\x00")    # each byte resets an idle timer, never the rate
                except OSError:
                    return

        threading.Thread(target=trickle, daemon=True).start()
        started = time.monotonic()
        try:
            while (ready := httpx.get(base + "/readyz", timeout=5)).status_code == 200:
                assert time.monotonic() - started < 2.5, "the hostile clients never took the slots"
                time.sleep(0.05)
            assert ready.status_code == 503 and "busy" in ready.json()["error"], ready.text
            assert httpx.get(base + "/healthz", timeout=5).status_code == 200   # alive, not ready
            busy = httpx.post(base + "/v1/mottling", files={"image": ("a.jpg", jpeg)}, timeout=5)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
            while httpx.get(base + "/readyz", timeout=5).status_code != 200:
                assert time.monotonic() - started < 15, "the stalled uploads still hold their slots"
                time.sleep(0.1)
            freed_s = time.monotonic() - started
            # stalled: idle 3 s; trickler: falls below 1 kB/s once the 4 s grace is over
            assert 2.5 < freed_s < 10, freed_s
            assert b"408" in _read_answer(stalled, 5).split(b"\r\n")[0]
            answer = _read_answer(trickler, 5)
            assert b"408" in answer.split(b"\r\n")[0] and b"too slow" in answer
            ok = httpx.post(base + "/v1/mottling", files={"image": ("a.jpg", jpeg)}, timeout=30)
            assert ok.status_code == 200, ok.text
        finally:
            stop.set()
            stalled.close()
            trickler.close()
        assert proc.poll() is None


def test_readyz_reports_a_full_upload_budget(model_path):
    with TestClient(create_app(ServerSettings(model_path=model_path, max_buffered_bytes=1000))) as c:
        assert c.get("/readyz").status_code == 200
        c.app.state.uploads.budget.in_use = 1000
        assert c.get("/readyz").status_code == 503 and "memory" in c.get("/readyz").json()["error"]
        c.app.state.uploads.budget.in_use = 0
        assert c.get("/readyz").status_code == 200
        assert "mottling_uploads_active 0.0" in c.get("/metrics").text


# -- partial answers ------------------------------------------------------------------------------
def test_assess_keeps_the_photo_score_when_the_video_fails(model_path, jpeg):
    with TestClient(create_app(ServerSettings(model_path=model_path))) as c:
        resp = c.post("/v1/assess", files={"image": ("leg.jpg", jpeg), "video": ("r.mp4", b"no video here")},
                      data={"site": "knee"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["partial"] is True
        assert body["mottling"]["score"] in range(6)
        assert body["crt"]["status"] == "error" and body["crt"]["http_status"] == 415
        assert "video" in body["crt"]["error"]
        flag = body["hypoperfusion"]
        assert flag["evaluated"] == ["mottling_score>=1"]     # the CRT criterion was not evaluated
        # a bad field is a part error too; the same upload through /v1/crt gives that status
        resp = c.post("/v1/assess", files={"image": ("leg.jpg", jpeg), "video": ("r.mp4", b"x")},
                      data={"site": "toe"})
        assert resp.status_code == 200 and resp.json()["crt"]["http_status"] == 422
        alone = c.post("/v1/crt", files={"video": ("r.mp4", b"x")}, data={"site": "toe"})
        assert alone.status_code == 422 and alone.json()["error"] == resp.json()["crt"]["error"]
        bundle = c.post("/v1/assess?format=fhir", files={"image": ("leg.jpg", jpeg), "video": ("r.mp4", b"x")},
                        data={"site": "knee"})
        assert bundle.status_code == 200 and bundle.json()["resourceType"] == "Bundle"
        kinds = [e["resource"]["resourceType"] for e in bundle.json()["entry"]]
        assert kinds == ["Observation", "Observation", "OperationOutcome"]    # score, flag, the failure
        issue = bundle.json()["entry"][-1]["resource"]["issue"][0]
        assert issue["expression"] == ["crt"] and "video" in issue["diagnostics"]


def test_assess_keeps_the_crt_when_the_photo_fails(model_path, finger_video):
    with TestClient(create_app(ServerSettings(model_path=model_path))) as c:
        resp = c.post("/v1/assess", files={"image": ("leg.jpg", b"\xff\xd8\xff\xe0 cut"),
                                           "video": ("r.mp4", finger_video)}, data={"site": "finger"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["partial"] is True and body["mottling"]["status"] == "error"
        assert body["mottling"]["http_status"] == 400
        assert body["crt"]["status"] in ("ok", "rejected") and body["crt"]["site"] == "finger"
        whole = c.post("/v1/assess", files={"image": ("leg.jpg", photo_jpeg(seed=1)),
                                            "video": ("r.mp4", finger_video)}, data={"site": "finger"})
        assert whole.json()["partial"] is False


# -- separate capacity ----------------------------------------------------------------------------
def test_a_photo_is_answered_while_every_video_slot_is_busy(model_path, jpeg, finger_video, monkeypatch):
    """Videos that occupy all their capacity (held here, mid-measurement, on an event) do not make
    a photo wait."""
    import mottling.crt

    settings = ServerSettings(model_path=model_path, video_concurrency=2, photo_concurrency=2)
    with TestClient(create_app(settings)) as c:
        release = threading.Event()
        entered = []
        original = mottling.crt.measure_crt

        def slow_measure(*args, **kwargs):
            entered.append(threading.get_native_id())
            release.wait(15)
            return original(*args, **kwargs)

        monkeypatch.setattr(mottling.crt, "measure_crt", slow_measure)
        with ThreadPoolExecutor(2) as pool:
            videos = [pool.submit(c.post, "/v1/crt", files={"video": ("r.mp4", finger_video)},
                                  data={"site": "finger"}) for _ in range(2)]
            try:
                deadline = time.monotonic() + 20
                while len(entered) < 2:
                    assert time.monotonic() < deadline, "the videos never started"
                    time.sleep(0.05)
                started = time.monotonic()
                photo = c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)})
                assert photo.status_code == 200 and not release.is_set()
                assert time.monotonic() - started < 10
                # the video threads run at a lower priority than the photo path
                if hasattr(os, "getpriority"):
                    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
                    assert all(os.getpriority(os.PRIO_PROCESS, tid) >= mine + 1 for tid in entered)
            finally:
                release.set()
            assert [v.result().status_code for v in videos] == [200, 200]


# -- bodies of the other routes -------------------------------------------------------------------
def test_a_route_that_reads_a_small_body_gets_no_more_than_the_cap(model_path, tmp_path, monkeypatch):
    """The rater page's answer route reads ``request.body()``, which has no limit of its own; the
    server caps every non-upload body, streamed or declared, with a 413 before it is buffered."""
    from tests.rate_support import make_archive

    archive = make_archive(tmp_path / "archive", n_photos=2, n_videos=0)
    monkeypatch.setenv("MOTTLING_RATER_ARCHIVE", str(archive))
    monkeypatch.setenv("MOTTLING_RATER_OUT", str(tmp_path / "ratings"))

    def stream():
        for _ in range(64):                    # 4 MiB in 64 KiB chunks, no Content-Length
            yield b"{" + b" " * 65535

    with TestClient(create_app(ServerSettings(model_path=model_path, warmup=False))) as c:
        resp = c.post("/rate/api/answer?rater=ann", content=stream(),
                      headers={"content-type": "application/json"})
        assert resp.status_code == 413 and "larger than" in resp.json()["error"], resp.text
        assert resp.json()["request_id"] == resp.headers["x-request-id"]
        declared = c.post("/rate/api/answer?rater=ann", content=b"{}",
                          headers={"content-type": "application/json", "content-length": "10000000"})
        assert declared.status_code == 413
        small = c.post("/rate/api/answer?rater=ann", json={"item": "nope"})
        assert small.status_code != 413 and small.status_code < 500


def test_videos_waiting_beyond_their_cap_get_503_and_photos_still_pass(model_path, jpeg, finger_video,
                                                                         monkeypatch):
    import mottling.crt

    settings = ServerSettings(model_path=model_path, video_concurrency=1, max_videos_in_flight=2,
                              max_concurrent_uploads=3)
    with TestClient(create_app(settings)) as c:
        release = threading.Event()
        original = mottling.crt.measure_crt

        def slow_measure(*args, **kwargs):
            release.wait(15)
            return original(*args, **kwargs)

        monkeypatch.setattr(mottling.crt, "measure_crt", slow_measure)
        analyzer = c.app.state.analyzer
        with ThreadPoolExecutor(2) as pool:
            videos = [pool.submit(c.post, "/v1/crt", files={"video": ("r.mp4", finger_video)},
                                  data={"site": "finger"}) for _ in range(2)]   # one runs, one waits
            try:
                deadline = time.monotonic() + 20
                while analyzer.videos_in_flight < 2:
                    assert time.monotonic() < deadline, "the videos were never accepted"
                    time.sleep(0.05)
                third = c.post("/v1/crt", files={"video": ("r.mp4", finger_video)}, data={"site": "finger"})
                assert third.status_code == 503 and third.headers["retry-after"] == "2"
                # two uploads are held by the videos; the third slot is still there for a photo
                assert c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}).status_code == 200
            finally:
                release.set()
            assert [v.result().status_code for v in videos] == [200, 200]
        assert analyzer.videos_in_flight == 0
