"""The real ``mottling serve`` process on loopback: concurrent uploads and a streamed oversize body."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.serving_support import photo_jpeg, running_server, tiny_model

pytestmark = pytest.mark.slow


def test_real_server_concurrent_uploads_and_streamed_413(tmp_path):
    env = {"MOTTLING_MODEL_PATH": str(tiny_model(tmp_path / "model")),
           "MOTTLING_MAX_IMAGE_BYTES": "2000000"}
    photos = [photo_jpeg(seed=s, score=s % 6) for s in range(8)]
    with running_server(env, log_path=tmp_path / "server.log") as (base, proc):
        with httpx.Client(base_url=base, timeout=60) as client:
            def post(data: bytes) -> httpx.Response:
                return client.post("/v1/mottling", files={"image": ("leg.jpg", data, "image/jpeg")})

            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(post, photos))
            assert [r.status_code for r in responses] == [200] * 8
            ids = {r.json()["request_id"] for r in responses}
            assert len(ids) == 8 and all(r.headers["x-request-id"] in ids for r in responses)

            # A chunked body with no Content-Length: the server stops it at the cap.
            def body():
                yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n\r\n'
                for _ in range(64):
                    yield b"\xff" * 65536
                yield b"\r\n--b--\r\n"

            try:
                resp = client.post("/v1/mottling", content=body(),
                                   headers={"content-type": "multipart/form-data; boundary=b"})
                assert resp.status_code == 413 and "limit" in resp.json()["error"]
            except httpx.HTTPError:
                pass  # the server may close the connection while the client is still sending
            assert client.get("/healthz").status_code == 200 and proc.poll() is None
            metrics = client.get("/metrics").text
            assert 'route="/v1/mottling",status="200"} 8.0' in metrics
            assert 'mottling_rejections_total{route="/v1/mottling",status="413"} 1.0' in metrics
