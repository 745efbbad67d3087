"""``mottling score``: the JSON contract, bad images, overlays and privacy of the output."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mottling.cli import main
from mottling.photo.model import DEFAULT_MODEL_NAME
from tests.photos import encode, leg_photo

pytest.importorskip("onnx", reason="building the test model needs the onnx package")
from tests.tiny_model import build_tiny_model  # noqa: E402

CONTRACT_KEYS = ["path", "score", "probabilities", "expected_score", "confidence", "quality",
               "model_version", "model_sha256"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i, (score, tone) in enumerate([(0, 2), (5, 9), (3, 6)]):
        p = folder / f"leg{i}.jpg"
        p.write_bytes(encode(leg_photo(40 + i, score, tone, 384), "JPEG", quality=90))
        paths.append(str(p))
    return paths


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_has_one_object_per_image_with_exactly_the_design_keys(model, photos, capsys):
    rc, out, err = run(["score", *photos, "--json", "--model", model], capsys)
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["path"] for r in rows] == photos
    for row in rows:
        assert list(row) == CONTRACT_KEYS
        assert isinstance(row["score"], int) and 0 <= row["score"] <= 5
        assert len(row["probabilities"]) == 6 and abs(sum(row["probabilities"]) - 1) < 1e-9
        assert row["score"] == max(range(6), key=lambda k: row["probabilities"][k])
        assert 0 <= row["confidence"] <= 1 and isinstance(row["quality"], list)
        assert row["model_version"] == "0.0.1" and len(row["model_sha256"]) == 64


def test_bad_images_get_one_line_each_and_the_rest_are_scored(model, photos, tmp_path, capsys):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(Path(photos[1]).read_bytes()[:3000])
    tiny = tmp_path / "dot.png"
    tiny.write_bytes(encode(Image.new("RGB", (1, 1)), "PNG"))
    missing = tmp_path / "missing.jpg"
    argv = [photos[0], str(empty), str(text), photos[1], str(truncated), str(tiny), str(missing),
            photos[2]]
    rc, out, err = run(["score", *argv, "--json", "--model", model], capsys)
    assert rc == 1
    assert [r["path"] for r in json.loads(out)] == photos
    lines = err.strip().splitlines()
    assert len(lines) == 5, err
    for line, bad in zip(lines, [empty, text, truncated, tiny, missing]):
        assert line.startswith(f"error: {bad}: ")
    assert "Traceback" not in err


def test_human_readable_output(model, photos, capsys):
    rc, out, _ = run(["score", photos[0], "--model", model], capsys)
    assert rc == 0
    assert out.startswith(f"{photos[0]}: score ") and "confidence" in out


def _oriented_jpeg_with_gps(path: Path) -> None:
    stored = leg_photo(5, 4, 7, 384).rotate(90, expand=True)   # stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 6                                            # ...displayed upright
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    path.write_bytes(encode(stored, "JPEG", exif=exif.tobytes(), quality=92))


def test_exif_orientation_and_no_gps_anywhere_in_the_output(model, tmp_path, capsys):
    photo = tmp_path / "phone.jpg"
    _oriented_jpeg_with_gps(photo)
    with Image.open(photo) as raw:
        stored_size = raw.size
        assert raw.getexif().get_ifd(0x8825)
    overlay = tmp_path / "phone-overlay.png"
    rc, out, err = run(["score", str(photo), "--json", "--overlay", str(overlay),
                        "--model", model], capsys)
    assert rc == 0, err
    rows = json.loads(out)
    assert list(rows[0]) == CONTRACT_KEYS and rows[0]["path"] == str(photo)
    body = json.dumps([{k: v for k, v in r.items() if k != "path"} for r in rows])
    for needle in ("GPS", "PhoneMaker", "48.0", "51.0", "Exif", "exif"):
        assert needle not in body
    data = overlay.read_bytes()
    assert b"Exif" not in data and b"PhoneMaker" not in data
    with Image.open(io.BytesIO(data)) as drawn:
        assert drawn.size == (stored_size[1], stored_size[0])   # upright, as displayed
        assert "exif" not in drawn.info and len(drawn.getexif()) == 0


def test_overlay_folder_for_several_images(model, photos, tmp_path, capsys):
    other = tmp_path / "elsewhere"
    other.mkdir()
    same_stem = other / Path(photos[0]).name
    shutil.copy(photos[0], same_stem)
    out_dir = tmp_path / "overlays"
    rc, _, err = run(["score", photos[0], str(same_stem), photos[1], "--overlay", str(out_dir),
                      "--model", model], capsys)
    assert rc == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["leg0-2.overlay.png", "leg0.overlay.png", "leg1.overlay.png"]
    with Image.open(out_dir / "leg1.overlay.png") as im:
        assert im.format == "PNG" and im.size == Image.open(photos[1]).size


def test_overlay_png_needs_a_single_image(model, photos, tmp_path, capsys):
    rc, _, err = run(["score", *photos[:2], "--overlay", str(tmp_path / "one.png"),
                      "--model", model], capsys)
    assert rc == 2 and "folder" in err


def test_tampered_model_stops_before_scoring(model, photos, tmp_path, capsys):
    copy = tmp_path / Path(model).name
    data = bytearray(Path(model).read_bytes())
    data[-10] ^= 0xFF
    copy.write_bytes(bytes(data))
    shutil.copy(Path(model).with_name(Path(model).stem + ".card.json"), tmp_path)
    rc, out, err = run(["score", photos[0], "--json", "--model", str(copy)], capsys)
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and "does not match its card" in err
    assert len(err.strip().splitlines()) == 1


def test_console_script_exit_codes(model, photos, tmp_path):
    exe = Path(sys.executable).with_name("mottling")
    if not exe.exists():
        pytest.skip("the mottling console script is not installed beside this interpreter")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\x00" * 10)
    ok = subprocess.run([str(exe), "score", photos[0], "--json", "--model", model],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and len(json.loads(ok.stdout)) == 1
    mixed = subprocess.run([str(exe), "score", str(bad), photos[0], "--json", "--model", model],
                           capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 1
    assert len(json.loads(mixed.stdout)) == 1
    assert mixed.stderr.strip().startswith(f"error: {bad}: ")


SHIPPED = Path(__file__).resolve().parents[1] / "models" / DEFAULT_MODEL_NAME


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped model is not in models/ yet")
def test_default_model_scores_without_model_option(photos, capsys, monkeypatch):
    monkeypatch.delenv("MOTTLING_MODEL", raising=False)
    monkeypatch.delenv("MOTTLING_MODEL_PATH", raising=False)
    rc, out, err = run(["score", photos[0], photos[1], "--json"], capsys)
    assert rc == 0, err
    rows = json.loads(out)
    assert [list(r) for r in rows] == [CONTRACT_KEYS] * 2
    card = json.loads(SHIPPED.with_suffix(".card.json").read_text())
    assert {r["model_version"] for r in rows} == {card["semver"]}
    assert {r["model_sha256"] for r in rows} == {card["sha256"]}
