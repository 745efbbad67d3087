"""The HTTP service through FastAPI's TestClient (lifespan included): every endpoint, every error."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import tempfile
import threading

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serving.app import create_app
from serving.settings import ServerSettings
from tests.serving_support import photo_jpeg, refill_video, tiny_model

CLI_MOTTLING_KEYS = {"path", "score", "probabilities", "expected_score", "confidence", "quality",
                     "model_version", "model_sha256"}
CLI_CRT_KEYS = {"path", "site", "status", "reason", "crt_s", "crt_ci95", "tau_s", "release_s",
                "threshold_s", "prolonged", "fps", "frames"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def client(model_path):
    with TestClient(create_app(ServerSettings(model_path=model_path))) as c:
        yield c


@pytest.fixture(scope="module")
def jpeg():
    return photo_jpeg(seed=5, score=3, exif_gps=True)


@pytest.fixture(scope="module")
def finger_video(tmp_path_factory):
    path, truth = refill_video(tmp_path_factory.mktemp("video"), site="finger", seed=21)
    return path.read_bytes(), truth


def assert_error(resp, status: int, words: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error", "request_id"}
    assert body["request_id"] == resp.headers["x-request-id"]
    assert body["error"] and "Traceback" not in body["error"]
    if words:
        assert words.lower() in body["error"].lower(), body["error"]
    return body


# -- endpoints ------------------------------------------------------------------------------------
def test_health_and_readiness_carry_request_id_and_version(client):
    for url, status in (("/healthz", "alive"), ("/readyz", "ready")):
        resp = client.get(url)
        assert resp.status_code == 200
        body = resp.json()
        assert body["status"] == status
        assert body["model_version"] == "0.0.1" == resp.headers["x-model-version"]
        assert len(body["request_id"]) >= 16 and body["request_id"] == resp.headers["x-request-id"]
    a, b = client.get("/healthz").json()["request_id"], client.get("/healthz").json()["request_id"]
    assert a != b
    assert client.get("/healthz", headers={"X-Request-ID": "ward-7.abc"}).json()["request_id"] == "ward-7.abc"
    bad = client.get("/healthz", headers={"X-Request-ID": "<script>"}).json()["request_id"]
    assert bad != "<script>"


def test_mottling_matches_the_cli_contract_and_never_echoes_exif(client, jpeg):
    assert b"LeakyPhoneMaker" in jpeg  # the upload really carries EXIF
    resp = client.post("/v1/mottling?overlay=true", files={"image": ("IMG_0001.jpg", jpeg, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert CLI_MOTTLING_KEYS <= set(body)
    assert body["path"] == "IMG_0001.jpg"
    assert body["score"] in range(6) and len(body["probabilities"]) == 6
    assert abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["model_version"] == "0.0.1"
    assert body["request_id"] == resp.headers["x-request-id"]
    png = base64.b64decode(body.pop("overlay_png"))
    rest = json.dumps(body) + json.dumps(dict(resp.headers))
    assert "LeakyPhoneMaker" not in rest and "GPS" not in rest.upper() and "48.0" not in rest
    assert b"LeakyPhoneMaker" not in png and b"Exif" not in png
    overlay = Image.open(io.BytesIO(png))
    assert overlay.format == "PNG" and max(overlay.size) <= 1024
    assert not overlay.getexif() and not overlay.info.get("exif")
    plain = client.post("/v1/mottling", files={"image": ("a.jpg", jpeg, "image/jpeg")}).json()
    assert "overlay_png" not in plain and plain["score"] == body["score"]


def test_inference_runs_off_the_event_loop(client, jpeg):
    seen = {}
    analyzer = client.app.state.analyzer
    original = analyzer.score_photo

    def spy(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            seen["on_loop"] = True
        except RuntimeError:
            seen["on_loop"] = False
        seen["thread"] = threading.current_thread().name
        return original(*args, **kwargs)

    analyzer.score_photo = spy
    try:
        assert client.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}).status_code == 200
    finally:
        analyzer.score_photo = original
    assert seen["on_loop"] is False


def test_crt_matches_the_cli_contract_with_curve(client, finger_video):
    data, truth = finger_video
    resp = client.post("/v1/crt?curve=true", files={"video": ("refill.mp4", data, "video/mp4")},
                       data={"site": "finger"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert CLI_CRT_KEYS <= set(body)
    assert body["site"] == "finger" and body["threshold_s"] == 3.0
    assert body["status"] == "ok", body["reason"]
    assert abs(body["crt_s"] - truth["crt_s"]) < 1.0
    curve = body["curve"]
    assert len(curve["t_s"]) == len(curve["signal"]) > 10
    assert body["model_version"] == "0.0.1"


def test_assess_both_gives_results_and_the_flag(client, jpeg, finger_video):
    data, truth = finger_video
    resp = client.post("/v1/assess", files={"image": ("leg.jpg", jpeg), "video": ("r.mp4", data)},
                       data={"site": "finger"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert CLI_MOTTLING_KEYS <= set(body["mottling"]) and CLI_CRT_KEYS <= set(body["crt"])
    flag = body["hypoperfusion"]
    assert "mottling_score>=1" in flag["evaluated"]
    assert ("mottling_score>=1" in flag["criteria"]) == (body["mottling"]["score"] >= 1)
    if body["crt"]["status"] == "ok":
        assert "finger_crt>3s" in flag["evaluated"]
        assert ("finger_crt>3s" in flag["criteria"]) == (body["crt"]["crt_s"] > 3.0)
    assert flag["hypoperfusion"] == bool(flag["criteria"])


def test_assess_video_only_with_configured_thresholds(model_path, finger_video):
    data, truth = finger_video
    settings = ServerSettings(model_path=model_path, crt_finger_s=0.01)
    with TestClient(create_app(settings)) as c:
        body = c.post("/v1/assess", files={"video": ("r.mp4", data)}, data={"site": "finger"}).json()
        assert body["mottling"] is None and body["crt"]["threshold_s"] == 0.01
        if body["crt"]["status"] == "ok":
            assert body["hypoperfusion"]["criteria"] == ["finger_crt>0.01s"]


def test_model_endpoint_reports_card_metadata_and_limits(client):
    body = client.get("/v1/model").json()
    assert body["model"]["version"] == "0.0.1" and len(body["model"]["sha256"]) == 64
    assert body["model"]["metadata"]["mottling.input_size"] == "64"
    assert body["model"]["card"]["sha256"] == body["model"]["sha256"]
    assert body["limits"]["max_image_bytes"] == 20_000_000
    assert body["limits"]["max_video_bytes"] == 100_000_000 and body["limits"]["max_video_s"] == 60


def test_page_is_served_self_contained(client):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    html = resp.text
    assert 'accept="image/*" capture="environment"' in html and 'accept="video/*"' in html
    assert "Research use only, not a diagnosis" in html
    external = re.compile(r"https?://(?!www\.w3\.org/2000/svg)")  # the SVG namespace is no fetch
    for asset in ("/static/app.js", "/static/app.css"):
        r = client.get(asset)
        assert r.status_code == 200 and not external.search(r.text)
    assert not external.search(html)


def test_metrics_count_routes_statuses_latency_and_rejections(client, jpeg):
    client.post("/v1/mottling", files={"image": ("a.jpg", jpeg)})
    client.post("/v1/mottling", files={"image": ("a.txt", b"not an image at all")})
    text = client.get("/metrics").text
    assert 'mottling_http_requests_total{method="POST",route="/v1/mottling",status="200"}' in text
    assert 'mottling_rejections_total{route="/v1/mottling",status="415"}' in text
    assert 'mottling_http_request_duration_seconds_bucket{le="0.5",route="/v1/mottling"}' in text
    assert "mottling_http_requests_in_flight" in text and "mottling_model_ready 1.0" in text


def test_openapi_documents_the_multipart_bodies(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/crt"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["video", "site"] and body["properties"]["site"]["enum"] == ["finger", "knee"]
    assert "413" in schema["paths"]["/v1/mottling"]["post"]["responses"]


# -- errors ---------------------------------------------------------------------------------------
def test_400_for_corrupt_and_malformed_uploads(client, jpeg, finger_video):
    assert_error(client.post("/v1/mottling", files={"image": ("t.jpg", jpeg[: len(jpeg) // 3])}), 400)
    assert_error(client.post("/v1/mottling", files={"image": ("a.jpg", b"")}), 400, "empty")
    assert_error(client.post("/v1/crt", files={"video": ("a.mp4", b"")}, data={"site": "knee"}), 400, "empty")
    # every part broken: the assessment fails whole, with the first part's status
    assert_error(client.post("/v1/assess", files={"image": ("t.jpg", jpeg[:2000]),
                                                  "video": ("r.mp4", b"not a video")},
                             data={"site": "finger"}), 400)
    broken = b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\nabc"
    assert_error(client.post("/v1/mottling", content=broken,
                             headers={"content-type": "multipart/form-data; boundary=XyZ"}), 400)
    assert_error(client.post("/v1/mottling", content=b"x",
                             headers={"content-type": "multipart/form-data"}), 400, "boundary")


def test_413_streamed_without_content_length(model_path, jpeg):
    settings = ServerSettings(model_path=model_path, max_image_bytes=len(jpeg) - 1)
    with TestClient(create_app(settings)) as c:
        assert_error(c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}), 413, "limit")
        sent = []
        boundary = b"B0undary"

        def body():  # chunked: no Content-Length, the server must count for itself
            yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
            for _ in range(200):
                sent.append(1)
                yield b"\0" * 65536
            yield b"\r\n--" + boundary + b"--\r\n"

        resp = c.post("/v1/mottling", content=body(),
                      headers={"content-type": "multipart/form-data; boundary=B0undary"})
        assert_error(resp, 413)
        assert "content-length" not in {k.lower() for k in resp.request.headers}
        # a declared Content-Length over the body cap is refused before the body is read
        resp = c.post("/v1/mottling", content=b"--B\r\n", headers={
            "content-type": "multipart/form-data; boundary=B", "content-length": str(10**9)})
        assert_error(resp, 413)


def test_413_for_a_video_too_long_or_too_big(model_path, finger_video):
    data, truth = finger_video
    settings = ServerSettings(model_path=model_path, max_video_s=2.0, max_video_bytes=len(data) + 10)
    with TestClient(create_app(settings)) as c:
        assert_error(c.post("/v1/crt", files={"video": ("r.mp4", data)}, data={"site": "finger"}), 413)
        small = ServerSettings(model_path=model_path, max_video_bytes=len(data) // 2)
    with TestClient(create_app(small)) as c:
        assert_error(c.post("/v1/crt", files={"video": ("r.mp4", data)}, data={"site": "finger"}),
                     413, "video")


def test_413_for_too_many_pixels(model_path):
    big = Image.new("RGB", (1500, 1000), (200, 150, 140))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    settings = ServerSettings(model_path=model_path, max_image_pixels=1_000_000)
    with TestClient(create_app(settings)) as c:
        assert_error(c.post("/v1/mottling", files={"image": ("big.png", buf.getvalue())}), 413)


def test_415_for_wrong_media(client):
    assert_error(client.post("/v1/mottling", files={"image": ("a.txt", b"hello, this is text")}), 415)
    assert_error(client.post("/v1/mottling", json={"image": "abc"}), 415, "multipart")
    assert_error(client.post("/v1/crt", files={"video": ("a.mp4", b"\x00" * 4000)},
                             data={"site": "knee"}), 415)


def test_422_for_missing_or_invalid_fields(client, jpeg, finger_video):
    data, _ = finger_video
    assert_error(client.post("/v1/mottling", files={"photo": ("a.jpg", jpeg)}), 422, "image")
    assert_error(client.post("/v1/crt", files={"video": ("a.mp4", data)}), 422, "site")
    assert_error(client.post("/v1/crt", files={"video": ("a.mp4", data)}, data={"site": "toe"}), 422, "site")
    assert_error(client.post("/v1/crt", files={"video": ("a.mp4", data)},
                             data={"site": "finger", "roi": "1,2,-3"}), 422, "roi")
    assert_error(client.post("/v1/assess", files={"other": ("a.bin", b"x")}), 422)
    assert_error(client.post("/v1/assess?format=xml", files={"image": ("a.jpg", jpeg)}), 422)
    assert_error(client.get("/nope"), 404)


def test_503_when_the_model_cannot_load(tmp_path, finger_video):
    settings = ServerSettings(model_path=tmp_path / "missing.onnx")
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").status_code == 200          # alive...
        assert_error(c.get("/readyz"), 503, "not ready")     # ...but not ready
        assert_error(c.post("/v1/mottling", files={"image": ("a.jpg", b"x")}), 503, "model")
        assert_error(c.get("/v1/model"), 503)
        assert "mottling_model_ready 0.0" in c.get("/metrics").text
        # CRT needs no model, so it still answers
        data, _ = finger_video
        assert c.post("/v1/crt", files={"video": ("r.mp4", data)}, data={"site": "finger"}).status_code == 200


def test_api_key_401_403_and_open_ops(model_path, jpeg):
    settings = ServerSettings(model_path=model_path, api_key="s3cret")
    with TestClient(create_app(settings)) as c:
        assert_error(c.get("/v1/model"), 401, "api key")
        assert_error(c.get("/v1/model", headers={"X-API-Key": "wrong"}), 403)
        assert c.get("/v1/model", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200


def test_cors_only_for_configured_origins(model_path):
    settings = ServerSettings(model_path=model_path, cors_origins=["https://ward.example.org"])
    with TestClient(create_app(settings)) as c:
        pre = c.options("/v1/mottling", headers={"Origin": "https://ward.example.org",
                                                 "Access-Control-Request-Method": "POST"})
        assert pre.headers["access-control-allow-origin"] == "https://ward.example.org"
        assert "x-request-id" in pre.headers
        other = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_503_with_retry_after_when_too_many_uploads(model_path, jpeg):
    settings = ServerSettings(model_path=model_path, max_concurrent_uploads=2)
    with TestClient(create_app(settings)) as c:
        c.app.state.uploads.active = 2          # two uploads still streaming in
        resp = c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)})
        assert_error(resp, 503, "busy")
        assert resp.headers["retry-after"] == "2"
        c.app.state.uploads.active = 1
        assert c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}).status_code == 200
        assert c.app.state.uploads.active == 1   # the slot was given back


def test_503_when_the_upload_memory_budget_is_full(model_path, jpeg):
    settings = ServerSettings(model_path=model_path, max_buffered_bytes=len(jpeg) // 2)
    with TestClient(create_app(settings)) as c:
        assert_error(c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}), 503, "busy")
        assert c.app.state.uploads.budget.in_use == 0
        assert c.post("/v1/mottling", files={"image": ("a.jpg", jpeg[:1000])}).status_code == 400
        assert c.app.state.uploads.budget.in_use == 0   # given back after errors too


def test_budget_is_given_back_after_every_request(client, jpeg):
    client.post("/v1/mottling", files={"image": ("a.jpg", jpeg)})
    client.post("/v1/mottling", files={"image": ("a.jpg", b"junk")})
    client.post("/v1/assess", files={"image": ("a.jpg", jpeg)})
    assert client.app.state.uploads.budget.in_use == 0 and client.app.state.uploads.active == 0


def test_500_is_json_with_request_id_and_no_traceback(model_path, jpeg):
    with TestClient(create_app(ServerSettings(model_path=model_path)), raise_server_exceptions=False) as c:
        def boom(*args, **kwargs):
            raise RuntimeError("secret internals /home/user/patient.jpg")

        c.app.state.analyzer.score_photo = boom
        body = assert_error(c.post("/v1/mottling", files={"image": ("a.jpg", jpeg)}), 500)
        assert "secret" not in body["error"] and "patient" not in body["error"]
        assert 'route="/v1/mottling",status="500"' in c.get("/metrics").text


# -- nothing on disk --------------------------------------------------------------------------------
def test_uploads_are_never_written_to_disk(client, monkeypatch, tmp_path, finger_video):
    """Large parts (above Starlette's 1 MB spool size) stay in memory: creating a temp file fails."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the server tried to create a temporary file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, forbidden)
    before = set(os.listdir(tempfile.gettempdir()))
    noise = Image.effect_noise((1400, 1400), 80).convert("RGB")
    buf = io.BytesIO()
    noise.save(buf, format="JPEG", quality=95)
    assert len(buf.getvalue()) > 1_100_000

    # The guard works: Starlette's own request.form() spools this upload to disk and trips it.
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def spooling(request):
        form = await request.form()
        return PlainTextResponse(str(len(await form["image"].read())))

    with TestClient(Starlette(routes=[Route("/", spooling, methods=["POST"])])) as naive:
        with pytest.raises(AssertionError, match="temporary file"):
            naive.post("/", files={"image": ("big.jpg", buf.getvalue())})
    resp = client.post("/v1/mottling", files={"image": ("big.jpg", buf.getvalue(), "image/jpeg")})
    assert resp.status_code == 200, resp.text
    data, _ = finger_video
    resp = client.post("/v1/assess", files={"video": ("r.mp4", data), "image": ("big.jpg", buf.getvalue())},
                       data={"site": "finger"})
    assert resp.status_code == 200, resp.text
    assert set(os.listdir(tempfile.gettempdir())) - before == set()


def test_a_client_that_disconnects_mid_upload_gets_a_400_and_frees_the_budget():
    from starlette.requests import Request

    from mottling.errors import InputError
    from serving.uploads import UploadBudget, read_multipart

    messages = [{"type": "http.request", "body": b'--b\r\nContent-Disposition: form-data; name="image"; '
                 b'filename="a.jpg"\r\n\r\n' + b"\xff" * 1000, "more_body": True},
                {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"multipart/form-data; boundary=b")]}
    budget = UploadBudget(10_000)
    with pytest.raises(InputError, match="interrupted"):
        asyncio.run(read_multipart(Request(scope, receive), {"image": 5000}, 6000, budget))
    assert budget.in_use == 0


def test_a_route_works_on_its_own_app_through_its_dependencies(model_path):
    """The routes reach the app only through serving.deps, so one router can be mounted on a bare
    FastAPI app and given its analyser and settings by dependency overrides."""
    from fastapi import FastAPI

    from serving.analysis import Analyzer
    from serving.deps import get_analyzer, get_settings
    from serving.errors import install_error_handlers
    from serving.metrics import ServerMetrics
    from serving.routes import model as model_routes

    settings = ServerSettings(model_path=model_path, api_key="k", warmup=False)
    analyzer = Analyzer(settings)
    analyzer.load()
    bare = FastAPI()
    bare.state.analyzer = analyzer              # read by the error bodies (model_version)
    bare.state.metrics = ServerMetrics()
    install_error_handlers(bare)
    bare.include_router(model_routes.router)
    bare.dependency_overrides[get_settings] = lambda: settings
    bare.dependency_overrides[get_analyzer] = lambda: analyzer
    with TestClient(bare) as c:
        assert c.get("/v1/model").status_code == 401                  # the key dependency came along
        body = c.get("/v1/model", headers={"X-API-Key": "k"}).json()
        assert body["model"]["version"] == "0.0.1" and body["limits"]["max_image_bytes"] == 20_000_000
    analyzer.close()
