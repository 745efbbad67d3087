"""The rater page in a real headless Chromium against a real ``mottling rate`` process.

An archive of 1,000 photos (50 of them inside a zip) and 100 videos: it must open in under 5 s and
page without a visible wait; scoring, zoom, back-and-change and frame-exact video marks are driven
with the keyboard, and what the rater file holds is checked against what was pressed.
"""

from __future__ import annotations

import statistics
import time

import psutil
import pytest

from tests.rate_support import VFR_PTS, chromium_browser, make_archive, rate_server, read_rows

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("rate_archive")
    return make_archive(root, n_photos=1000, n_videos=100, zipped_photos=50)


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


def _watch(page, base):
    seen = {"urls": [], "problems": []}
    page.on("request", lambda r: seen["urls"].append(r.url))
    page.on("console", lambda m: seen["problems"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["problems"].append(str(e)))
    return seen


def test_large_archive_opens_fast_pages_without_wait_and_records_every_key(archive, browser,
                                                                          tmp_path):
    out = tmp_path / "ratings"
    t_launch = time.monotonic()
    with rate_server([archive], "alice", out, tmp_path / "server.log", seed=11) as (base, proc, start_s):
        cpu = psutil.Process(proc.pid).cpu_times()
        start_cpu_s = cpu.user + cpu.system      # the start's own work, whatever the machine's load
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        seen = _watch(page, base)
        t_goto = time.monotonic()
        page.goto(base + "/rate/")
        page.wait_for_function("() => window.__rate && window.__rate.firstPhotoMs !== null", timeout=10_000)
        open_s = time.monotonic() - t_goto
        launch_to_photo_s = time.monotonic() - t_launch
        first_ms = page.evaluate("window.__rate.firstPhotoMs")
        print(f"\narchive of 1000 photos + 100 videos: server up in {start_s:.2f} s "
              f"({start_cpu_s:.2f} s CPU: imports and indexing), first photo {first_ms:.0f} ms "
              f"after navigation ({open_s:.2f} s in the test), {launch_to_photo_s:.2f} s from "
              f"launching the command")
        assert first_ms < 5000 and open_s < 5.0
        # Starting the command costs the server this much CPU; on a machine shared with other
        # jobs the wall time above can be longer (it is printed, not asserted).
        assert start_cpu_s < 4.0
        assert page.text_content("#photo-progress") == "0/1000"
        assert page.text_content("#video-progress") == "0/100"

        # -- 30 photos at a brisk rater's pace: each next photo must already be there
        given = []
        for k in range(30):
            score = (k * 7) % 6
            page.keyboard.press(str(score))
            given.append(score)
            # Predicates are functions, not bare expressions: Playwright re-evaluates a bare
            # expression with eval() on every poll after the first, which the page's CSP
            # (no unsafe-eval) refuses, so a condition not true at once failed the test.
            page.wait_for_function(f"() => window.__rate.timings.length === {k + 1}")
            page.wait_for_timeout(120)
        timings = page.evaluate("window.__rate.timings")
        cold = page.evaluate("window.__rate.shownCold")
        p95 = sorted(timings)[int(0.95 * len(timings)) - 1]
        print(f"paging: median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
              f"max {max(timings):.1f} ms from key to next photo on screen; "
              f"{30 - cold}/30 already prefetched")
        assert cold <= 1, "the next photo was not prefetched"
        assert p95 < 100, timings

        # -- zoom and pan, then back to the last photo and change its score
        page.keyboard.press("+")
        page.keyboard.press("+")
        assert "scale(1.5625)" in page.get_attribute("#photo-stage img", "style")
        page.keyboard.press("z")
        page.keyboard.press("ArrowLeft")
        assert page.text_content("#photo-current") == f"Your answer: {given[-1]}"
        page.keyboard.press("u")                       # photo 30 is now "unreadable"
        page.wait_for_selector("#save-status[data-unsaved='0']")
        assert page.text_content("#photo-progress") == "30/1000"

        # -- videos: step on the clip's own timestamps, mark, compute, save
        page.keyboard.press("t")
        page.wait_for_selector("#frame-info:has-text('frame 1 / 12')")
        t_s = [(p - VFR_PTS[0]) / 90000 for p in VFR_PTS]
        for k in (1, 2, 3):
            page.keyboard.press("ArrowRight")
            page.wait_for_selector(f"#frame-info:has-text('frame {k + 1} / 12 · {t_s[k]:.3f} s')")
        # the frame on screen is frame 3 (grey level 20 + 20*3 = 80)
        page.wait_for_function("() => document.querySelector('#video-stage img')?.alt === 'Frame 4'")
        page.keyboard.press("p")
        page.keyboard.press("Shift+ArrowRight")                     # frame 13 -> clamps at 11
        page.wait_for_selector("#frame-info:has-text('frame 12 / 12')")
        page.keyboard.press("Home")
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("r")                                    # release at frame 5
        for _ in range(4):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("c")                                    # colour back at frame 9
        assert page.text_content("#crt-out") == f"CRT {t_s[9] - t_s[5]:.3f} s"
        assert page.locator("#mark-ticks span").count() == 3
        page.keyboard.press("Enter")
        assert "Choose the site" in page.text_content("#error")
        page.keyboard.press("k")
        page.keyboard.press("Enter")
        page.wait_for_selector("#video-pos:has-text('Video 2 of 100')")
        # A rater sees the video before judging it: a video left before its first frame arrives
        # is never shown, so its opening is never timed (the test raced that).
        page.wait_for_function("() => window.__rate.videoOpenMs.length >= 2", timeout=10_000,
                               polling=100)
        page.select_option("#unusable-reason", "camera moved")
        page.locator("#btn-unusable").click()
        page.wait_for_selector("#video-pos:has-text('Video 3 of 100')")
        page.wait_for_selector("#save-status[data-unsaved='0']")
        assert page.text_content("#video-progress") == "2/100"
        # the third video's first frame is timed when it reaches the screen, which can come just
        # after its position label; wait for it (a video that never shows still fails here)
        # (polled on a timer: Playwright's default polling waits for animation frames, which
        # headless Chromium can withhold for seconds on a page where nothing changes)
        page.wait_for_function("() => window.__rate.videoOpenMs.length >= 3", timeout=10_000,
                               polling=100)
        opens = page.evaluate("window.__rate.videoOpenMs")
        print(f"videos: first frame on screen {opens[0]:.0f} ms after opening the first video, "
              f"{opens[1]:.0f} and {opens[2]:.0f} ms for the next two (prepared ahead)")
        assert len(opens) == 3 and max(opens[1:]) < 500
        assert not seen["problems"], seen["problems"]
        html = page.content()
        session_text = page.evaluate("fetch('/rate/api/session').then(r => r.text())")

    # nothing revealed a file name, a folder or a patient to the rater
    for text in [*seen["urls"], html, session_text]:
        for word in ("patient_", "centre_", "trial", ".jpg", ".mp4", "extra.zip", "late/"):
            assert word not in text, (word, text[:200])
    assert all(u.startswith(base) or u.startswith("data:") for u in seen["urls"])

    rows = read_rows(out / "alice.csv")
    photos = [r for r in rows if r["kind"] == "photo"]
    assert len(photos) == 30 and len({r["path"] for r in photos}) == 30
    by_order = sorted(photos, key=lambda r: int(r["order"]))
    assert [int(r["order"]) for r in by_order] == list(range(1, 31))
    assert [r["score"] for r in by_order[:29]] == [str(s) for s in given[:29]]
    assert by_order[29]["score"] == "" and by_order[29]["unreadable"] == "1"
    assert by_order[29]["revisions"] == "1"
    assert all(r["path"].startswith("trial/") and r["seed"] == "11" for r in rows)
    videos = sorted((r for r in rows if r["kind"] == "video"), key=lambda r: int(r["order"]))
    assert [v["order"] for v in videos] == ["1", "2"]
    marked, broken = videos
    assert (marked["press_frame"], marked["release_frame"], marked["refill_frame"]) == ("3", "5", "9")
    assert float(marked["release_s"]) == pytest.approx(t_s[5], abs=1e-6)
    assert float(marked["crt_s"]) == pytest.approx(t_s[9] - t_s[5], abs=1e-6)
    assert marked["site"] == "knee" and marked["frames"] == "12"
    assert broken["unusable"] == "1" and broken["reason"] == "camera moved" and broken["crt_s"] == ""
