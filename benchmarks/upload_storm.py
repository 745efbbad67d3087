"""50 concurrent maximum-size uploads against a real ``mottling serve``: does it stay up, and how
much memory does it take at the peak?

Sends N (default 50) photos at once, each just under the image limit (20 MB by default: a noisy,
high-quality JPEG), plus a second wave of N uploads over the limit that must be refused with 413
while they stream. Samples the server's resident memory (process tree) every 20 ms and prints the
peak, the status codes, and whether /healthz still answers.

Then, against a fresh server with its default upload timeouts and every upload slot (8 here) taken
by hostile clients (raw sockets: half send headers and a few body bytes then stop, half trickle one
byte a second), it prints how long /readyz says busy and uploads get 503, and when each hostile
client was cut off with a 408 (target: every slot free within 30 s).

    python benchmarks/upload_storm.py [--n 50] [--model PATH] [--only-stalled] [--no-stalled]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._server import pick_model, serve  # noqa: E402

MB = 1_000_000


def max_size_jpeg(limit_bytes: int) -> bytes:
    """A valid JPEG as close under ``limit_bytes`` as a few tries get (noise compresses badly)."""
    rng = np.random.default_rng(0)
    side = 2000
    best = b""
    for _ in range(8):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=98)
        data = buf.getvalue()
        if len(data) <= limit_bytes:
            best = data
            side = int(side * (limit_bytes / len(data)) ** 0.5 * 0.995)
        else:
            side = int(side * (limit_bytes / len(data)) ** 0.5 * 0.98)
        if limit_bytes * 0.97 <= len(best) <= limit_bytes:
            break
    return best


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def rss(self) -> int:
        total = 0
        for p in [self.root, *self.root.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)


async def storm(url: str, body: bytes, n: int) -> tuple[Counter, float]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def one():
            try:
                r = await client.post("/v1/mottling", files={"image": ("big.jpg", body, "image/jpeg")})
                return r.status_code
            except httpx.HTTPError as err:  # a 413 may close the socket while we still send
                return type(err).__name__

        t0 = time.perf_counter()
        codes = await asyncio.gather(*(one() for _ in range(n)))
        return Counter(codes), time.perf_counter() - t0


STALL_HEAD = (b"POST /v1/mottling HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 5000000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"image\"; "
              b"filename=\"a.jpg\"\r\n\r\n\xff\xd8")


def _hostile_client(port: int, trickle: bool, started: float, cut_at: list[float]) -> None:
    """Headers and a few body bytes, then silence (or one byte a second); records the 408."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(STALL_HEAD)
        sock.settimeout(1.0)
        while time.perf_counter() - started < 120:
            try:
                answer = sock.recv(4096)
            except socket.timeout:
                if trickle:
                    try:
                        sock.sendall(b"\x00")
                    except OSError:
                        break
                continue
            except OSError:
                break
            if answer.startswith(b"HTTP/1.1 408"):
                cut_at.append(time.perf_counter() - started)
            break


def stalled_slots(model: Path, slots: int = 8) -> None:
    with serve(model, 1, {"MOTTLING_MAX_CONCURRENT_UPLOADS": str(slots)}) as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        started = time.perf_counter()
        cut_at: list[float] = []
        clients = [threading.Thread(target=_hostile_client, args=(port, i % 2 == 1, started, cut_at),
                                    daemon=True) for i in range(slots)]
        for c in clients:
            c.start()
        time.sleep(1.0)
        busy = httpx.get(url + "/readyz", timeout=10)
        refused = httpx.post(url + "/v1/mottling", files={"image": ("a.jpg", b"x")}, timeout=10)
        while httpx.get(url + "/readyz", timeout=10).status_code != 200:
            if time.perf_counter() - started > 120:
                break
            time.sleep(0.1)
        freed = time.perf_counter() - started
        for c in clients:
            c.join(10)
        ok = httpx.post(url + "/v1/mottling", files={"image": ("a.jpg", b"x")}, timeout=10).status_code
    print(f"stalled clients: {slots} slots taken ({slots // 2} silent, {slots - slots // 2} trickling "
          f"1 B/s); after 1 s /readyz {busy.status_code}, an upload {refused.status_code}")
    cuts = sorted(cut_at)
    print(f"  /readyz 200 again after {freed:.1f} s; {len(cuts)} of {slots} cut off with 408 at "
          + ", ".join(f"{t:.1f}" for t in cuts) + " s; a new upload then gets " + str(ok)
          + " (not 503: a slot was free; the 1-byte test body is no photo); target <= 30 s: "
          + ("met" if freed <= 30 and len(cuts) == slots else "MISSED"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--limit-mb", type=float, default=20.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--only-stalled", action="store_true", help="only the stalled-client phase")
    ap.add_argument("--no-stalled", action="store_true", help="skip the stalled-client phase")
    args = ap.parse_args()
    limit = int(args.limit_mb * MB)

    model = pick_model(args.model)
    if args.only_stalled:
        stalled_slots(model)
        return
    photo = max_size_jpeg(limit - 2048)
    over = photo + b"\0" * (limit // 4)  # 25% over the limit
    with Image.open(io.BytesIO(photo)) as im:
        dims = im.size
    print(f"model {model.name}; {args.n} concurrent uploads of {len(photo) / MB:.1f} MB "
          f"({dims[0]}x{dims[1]} JPEG, limit {limit / MB:g} MB), then {args.n} of {len(over) / MB:.1f} MB",
          flush=True)

    with serve(model, 1, {"MOTTLING_MAX_IMAGE_BYTES": str(limit)}) as (url, proc):
        sampler = RssSampler(proc.pid)
        idle = sampler.rss()
        sampler.start()
        codes, wall = asyncio.run(storm(url, photo, args.n))
        peak_valid = sampler.peak
        codes_over, wall_over = asyncio.run(storm(url, over, args.n))
        sampler.stop.set()
        sampler.join()
        alive = proc.poll() is None and httpx.get(url + "/healthz", timeout=10).status_code == 200
        after = sampler.rss()

    print(f"max-size wave : {dict(codes)} in {wall:.1f} s")
    print(f"over-limit wave: {dict(codes_over)} in {wall_over:.1f} s")
    print(f"server RSS: idle {idle / 2**20:.0f} MiB, peak {peak_valid / 2**20:.0f} MiB during the max-size "
          f"wave, peak {sampler.peak / 2**20:.0f} MiB overall, {after / 2**20:.0f} MiB after")
    print(f"server alive and /healthz 200 afterwards: {alive}")
    if not args.no_stalled:
        stalled_slots(model)


if __name__ == "__main__":
    main()
