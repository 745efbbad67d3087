"""Shared by the serving tests: a tiny model, generated media and a real uvicorn process."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# Debian's Chromium, started the way this machine's closed network needs (no background traffic).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

REPO = Path(__file__).resolve().parents[1]


def tiny_model(out_dir: Path) -> Path:
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(out_dir, name="tiny-serving-v0.0.1", input_size=64, semver="0.0.1")


def photo_jpeg(seed: int = 1, score: int = 3, skin_tone: int = 4, size: int = 256,
               exif_gps: bool = False) -> bytes:
    """A generated leg photo as JPEG bytes, optionally with EXIF GPS tags that must never leak."""
    from PIL import Image

    from mottling.synth.images import render_photo

    image = render_photo(seed=seed, score=score, skin_tone=skin_tone, size=size).image
    buf = io.BytesIO()
    if exif_gps:
        exif = Image.Exif()
        exif[0x010F] = "LeakyPhoneMaker"          # Make
        gps = exif.get_ifd(0x8825)
        gps[1] = "N"
        gps[2] = (48.0, 51.0, 29.0)
        gps[3] = "E"
        gps[4] = (2.0, 17.0, 40.0)
        image.save(buf, format="JPEG", quality=90, exif=exif)
    else:
        image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def refill_video(out_dir: Path, site: str = "finger", seed: int = 3, **overrides) -> tuple[Path, dict]:
    """A generated refill video with a known CRT; returns its path and truth record."""
    from mottling.synth.videos import RefillSpec, render_refill_video

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"refill-{site}-{seed}.mp4"
    spec = RefillSpec(seed=seed, site=site, **overrides)
    truth = render_refill_video(path, spec)
    return path, truth


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(env: dict[str, str], log_path: Path, python: str = sys.executable,
                   workers: int = 1, cwd: Path | None = None, startup_s: float = 60.0,
                   command: list[str] | None = None, clean_env: bool = False):
    """``mottling serve`` in a subprocess on a free loopback port; yields (base URL, process).

    ``command`` replaces the way ``mottling`` is invoked (e.g. a venv's console script).
    """
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")} \
        if clean_env else dict(os.environ)
    full_env = {**base_env, **env}
    prefix = command or [python, "-c",
                         "import sys; from mottling.cli import main; sys.exit(main(sys.argv[1:]))"]
    cmd = [*prefix, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--log-level", "warning"]
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(cmd, env=full_env, cwd=str(cwd or REPO), stdout=log_file,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                out = Path(log_path).read_text(errors="replace")
                raise RuntimeError(f"server exited with {proc.returncode}:\n{out[-3000:]}")
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready in time")
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
