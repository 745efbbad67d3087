"""The rater page inside ``mottling serve`` with ``MOTTLING_API_KEY`` set: the key that guards
``/v1`` guards every rater route too, so nobody who merely reaches the server can read the photos
or rate under any name; the page asks for the key once and sends it as a header."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import httpx
import pytest

from tests.rate_support import CHROMIUM, CHROMIUM_ARGS, make_archive
from tests.serving_support import running_server, tiny_model

KEY = "ward-7-secret"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("rate_auth")
    archive = make_archive(root, n_photos=3, n_videos=1)
    env = {"MOTTLING_MODEL_PATH": str(tiny_model(root / "model")), "MOTTLING_API_KEY": KEY,
           "MOTTLING_RATER_ARCHIVE": str(archive), "MOTTLING_RATER_OUT": str(root / "ratings")}
    with running_server(env, root / "server.log") as (base, _proc):
        yield base, root / "ratings"


def test_every_rater_api_route_needs_the_key(served):
    base, out = served
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/rate/").status_code == 200            # the page itself holds no data
        good = {"X-API-Key": KEY}
        session = client.get("/rate/api/session", params={"rater": "lead"}, headers=good).json()
        photo_id, video_id = session["photos"][0]["id"], session["videos"][0]["id"]
        answer = {"answer_id": str(uuid.uuid4()), "id": photo_id, "score": 4}
        routes = [("GET", "/rate/api/config", None), ("GET", "/rate/api/session", None),
                  ("GET", f"/rate/api/photo/{photo_id}", None),
                  ("GET", f"/rate/api/video/{video_id}", None),
                  ("GET", f"/rate/api/video/{video_id}/frame/0", None),
                  ("POST", "/rate/api/answer", answer)]
        for method, path, body in routes:
            for headers, status in (({}, 401), ({"X-API-Key": "guess"}, 403)):
                r = client.request(method, path, params={"rater": "mallory"}, json=body,
                                   headers=headers)
                assert r.status_code == status, (path, headers, r.status_code)
                assert "API key" in r.json()["error"]
        assert not list(out.glob("mallory*"))                        # nothing was stored
        assert client.get(f"/rate/api/photo/{photo_id}", params={"rater": "lead"},
                          headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.browser
def test_the_page_asks_for_the_key_once_then_rates(served):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    base, out = served
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            problems = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(base + "/rate/")
            page.wait_for_selector("#key-form:not([hidden])", timeout=10_000)
            assert page.is_hidden("#login")                          # no name before the key
            page.fill("#key-input", KEY)
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("#login:not([hidden])", timeout=10_000)
            page.fill("#rater-input", "keyed")
            page.click("#login button[type=submit]")
            page.wait_for_function(
                "() => { const i = document.querySelector('#photo-stage img');"
                " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
            page.keyboard.press("3")
            page.wait_for_function("() => document.querySelector('#save-status').dataset.unsaved"
                                   " === '0' && window.__rate.sent === 1", timeout=10_000)
            assert page.evaluate("sessionStorage.getItem('mottling-api-key')") == KEY
            assert KEY not in page.url
            assert not problems, problems
        finally:
            browser.close()
    with open(out / "keyed.csv", newline="") as fh:
        assert [r["score"] for r in csv.DictReader(fh)] == ["3"]
