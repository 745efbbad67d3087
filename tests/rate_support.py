"""Shared by the rater tests: cheap archives (tiny JPEGs, short tiny videos) and a real
``mottling rate`` process on a loopback port."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.serving_support import CHROMIUM, CHROMIUM_ARGS, REPO, free_port
# A variable-rate clip: frame k is shown at VFR_PTS[k] / 90000 s and has grey level 20 + 20 k.
VFR_PTS = (0, 2700, 6300, 9000, 13500, 16200, 21600, 24300, 27000, 33300, 36000, 40500)


def tiny_jpeg(k: int, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(k)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=70)
    return buf.getvalue()


def vfr_video(path: Path, pts: tuple[int, ...] = VFR_PTS, size: int = 64) -> list[float]:
    """An H.264 MP4 with the given presentation times (1/90000 s); returns them in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 90000)
        stream.codec_context.time_base = Fraction(1, 90000)
        stream.options = {"crf": "0", "preset": "ultrafast", "bf": "0"}
        for k, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(
                np.full((size, size, 3), 20 + 20 * k, dtype=np.uint8), format="rgb24")
            frame.pts = p
            frame.time_base = Fraction(1, 90000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return [(p - pts[0]) / 90000 for p in pts]


def make_archive(root: Path, n_photos: int, n_videos: int, zipped_photos: int = 0) -> Path:
    """``root/trial/`` with photos in two centre folders, the last ``zipped_photos`` of them in
    ``trial/extra.zip``, videos (copies of one VFR clip) and a text file that is not media."""
    trial = root / "trial"
    (trial / "videos").mkdir(parents=True, exist_ok=True)
    loose = n_photos - zipped_photos
    for k in range(loose):
        folder = trial / f"centre_{k % 2}"
        folder.mkdir(exist_ok=True)
        (folder / f"patient_{k:04d}.jpg").write_bytes(tiny_jpeg(k))
    if zipped_photos:
        with zipfile.ZipFile(trial / "extra.zip", "w") as zf:
            for k in range(loose, n_photos):
                zf.writestr(f"late/patient_{k:04d}.jpg", tiny_jpeg(k))
    if n_videos:
        first = trial / "videos" / "refill_000.mp4"
        vfr_video(first)
        for k in range(1, n_videos):
            shutil.copy(first, trial / "videos" / f"refill_{k:03d}.mp4")
    (trial / "notes.txt").write_text("not media\n")
    return trial


@contextlib.contextmanager
def rate_server(archives: list[Path], rater: str, out_dir: Path, log_path: Path,
                port: int | None = None, seed: int | None = None, startup_s: float = 30.0):
    """``mottling rate`` in a subprocess on 127.0.0.1; yields (base URL, process, start seconds)."""
    port = port or free_port()
    cmd = [sys.executable, "-c", "import sys; from mottling.cli import main; sys.exit(main(sys.argv[1:]))",
           "rate", *map(str, archives), "--rater", rater, "--out", str(out_dir),
           "--host", "127.0.0.1", "--port", str(port)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = open(log_path, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rate server exited with {proc.returncode}:\n"
                                   + Path(log_path).read_text(errors="replace")[-3000:])
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - t0 > startup_s:
                raise RuntimeError("rate server did not start in time")
            time.sleep(0.05)
        yield base, proc, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@contextlib.contextmanager
def chromium_browser():
    """Debian's Chromium under Playwright, or a skip where it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
