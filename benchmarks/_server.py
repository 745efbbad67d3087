"""Shared by the HTTP benchmarks: pick a model, make a photo, run ``mottling serve`` on loopback."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "mottling-v0.3.0.onnx"


def pick_model(path: str | None) -> Path:
    """The model to serve: ``--model``, else the shipped one, else the tests' tiny contract model."""
    if path:
        return Path(path)
    if SHIPPED.exists():
        return SHIPPED
    sys.path.insert(0, str(REPO))
    from tests.tiny_model import build_tiny_model

    out = Path(tempfile.mkdtemp(prefix="mottling-bench-model-"))
    print(f"note: {SHIPPED.name} not found; serving the tests' tiny contract model instead", flush=True)
    return build_tiny_model(out, name="tiny-bench-v0.0.1", input_size=64)


def photo_jpeg(size: int, seed: int = 1, quality: int = 90) -> bytes:
    from mottling.synth.images import render_photo

    image = render_photo(seed=seed, score=3, skin_tone=5, size=size).image
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(model: Path, workers: int = 1, extra_env: dict[str, str] | None = None,
          cwd: Path | None = None):
    """A real uvicorn process (``mottling serve``) on a free loopback port; yields (url, Popen).

    ``cwd`` (default: the repository) is where the server runs; with ``python -c`` its folder
    comes first on the import path, so another checkout's folder serves that checkout's code."""
    port = free_port()
    env = {**os.environ, "MOTTLING_MODEL_PATH": str(model), **(extra_env or {})}
    cmd = [sys.executable, "-c", "import sys; from mottling.cli import main; sys.exit(main(sys.argv[1:]))",
           "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, cwd=str(cwd or REPO))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        ready = 0
        while ready < workers * 3:  # several ready answers: every worker has loaded the model
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready in 120 s")
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    ready += 1
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # refused or 503 while the model loads: don't spin on the server
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
