"""The labelling workflow end to end on a generated archive whose truth is known.

Two raters score the photos and mark the refill videos through the page (keyboard only); then
``mottling batch``, ``mottling agreement`` and ``mottling consensus`` run on the files exactly as
the page left them, with no hand editing, and their figures are checked against the known answers.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pytest

from mottling import metrics
from mottling.cli import main
from tests.rate_support import CHROMIUM, CHROMIUM_ARGS, rate_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
N_PHOTOS = 12
BOB_FRAMES_LATE = 3      # bob marks the colour back three frames after alice


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """``trial/photos`` (generated photos, no masks) and ``trial/videos``; truth kept outside."""
    from mottling.synth.refill_curves import RefillCurve
    from mottling.synth.videos import RefillSpec, render_refill_video

    root = tmp_path_factory.mktemp("study")
    assert main(["synth", "images", "--n", str(N_PHOTOS), "--out", str(root / "data"),
                 "--seed", "3", "--size", "160"]) == 0
    (root / "trial").mkdir()
    shutil.move(str(root / "data" / "images"), str(root / "trial" / "photos"))
    truth = {f"trial/photos/{Path(r['path']).name}": int(r["score"])
             for r in _rows(root / "data" / "manifest.csv")}
    videos = {}
    # the knee clip has a variable frame rate (jittered intervals, dropped frames, a slow stretch)
    for i, (site, tau, vfr) in enumerate((("finger", 0.9, False), ("knee", 1.2, True))):
        rel = f"trial/videos/{site}_{i}.mp4"
        spec = RefillSpec(seed=70 + i, site=site, width=128, height=96, pre_press_s=0.6,
                          press_duration_s=1.0, post_release_s=5.0,
                          curve=RefillCurve("mono", tau_s=tau), vfr=vfr,
                          vfr_jitter=0.3 if vfr else 0.0, vfr_drop=0.08 if vfr else 0.0,
                          vfr_slow_segment=vfr)
        videos[rel] = render_refill_video(root / rel, spec)
    return {"root": root, "truth": truth, "videos": videos}


def _bob_score(k: int, path: str, truth: dict) -> int | None:
    """bob: one step worse on every third photo, and photo 1 unreadable."""
    if k == 1:
        return None
    return min(5, truth[path] + 1) if k % 3 == 0 else truth[path]


def _go_to(page, frame: int) -> None:
    page.keyboard.press("Home")
    for _ in range(frame // 10):
        page.keyboard.press("Shift+ArrowRight")
    for _ in range(frame % 10):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector(f"#frame-info:has-text('frame {frame + 1} /')")


def _rate(browser, study, rater: str, seed: int, out: Path, tmp_path: Path) -> dict:
    """Answer every item through the page; returns {path: what was given}."""
    truth, order = study["truth"], sorted(study["truth"])
    given = {}
    with rate_server([study["root"] / "trial"], rater, out, tmp_path / f"{rater}.log",
                     seed=seed) as (base, _p, _):
        secret = bytes.fromhex(json.loads((out / f"{rater}.session.json").read_text())["secret"])
        path_of = {hmac.new(secret, p.encode(), hashlib.sha256).hexdigest()[:20]: p
                   for p in [*order, *study["videos"]]}
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + "/rate/")
        page.wait_for_function("() => window.__rate && window.__rate.firstPhotoMs !== null")
        for k in range(N_PHOTOS):
            src = page.get_attribute("#photo-stage img", "src")
            path = path_of[src.split("/photo/")[1].split("?")[0]]
            score = truth[path] if rater == "alice" else _bob_score(order.index(path), path, truth)
            given[path] = score
            page.keyboard.press("u" if score is None else str(score))
            if k < N_PHOTOS - 1:
                page.wait_for_function(f"() => window.__rate.timings.length === {k + 1}")
        page.wait_for_selector(f"#photo-progress:has-text('{N_PHOTOS}/{N_PHOTOS}')")

        page.keyboard.press("t")
        for k in range(len(study["videos"])):
            page.wait_for_selector(f"#video-pos:has-text('Video {k + 1} of')")
            page.wait_for_selector("#video-stage img")
            item_id = page.get_attribute("#video-stage img", "src").split("/video/")[1].split("/")[0]
            path = path_of[item_id]
            t_s = page.evaluate(f"fetch('/rate/api/video/{item_id}').then(r => r.json())")["t_s"]
            rec = study["videos"][path]
            nearest = lambda t: min(range(len(t_s)), key=lambda i: abs(t_s[i] - t))  # noqa: E731
            release = nearest(rec["release_s"])
            refill = nearest(rec["release_s"] + rec["crt_s"]) + (BOB_FRAMES_LATE if rater == "bob" else 0)
            _go_to(page, nearest(rec["press_start_s"]))
            page.keyboard.press("p")
            _go_to(page, release)
            page.keyboard.press("r")
            _go_to(page, refill)
            page.keyboard.press("c")
            page.keyboard.press("f" if rec["site"] == "finger" else "k")
            page.keyboard.press("Enter")
            given[path] = t_s[refill] - t_s[release]
            given[f"{path} largest frame interval"] = max(b - a for a, b in zip(t_s, t_s[1:]))
        page.wait_for_selector(f"#video-progress:has-text('2/2')")
        page.wait_for_selector("#save-status[data-unsaved='0']")
        page.close()
    return given


def test_two_raters_then_agreement_report_and_consensus_manifest(study, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    out, root, truth = tmp_path / "ratings", study["root"], study["truth"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            alice = _rate(browser, study, "alice", 1, out, tmp_path)
            bob = _rate(browser, study, "bob", 2, out, tmp_path)
        finally:
            browser.close()

    # the rater files: paths inside the archive only; the marks match the video's truth
    for rater in ("alice", "bob"):
        rows = _rows(out / f"{rater}.csv")
        assert len(rows) == N_PHOTOS + 2 and all(r["path"].startswith("trial/") for r in rows)
    for path, rec in study["videos"].items():
        # the nearest frame is at most half an interval from each true moment
        gap = alice[f"{path} largest frame interval"]
        marked = next(r for r in _rows(out / "alice.csv") if r["path"] == path)
        assert abs(float(marked["crt_s"]) - rec["crt_s"]) <= gap + 1e-6
        assert abs(float(marked["release_s"]) - rec["release_s"]) <= gap / 2 + 1e-6
        assert int(marked["frames"]) == rec["frames"]          # every frame, none invented
        assert marked["site"] == rec["site"]

    # model results, then the agreement report straight from the two rater files
    results = tmp_path / "results.parquet"
    assert main(["batch", str(root / "trial"), "--out", str(results),
                 "--site-from-path", "(finger|knee)"]) == 0
    report = tmp_path / "report"
    assert main(["agreement", str(results), "--labels", str(out / "alice.csv"),
                 "--labels", str(out / "bob.csv"), "--out", str(report)]) == 0
    ag = json.loads((report / "agreement.json").read_text())
    both = [p for p in truth if bob[p] is not None]
    print(f"\nCRT marked by alice vs truth: " + ", ".join(
        f"{p.split('/')[-1]} {float(r['crt_s']) - study['videos'][p]['crt_s']:+.4f} s"
        for p in study["videos"] for r in _rows(out / "alice.csv") if r["path"] == p))
    pair = ag["scores"]["rater_vs_rater"]["alice vs bob"]
    assert pair["n"] == len(both)
    assert pair["qwk"] == pytest.approx(metrics.quadratic_weighted_kappa(
        [alice[p] for p in both], [bob[p] for p in both]))
    assert ag["scores"]["model_vs_rater"]["alice"]["n"] == N_PHOTOS
    crt_pair = ag["crt"]["rater_vs_rater"]["alice vs bob"]
    assert crt_pair["n"] == 2
    late = [bob[p] - alice[p] for p in study["videos"]]   # three frames, whatever their length
    assert crt_pair["bias_s"] == pytest.approx(sum(late) / 2, abs=1e-5)
    assert all(0.08 < d < 0.2 for d in late)
    assert sum(ag["coverage"]["crt_model_status"].values()) == 2
    assert "alice vs bob" in (report / "report.md").read_text()
    release = ag["crt"]["release_model_vs_raters"]          # the CRT module's release vs the marks
    assert release["n"] == ag["coverage"]["crt_model_status"].get("ok", 0) >= 1
    print(f"model release vs raters' marked release: n={release['n']}, "
          f"median |error| {release['median_abs_error_s']:.3f} s")

    # the consensus manifest: agreed photos with their true score, every disagreement listed
    cons = tmp_path / "consensus"
    assert main(["consensus", str(out / "alice.csv"), str(out / "bob.csv"), "--out", str(cons),
                 "--root", str(root), "--meta", str(root / "data" / "manifest.csv")]) == 0
    manifest = _rows(cons / "manifest.csv")
    ties = {r["path"]: r for r in _rows(cons / "ties.csv")}
    agreed = {p for p in truth if bob[p] == alice[p]}
    assert {r["archive_path"] for r in manifest} == agreed
    assert set(ties) == set(truth) - agreed
    for row in manifest:
        assert int(row["score"]) == truth[row["archive_path"]]
        assert row["rater_alice"] == row["rater_bob"] == row["score"]
        assert row["patient_id"] and row["skin_tone"]                  # carried from --meta
        assert (cons / row["path"]).is_file()                         # opens from the manifest
    assert any("unreadable" in r["answers"] for r in ties.values())
    crt = {r["archive_path"]: r for r in _rows(cons / "crt_consensus.csv")}
    for path in study["videos"]:
        assert float(crt[path]["crt_s"]) == pytest.approx((alice[path] + bob[path]) / 2, abs=1e-6)
    torch_data = pytest.importorskip("training.data")
    assert len(torch_data.read_manifest(cons / "manifest.csv")) == len(agreed)
