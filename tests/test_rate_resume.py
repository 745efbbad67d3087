"""Nothing given is lost and nothing is stored twice: the server is killed (SIGKILL) mid-session,
the rater goes on answering, closes the tab, and the answers arrive once the server is back.
Also the page on a phone: taps, pinch zoom and frame stepping at a 390x844 touch viewport."""

from __future__ import annotations

import sqlite3

import pytest

from tests.rate_support import VFR_PTS, chromium_browser, make_archive, rate_server, read_rows
from tests.serving_support import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_archive(tmp_path_factory.mktemp("rate_small"), n_photos=40, n_videos=3)


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


def _answer(page, score: int, shown_before: int) -> None:
    page.keyboard.press(str(score))
    page.wait_for_function(f"() => window.__rate.timings.length === {shown_before + 1}")


def test_killed_server_and_closed_tab_lose_nothing_and_store_nothing_twice(archive, browser,
                                                                         tmp_path):
    out, port, log = tmp_path / "ratings", free_port(), tmp_path / "server.log"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    given: list[int] = []
    with rate_server([archive], "bob", out, log, port=port, seed=5) as (base, proc, _):
        page = context.new_page()
        page.goto(base + "/rate/")
        page.wait_for_function("() => window.__rate && window.__rate.firstPhotoMs !== null")
        for k in range(10):
            given.append(k % 6)
            _answer(page, given[-1], k)
        page.wait_for_selector("#save-status[data-unsaved='0']")
        proc.kill()                                   # SIGKILL: no shutdown hook runs
        proc.wait()
        for k in range(10, 13):                       # the server is gone; the rater goes on
            given.append((k * 5) % 6)
            _answer(page, given[-1], k)
        page.wait_for_selector("#save-status[data-unsaved='3']")
        page.wait_for_selector("#save-status:has-text('not saved yet')", timeout=10_000)
        assert len(read_rows(out / "bob.csv")) == 10
        page.close()                                  # and closes the tab
    with rate_server([archive], "bob", out, log, port=port) as (base, _proc, _):
        page = context.new_page()                     # same browser profile, later
        page.goto(base + "/rate/")
        page.wait_for_selector("#save-status[data-unsaved='0']", timeout=15_000)
        page.wait_for_selector("#photo-pos:has-text('Photo 14 of 40')")   # picks up where it stopped
        for k in range(2):
            given.append(3)
            _answer(page, 3, k)
        page.wait_for_selector("#save-status[data-unsaved='0']")
        assert page.text_content("#photo-progress") == "15/40"
    rows = read_rows(out / "bob.csv")
    assert len(rows) == 15 and len({r["path"] for r in rows}) == 15
    assert [r["score"] for r in sorted(rows, key=lambda r: int(r["order"]))] == [str(s) for s in given]
    with sqlite3.connect(out / "bob.answers.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM answers").fetchone() == (15, 15)
    context.close()


def test_phone_taps_pinch_zoom_and_frame_steps(archive, browser, tmp_path):
    out = tmp_path / "ratings"
    with rate_server([archive], "carol", out, tmp_path / "server.log") as (base, _p, _):
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True)
        page = context.new_page()
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(base + "/rate/")
        page.wait_for_function("() => window.__rate && window.__rate.firstPhotoMs !== null")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390   # no sideways scroll
        for name in ("#score-table button[data-score='2']", "#btn-unreadable"):
            box = page.locator(name).bounding_box()
            assert box["height"] >= 44 and box["width"] >= 60, (name, box)    # thumb-sized
        stage = page.locator("#photo-stage").bounding_box()
        assert stage["height"] > 300
        # pinch: two touch pointers moving apart zoom the photo in
        cx, cy = stage["width"] / 2, stage["height"] / 2
        for pid, x in ((1, cx - 20), (2, cx + 20)):
            page.dispatch_event("#photo-stage", "pointerdown",
                                {"pointerId": pid, "clientX": x, "clientY": cy, "bubbles": True})
        for step in range(1, 4):
            page.dispatch_event("#photo-stage", "pointermove",
                                {"pointerId": 2, "clientX": cx + 20 + 20 * step, "clientY": cy,
                                 "bubbles": True})
        scale = page.evaluate("new DOMMatrix(getComputedStyle(document.querySelector("
                              "'#photo-stage img')).transform).a")
        assert scale > 1.5
        page.locator("#score-table button[data-score='2']").tap()
        page.locator("#btn-unreadable").tap()
        page.wait_for_selector("#save-status[data-unsaved='0']")
        assert page.text_content("#photo-progress") == "2/40"

        page.locator("#tab-videos").tap()
        page.wait_for_selector("#frame-info:has-text('frame 1 / 12')")
        page.locator("[data-step='1']").tap()
        page.locator("[data-step='1']").tap()
        page.locator("#mark-release").tap()
        page.locator("[data-step='10']").tap()              # clamps at the last frame
        page.wait_for_selector("#frame-info:has-text('frame 12 / 12')")
        page.locator("#mark-refill").tap()
        page.locator("#site-choice label:has-text('Finger')").tap()
        page.locator("#video-save").tap()
        page.wait_for_selector("#video-pos:has-text('Video 2 of 3')")
        page.wait_for_selector("#save-status[data-unsaved='0']")
        shot = tmp_path / "rater-390x844.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert not problems, problems
        context.close()
    rows = read_rows(out / "carol.csv")
    video = next(r for r in rows if r["kind"] == "video")
    t_s = [(p - VFR_PTS[0]) / 90000 for p in VFR_PTS]
    assert video["site"] == "finger"
    assert float(video["crt_s"]) == pytest.approx(t_s[11] - t_s[2], abs=1e-6)
    assert sorted(r["score"] or r["unreadable"] for r in rows if r["kind"] == "photo") == ["1", "2"]
