"""The bedside page in a real headless Chromium against a real ``mottling serve`` process.

Uploads a generated leg photo and a generated refill video the way a phone would, reads what the
page rendered (score, overlay, CRT, curve with its release marker, hypoperfusion flag) and saves a
screenshot at a phone's viewport under the pytest tmp dir.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.serving_support import (CHROMIUM, CHROMIUM_ARGS, photo_jpeg, refill_video,
                                   running_server, tiny_model)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("bedside")
    photo = root / "leg.jpg"
    photo.write_bytes(photo_jpeg(seed=7, score=3, skin_tone=5, size=384))
    dark = Image.open(photo).point(lambda v: v // 8)
    dark_photo = root / "dark.jpg"
    dark.save(dark_photo, quality=90)
    video, truth = refill_video(root / "videos", site="finger", seed=21)
    return {"model": tiny_model(root / "model"), "photo": photo, "dark_photo": dark_photo,
            "video": video, "truth": truth, "root": root}


def test_phone_uploads_photo_and_video_and_reads_results(media, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")

    env = {"MOTTLING_MODEL_PATH": str(media["model"])}
    with running_server(env, log_path=tmp_path / "server.log") as (base, _proc), \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                          is_mobile=True, has_touch=True)
            page = context.new_page()
            requests, problems = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            page.goto(base + "/")
            page.wait_for_selector("#server-status:has-text('Ready')", timeout=15_000)
            assert "Research use only, not a diagnosis" in page.text_content("#ruo")
            assert page.get_attribute("#photo-input", "capture") == "environment"

            # photo -> score, overlay and flag
            page.set_input_files("#photo-input", str(media["photo"]))
            page.wait_for_selector("#mottling-result:not([hidden]), #photo-error:not([hidden])", timeout=30_000)
            assert page.is_hidden("#photo-error"), page.text_content("#photo-error")
            score = int(page.text_content("#score-value"))
            assert 0 <= score <= 5
            assert page.text_content("#score-name").startswith(f"Score {score}:")
            page.wait_for_function("document.getElementById('overlay-img').naturalWidth > 0")
            assert page.locator("#probs > div").count() == 6
            flag_after_photo = page.text_content("#flag-value")
            assert ("Yes" in flag_after_photo) == (score >= 1)

            # knee/finger switch, then the refill video -> CRT, curve and release marker
            page.click("#site-switch label:has-text('Knee')")
            assert page.is_checked("input[value=knee]")
            page.click("#site-switch label:has-text('Finger')")
            page.set_input_files("#video-input", str(media["video"]))
            page.wait_for_selector("#crt-result:not([hidden]), #video-error:not([hidden])", timeout=60_000)
            assert page.is_hidden("#video-error"), page.text_content("#video-error")
            crt_text = page.text_content("#crt-value")
            assert crt_text.startswith("CRT "), (crt_text, page.text_content("#crt-meta"))
            crt_s = float(crt_text.split()[1])
            assert abs(crt_s - media["truth"]["crt_s"]) < 1.0
            assert page.locator("#crt-plot svg polyline.signal").count() == 1
            assert page.locator("#crt-plot svg polyline.fit").count() == 1
            assert page.locator("#crt-plot svg line.release-marker").count() == 1
            verdict = page.text_content("#crt-verdict")
            lo, hi = (float(v) for v in re.search(r"95% interval ([\d.]+)–([\d.]+) s",
                                                  page.text_content("#crt-meta")).groups())
            # An interval across the threshold is shown as uncertain (the page rounds to 0.1 s,
            # so an end within rounding of 3 s could go either way).
            assert verdict.startswith("prolonged" if crt_s > 3.0 else "normal"), verdict
            if min(abs(lo - 3.0), abs(hi - 3.0)) > 0.05:
                spans = lo < 3.0 < hi
                assert verdict.endswith(" (uncertain)") == spans, (verdict, lo, hi)
                assert ("across the threshold" in page.text_content("#crt-meta")) == spans
            criteria = page.text_content("#flag-criteria")
            assert "mottling score ≥ 1" in criteria and "finger CRT > 3 s" in criteria

            shot = tmp_path / "bedside-390x844.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
            keep = media["root"] / shot.name  # kept with the session's tmp dirs for a look
            shutil.copy(shot, keep)

            # a photo taken in the dark: the warning is shown in plain words
            from mottling.results import IMAGE_QUALITY_MESSAGES

            page.set_input_files("#photo-input", str(media["dark_photo"]))
            page.wait_for_selector("#photo-warnings li", timeout=30_000)
            assert IMAGE_QUALITY_MESSAGES["too_dark"] in page.text_content("#photo-warnings")

            assert not problems, problems
            assert all(url.startswith(base) or url.startswith("data:") for url in requests), requests

            # a file that is not a photo: the server's message is shown, with its request id
            page.set_input_files("#photo-input", files=[
                {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo at all"}])
            page.wait_for_selector("#photo-error:not([hidden])", timeout=15_000)
            message = page.text_content("#photo-error")
            assert "not an image" in message and "request" in message
        finally:
            browser.close()
