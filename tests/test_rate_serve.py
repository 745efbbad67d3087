"""The rater page inside ``mottling serve``: on only when ``MOTTLING_RATER_ARCHIVE`` is set, each
rater named on the page, answers in ``MOTTLING_RATER_OUT``."""

from __future__ import annotations

import csv
import uuid

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import ServerSettings
from tests.rate_support import make_archive
from tests.serving_support import tiny_model


def test_serve_mounts_the_rater_page_only_when_configured(tmp_path, monkeypatch):
    model = tiny_model(tmp_path / "model")
    monkeypatch.delenv("MOTTLING_RATER_ARCHIVE", raising=False)
    with TestClient(create_app(ServerSettings(model_path=model))) as client:
        assert client.get("/rate/api/config").status_code == 404

    archive = make_archive(tmp_path, n_photos=4, n_videos=1)
    monkeypatch.setenv("MOTTLING_RATER_ARCHIVE", str(archive))
    monkeypatch.setenv("MOTTLING_RATER_OUT", str(tmp_path / "ratings"))
    with TestClient(create_app(ServerSettings(model_path=model))) as client:
        page = client.get("/rate/")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/rate/api/config").json()["fixed_rater"] is None
        assert client.get("/rate/api/session").status_code == 400        # who is rating?
        session = client.get("/rate/api/session", params={"rater": "erin"}).json()
        assert len(session["photos"]) == 4 and len(session["videos"]) == 1
        photo = client.get(f"/rate/api/photo/{session['photos'][0]['id']}", params={"rater": "erin"})
        assert photo.headers["content-type"] == "image/jpeg"
        saved = client.post("/rate/api/answer", params={"rater": "erin"},
                            json={"answer_id": str(uuid.uuid4()), "id": session["photos"][0]["id"],
                                  "score": 5})
        assert saved.status_code == 200 and saved.json()["answers_stored"] == 1
        assert client.get("/rate/static/../app.py").status_code == 404
        assert client.get("/readyz").status_code == 200                  # the service is intact
    with open(tmp_path / "ratings" / "erin.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["rater"], r["score"]) for r in rows] == [("erin", "5")]
