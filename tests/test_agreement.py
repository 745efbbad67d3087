"""``mottling agreement``: the figures are right on ratings whose agreement is known exactly."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from mottling import metrics
from mottling.agreement import compute_agreement, consensus_score, load_labels, match_paths
from mottling.batch.rows import empty_row, rows_to_table
from mottling.cli import main
from mottling.errors import InputError

N_PHOTOS, N_VIDEOS = 36, 12


def _dataset(tmp_path, model_offset_s=0.5):
    """Photos whose true score is known, rated by A (exact) and B (one off on every 4th photo);
    videos rated 2.0-4.2 s by both raters, measured by the model ``model_offset_s`` +-0.2 s late.
    One labelled video was rejected by the CRT module and one is not in the results at all."""
    rng = np.random.default_rng(0)
    truth = [k % 6 for k in range(N_PHOTOS)]
    model = list(truth)
    for k in range(0, N_PHOTOS, 6):
        model[k] = min(5, truth[k] + 1)
    rows, labels = [], []
    for k in range(N_PHOTOS):
        row = empty_row(f"trial/centre_{k % 2}/photo_{k:03d}.jpg")
        row.update(kind="photo", status="ok", score=model[k])
        rows.append(row)
        tone = 1 + k % 10
        b = truth[k] if k % 4 else max(0, truth[k] - 1)
        for rater, score in (("A", truth[k]), ("B", b)):
            labels.append({"path": f"centre_{k % 2}/photo_{k:03d}.jpg", "rater": rater,
                           "score": score, "skin_tone": tone, "centre": f"c{k % 2}"})
    crt_true = np.linspace(2.0, 4.2, N_VIDEOS)
    jitter = np.where(np.arange(N_VIDEOS) % 2 == 0, -0.2, 0.2)
    for k in range(N_VIDEOS):
        site = "finger" if k < N_VIDEOS // 2 else "knee"
        row = empty_row(f"trial/videos/refill_{k:02d}.mp4")
        row.update(kind="video", status="ok", site=site,
                   crt_s=float(crt_true[k] + model_offset_s + jitter[k]))
        rows.append(row)
        for rater, delta in (("A", -0.1), ("B", 0.1)):
            labels.append({"path": f"videos/refill_{k:02d}.mp4", "rater": rater,
                           "crt_s": round(float(crt_true[k] + delta), 6), "skin_tone": 3})
    rejected = empty_row("trial/videos/refill_rejected.mp4")
    rejected.update(kind="video", status="rejected", site="finger", reason="camera moved")
    rows.append(rejected)
    for rater in ("A", "B"):
        labels.append({"path": "videos/refill_rejected.mp4", "rater": rater, "crt_s": 2.5})
        labels.append({"path": "videos/never_scored.mp4", "rater": rater, "crt_s": 2.5})
    rng.shuffle(labels)
    results = tmp_path / "results.parquet"
    pq.write_table(rows_to_table(rows), results)
    labels_csv = tmp_path / "labels.csv"
    with labels_csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["path", "rater", "score", "crt_s", "skin_tone", "centre"])
        w.writeheader()
        w.writerows(labels)
    return {"results": results, "labels": labels_csv, "rows": rows, "truth": truth,
            "model": model, "crt_true": crt_true, "offset": model_offset_s, "jitter": jitter}


def test_score_agreement_matches_the_metrics_computed_by_hand(tmp_path):
    d = _dataset(tmp_path)
    ag = compute_agreement(d["rows"], load_labels(d["labels"]))
    labels = load_labels(d["labels"])
    cons = [consensus_score(labels.scores[f"centre_{k % 2}/photo_{k:03d}.jpg"].values())
            for k in range(N_PHOTOS)]
    m = ag.scores["model_vs_consensus"]
    assert m["n"] == N_PHOTOS
    assert m["qwk"] == pytest.approx(metrics.quadratic_weighted_kappa(cons, d["model"]))
    assert m["exact"] == pytest.approx(np.mean(np.array(cons) == np.array(d["model"])))
    assert np.array(m["confusion"]).sum() == N_PHOTOS
    vs_a = ag.scores["model_vs_rater"]["A"]
    assert vs_a["exact"] == pytest.approx(1 - N_PHOTOS // 6 / N_PHOTOS)
    # raters against each other: B is one lower on every 4th photo, never on score 0
    ab = ag.scores["rater_vs_rater"]["A vs B"]
    expected = np.mean([(k % 4 != 0) or d["truth"][k] == 0 for k in range(N_PHOTOS)])
    assert ab["n"] == N_PHOTOS and ab["exact"] == pytest.approx(expected)
    assert set(ag.scores["by_group"]["skin_tone"]) == {"monk_1-3", "monk_4-7", "monk_8-10"}
    assert sum(g["n"] for g in ag.scores["by_group"]["skin_tone"].values()) == N_PHOTOS
    assert set(ag.scores["by_group"]["centre"]) == {"c0", "c1"}


def test_crt_bland_altman_icc_and_threshold_decision(tmp_path):
    d = _dataset(tmp_path, model_offset_s=0.5)
    ag = compute_agreement(d["rows"], load_labels(d["labels"]))
    c = ag.crt["model_vs_consensus"]
    assert c["n"] == N_VIDEOS                      # the rejected video is not a number
    diffs = d["offset"] + d["jitter"]              # consensus = the true value (mean of +-0.1)
    assert c["bias_s"] == pytest.approx(diffs.mean())
    assert c["loa_high_s"] - c["loa_low_s"] == pytest.approx(2 * 1.96 * diffs.std(ddof=1))
    cons = d["crt_true"]
    model = cons + diffs
    sites = ["finger"] * (N_VIDEOS // 2) + ["knee"] * (N_VIDEOS // 2)
    limit = np.array([3.0 if s == "finger" else 4.0 for s in sites])
    assert c["threshold_agreement"] == pytest.approx(np.mean((cons > limit) == (model > limit)))
    assert c["icc_2_1"] == pytest.approx(metrics.icc_2_1(cons, model))
    # raters are compared on every video they both rated whose site is known, including the one
    # the model rejected (both said 2.5 s); the video missing from the results has no site
    ab = ag.crt["rater_vs_rater"]["A vs B"]
    assert ab["n"] == N_VIDEOS + 1
    assert ab["bias_s"] == pytest.approx(0.2 * N_VIDEOS / (N_VIDEOS + 1))
    assert set(ag.crt["by_group"]["site"]) == {"finger", "knee"}
    assert ag.coverage["crt_model_status"] == {"ok": N_VIDEOS, "rejected": 1, "missing": 1}


def test_a_perfect_model_agrees_perfectly(tmp_path):
    d = _dataset(tmp_path, model_offset_s=0.0)
    for row in d["rows"]:
        if row["kind"] == "photo":
            k = int(row["path"][-7:-4])
            row["score"] = d["truth"][k]
    ag = compute_agreement(d["rows"], load_labels(d["labels"]))
    assert ag.scores["model_vs_rater"]["A"]["qwk"] == pytest.approx(1.0)
    assert ag.scores["model_vs_rater"]["A"]["exact"] == 1.0


def test_cli_writes_report_json_and_plots(tmp_path, capsys):
    d = _dataset(tmp_path)
    out = tmp_path / "report"
    assert main(["agreement", str(d["results"]), "--labels", str(d["labels"]),
                 "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for words in ("Mottling score", "QWK", "Bland-Altman", "A vs B", "monk_8-10", "finger",
                  "rejected 1", "Confusion matrix"):
        assert words in report, words
    for png in ("confusion_model_vs_consensus.png", "bland_altman_crt.png",
                "score_qwk_by_skin_tone.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "agreement.json").read_text())
    assert data["scores"]["model_vs_consensus"]["n"] == N_PHOTOS
    assert "QWK" in capsys.readouterr().out


def test_bad_labels_are_one_clear_error(tmp_path, capsys):
    d = _dataset(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,rater,score\nx.jpg,A,7\n")
    with pytest.raises(InputError, match="line 2: score 7 is not one of 0-5"):
        load_labels(bad)
    bad.write_text("file,who\nx.jpg,A\n")
    assert main(["agreement", str(d["results"]), "--labels", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert "needs columns path, rater" in capsys.readouterr().err


def test_paths_match_by_suffix_or_unique_file_name():
    got = match_paths(["trial/a/x.jpg", "trial/b/x.jpg", "trial/b/y.jpg"],
                      ["a/x.jpg", "x.jpg", "y.jpg", "z.jpg"])
    assert got == {"a/x.jpg": "trial/a/x.jpg", "y.jpg": "trial/b/y.jpg"}
