"""The Dockerfile's recipe, replayed without Docker so it cannot rot silently.

There is no Docker engine here. This test reads the Dockerfile, copies what its COPY lines copy into
a fresh build context, runs its ``pip install`` step in a clean virtualenv (a real ``pip install .``,
not editable), applies its ENV lines, and starts its CMD on loopback. Then it calls /healthz (with
the HEALTHCHECK's own command), the page and /v1/mottling, and checks torch is not installed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mottling.photo.model import DEFAULT_MODEL_NAME
from tests.serving_support import REPO, photo_jpeg, running_server, tiny_model

pytestmark = pytest.mark.slow
SHIPPED = DEFAULT_MODEL_NAME.removesuffix(".onnx")


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        op, _, args = line.partition(" ")
        instructions.append((op.upper(), args.strip()))
    return instructions


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the exec (JSON) form: {args}"
    return json.loads(args)


def test_recipe_installs_runtime_without_torch_and_serves(tmp_path):
    steps = parse_dockerfile(REPO / "Dockerfile")
    ops = [op for op, _ in steps]
    assert ops[0] == "FROM" and steps[0][1].startswith("python:3.11") and "slim" in steps[0][1]
    assert "USER" in ops and dict(steps)["USER"] not in ("root", "0")
    assert "HEALTHCHECK" in ops

    ctx = tmp_path / "app"            # stands for WORKDIR /app
    ctx.mkdir()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env_path = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    container_env: dict[str, str] = {}
    workdir = "/app"
    ran_install = False

    def host(p: str) -> str:
        return p.replace(workdir, str(ctx)) if p.startswith(workdir) else p

    for op, args in steps:
        if op == "WORKDIR":
            assert args == workdir
        elif op == "COPY":
            *sources, dest = shlex.split(args)
            for src in sources:
                target = ctx / dest if not dest.startswith("/") else Path(host(dest))
                source = REPO / src
                if source.is_dir():
                    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pt"))  # as .dockerignore
                else:
                    dest_file = target / source.name if dest.endswith("/") or dest in ("./", ".") else target
                    dest_file.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(source, dest_file)
        elif op == "RUN" and "pip install" in args:
            assert "[train" not in args and "torch" not in args and "-e " not in args
            # Exactly the image's command, with the venv's pip first on PATH. It downloads the
            # runtime wheels (~200 MB): this is the slowest test of the suite (~100 s, network-bound).
            subprocess.run(["bash", "-euo", "pipefail", "-c", args], cwd=ctx, check=True,
                           env={**os.environ, "PATH": env_path, "VIRTUAL_ENV": str(venv)},
                           stdout=subprocess.DEVNULL)
            ran_install = True
        elif op == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                container_env[key] = host(value)
    assert ran_install, "the Dockerfile has no pip install step"

    python = venv / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0, \
        "torch must not be in the runtime image"
    assert subprocess.run([str(python), "-c", "import mottling.photo.model, serving.app, onnxruntime"],
                          capture_output=True).returncode == 0

    # Until the shipped model is committed, stand in a contract-honouring tiny one under its name.
    model = Path(container_env["MOTTLING_MODEL_PATH"])
    if not model.exists():
        tiny_model_path = tiny_model(tmp_path / "tiny")
        shutil.copy(tiny_model_path, model)
        card = json.loads(tiny_model_path.with_name(tiny_model_path.stem + ".card.json").read_text())
        model.with_name(SHIPPED + ".card.json").write_text(json.dumps(card))

    cmd = exec_form(dict(steps)["CMD"])
    assert cmd[:2] == ["mottling", "serve"] and "--host" in cmd
    healthcheck = exec_form(dict(steps)["HEALTHCHECK"].split(" CMD ", 1)[1].strip())
    run_env = {**container_env, "PATH": env_path, "HOME": str(tmp_path)}
    with running_server(run_env, log_path=tmp_path / "server.log", command=[str(venv / "bin" / "mottling")],
                        cwd=ctx, clean_env=True) as (base, _proc):
        port = base.rsplit(":", 1)[1]
        probe = [str(python) if healthcheck[0] == "python" else healthcheck[0],
                 *[a.replace(":8000", f":{port}") for a in healthcheck[1:]]]
        assert subprocess.run(probe, env=run_env, timeout=30).returncode == 0
        assert httpx.get(base + "/healthz").json()["status"] == "alive"
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "capture=\"environment\"" in page.text
        assert httpx.get(base + "/static/app.js").status_code == 200   # package data was installed
        resp = httpx.post(base + "/v1/mottling", files={"image": ("leg.jpg", photo_jpeg(seed=4, score=2))},
                          timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["score"] in range(6)
