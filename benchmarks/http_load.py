"""Bounded load test of POST /v1/mottling against a real uvicorn process on loopback.

Prints sustained requests/s and p50/p99 latency with 1 and 2 workers, and the HTTP overhead: the
same work (decode, predict, JSON) called in-process, side by side, at concurrency 1 (latency) and at
saturation (throughput), and in CPU spent per request. The load generator shares the machine's
cores with the server, so the wall-clock ratios are pessimistic on a small box; the CPU ratio is not
affected by the client and is steadier when other work shares the machine.

    python benchmarks/http_load.py [--duration 15] [--concurrency 4] [--size 768] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._server import photo_jpeg, pick_model, serve  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def cpu_s(proc: psutil.Process | None) -> float:
    """User + system CPU seconds of a process and its children (uvicorn workers)."""
    if proc is None:
        return 0.0
    procs = [proc, *proc.children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def closed_loop(call, concurrency: int, duration_s: float, server: psutil.Process | None = None) -> dict:
    """``concurrency`` threads call ``call()`` back to back for ``duration_s``; latencies in ms.

    Also the CPU spent per request: by the server process tree when ``server`` is given, else by
    this process (the in-process baseline). CPU is steadier than wall time on a shared machine.
    """
    me = psutil.Process()
    cpu0 = cpu_s(server) if server else cpu_s(me)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + duration_s

    def worker():
        local, bad = [], 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            ok = call()
            local.append((time.perf_counter() - t0) * 1000)
            bad += not ok
        with lock:
            latencies.extend(local)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cpu = (cpu_s(server) if server else cpu_s(me)) - cpu0
    return {"n": len(latencies), "errors": errors[0], "rps": len(latencies) / elapsed,
            "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 99),
            "cpu_ms": 1000 * cpu / max(1, len(latencies))}


def http_caller(url: str, photo: bytes):
    local = threading.local()

    def call() -> bool:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
        resp = client.post("/v1/mottling", files={"image": ("leg.jpg", photo, "image/jpeg")})
        return resp.status_code == 200

    return call


def inprocess_caller(model_path: Path, photo: bytes):
    from mottling.photo.decode import decode_image
    from mottling.photo.model import load_model

    model = load_model(model_path)
    model.predict([decode_image(photo)])

    def call() -> bool:
        image = decode_image(photo)
        result = model.predict([image], paths=["leg.jpg"])[0]
        json.dumps(result.to_dict())
        return True

    return call


def row(name: str, r: dict) -> str:
    return (f"{name:<30} {r['rps']:7.1f} req/s   p50 {r['p50_ms']:7.1f} ms   p99 {r['p99_ms']:7.1f} ms"
            f"   CPU {r['cpu_ms']:5.1f} ms/req   n={r['n']} errors={r['errors']}")


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternating in-process/HTTP rounds")
    ap.add_argument("--concurrency", type=int, default=4, help="clients at saturation")
    ap.add_argument("--size", type=int, default=768, help="photo long side in pixels")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="ONNX Runtime intra-op threads (MOTTLING_THREADS) for both sides; "
                         "default: ORT's choice, and cores/workers for 2 workers")
    args = ap.parse_args()
    if args.threads:
        os.environ["MOTTLING_THREADS"] = str(args.threads)

    model = pick_model(args.model)
    photo = photo_jpeg(args.size)
    print(f"model {model.name}; photo {args.size}px JPEG {len(photo) / 1e3:.0f} kB; "
          f"{os.cpu_count()} CPUs; {args.rounds} rounds x {args.duration:g} s, in-process and HTTP "
          f"alternating; MOTTLING_THREADS={os.environ.get('MOTTLING_THREADS', 'unset')}", flush=True)
    inproc = inprocess_caller(model, photo)

    lines, overheads = [], []
    for workers in (1, 2):
        with serve(model, workers) as (url, proc):
            server = psutil.Process(proc.pid)
            call = http_caller(url, photo)
            closed_loop(call, args.concurrency, 2.0)  # warm connections and every worker
            for clients in (1, args.concurrency):
                ip_runs, http_runs = [], []
                for _ in range(args.rounds):  # alternate, so drifting load on a shared box hits both
                    ip_runs.append(closed_loop(inproc, clients, args.duration))
                    http_runs.append(closed_loop(call, clients, args.duration, server))
                ip, http = median_of(ip_runs), median_of(http_runs)
                lines.append(row(f"in-process, {clients} client(s)", ip))
                lines.append(row(f"HTTP {workers} worker(s), {clients} client(s)", http))
                overheads.append((workers, clients,
                                  statistics.median(1 - h["rps"] / i["rps"] for h, i in zip(http_runs, ip_runs)),
                                  statistics.median(h["p50_ms"] / i["p50_ms"] - 1 for h, i in zip(http_runs, ip_runs)),
                                  statistics.median(h["cpu_ms"] / i["cpu_ms"] - 1 for h, i in zip(http_runs, ip_runs))))
    print()
    for line in lines:
        print(line)
    print()
    print("HTTP overhead against the same work in-process (median of paired rounds):")
    for workers, clients, rps, p50, cpu in overheads:
        tag = "saturation" if clients > 1 else "1 client  "
        print(f"  {workers} worker(s), {tag}: throughput {rps:+.1%}   p50 latency {p50:+.1%}   "
              f"CPU/request {cpu:+.1%}" + ("   (target <= 15% at saturation)" if clients > 1 else ""))


if __name__ == "__main__":
    main()
