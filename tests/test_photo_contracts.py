"""One home for each fact: the model-path setting, ROI parsing, and no second definition anywhere."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from mottling.crt.roi import parse_roi
from mottling.errors import InputError
from mottling.photo import model as photo_model

REPO = Path(__file__).resolve().parents[1]

# fact -> the one module allowed to define it (assign it at module level, or def it)
HOMES = {
    "SITES": "mottling/scale.py",
    "N_CLASSES": "mottling/scale.py",
    "N_SCORES": None,               # an old second name for N_CLASSES: imported, never defined
    "SHEET_COLOURS": "mottling/synth/nuisances.py",
    "smoothstep": "mottling/synth/patterns.py",
    "_smoothstep": None,
    "parse_roi": "mottling/crt/roi.py",
    "_parse_roi": None,
    "INPUT_NAME": "mottling/photo/model.py",
    "MODEL_ENV": "mottling/photo/model.py",
    "DEFAULT_DRAFT_SIZE": "mottling/photo/decode.py",
    "open_photo": None,             # evaluation once had its own photo decoder
}


def _definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for root in ("mottling", "serving", "training"):
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            rel = path.relative_to(REPO).as_posix()
            for node in tree.body:
                names: list[str] = []
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names = [node.name]
                elif isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names = [node.target.id]
                for name in names:
                    found.setdefault(name, []).append(rel)
    return found


def test_each_fact_is_defined_in_one_module():
    found = _definitions()
    wrong = {name: found.get(name, []) for name, home in HOMES.items()
             if found.get(name, []) != ([home] if home else [])}
    assert not wrong, f"defined elsewhere than its home: {wrong}"


def test_the_output_names_export_writes_are_the_ones_inference_reads():
    pytest.importorskip("torch")
    from training import export

    assert tuple(export.OUTPUT_NAMES) == photo_model.OUTPUT_NAMES


@pytest.mark.parametrize("text,expected", [
    (None, None), ("", None), ("  ", None), ("1,2,30,40", (1, 2, 30, 40)), ("0, 0, 5, 5", (0, 0, 5, 5)),
])
def test_parse_roi_accepts(text, expected):
    assert parse_roi(text) == expected


@pytest.mark.parametrize("text", ["1,2,3", "1,2,3,4,5", "a,b,c,d", "-1,0,5,5", "0,-1,5,5",
                                  "0,0,0,5", "0,0,5,-5", "1.5,2,3,4"])
def test_parse_roi_refuses_with_an_input_error(text):
    with pytest.raises(InputError, match="X,Y,W,H"):
        parse_roi(text)


def test_cli_and_http_share_the_roi_rule():
    import click

    from mottling.cli._common import click_roi as cli_parse

    assert cli_parse("3,4,10,12") == (3, 4, 10, 12)
    with pytest.raises(click.BadParameter, match="X,Y,W,H"):
        cli_parse("-1,0,5,5")


def test_model_path_setting(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("MOTTLING_MODEL", raising=False)
    monkeypatch.delenv("MOTTLING_MODEL_PATH", raising=False)
    shipped = photo_model.default_model_path()
    assert shipped == REPO / "models" / photo_model.DEFAULT_MODEL_NAME

    monkeypatch.setenv("MOTTLING_MODEL_PATH", str(tmp_path / "new.onnx"))
    monkeypatch.setenv("MOTTLING_MODEL", str(tmp_path / "old.onnx"))
    assert photo_model.default_model_path() == tmp_path / "new.onnx"   # the documented name wins

    monkeypatch.delenv("MOTTLING_MODEL_PATH")
    with caplog.at_level(logging.WARNING, logger="mottling.photo.model"):
        assert photo_model.default_model_path() == tmp_path / "old.onnx"
    assert "MOTTLING_MODEL is deprecated" in caplog.text


def test_the_server_reads_the_same_variable(monkeypatch, tmp_path):
    from serving.settings import ServerSettings

    monkeypatch.setenv("MOTTLING_MODEL_PATH", str(tmp_path / "m.onnx"))
    assert ServerSettings().model_path == tmp_path / "m.onnx"


def test_evaluation_refuses_an_onnx_model_that_fails_its_hash_check(tmp_path):
    """``mottling evaluate`` loads .onnx files through ``load_model``, as every front end does."""
    pytest.importorskip("torch")
    import json

    from mottling.errors import ModelError
    from tests.tiny_model import build_tiny_model
    from training.evaluate import load_predictor

    path = build_tiny_model(tmp_path, input_size=64)
    assert load_predictor(path, threads=1).spec.input_size == 64
    card_path = path.with_name(path.stem + ".card.json")
    card = json.loads(card_path.read_text())
    card["sha256"] = "0" * 64
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not match its card"):
        load_predictor(path, threads=1)
