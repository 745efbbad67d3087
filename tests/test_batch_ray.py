"""The Ray Data engine gives the same rows as the local engine, and leaves nothing running."""

from __future__ import annotations

import os

import pytest

from mottling.batch import BatchConfig, run_batch
from tests.batch_support import make_archive, read_rows, row_differences, tiny_model

# single-machine mode, read when ray is imported: otherwise Ray swaps 127.0.0.1 for a routable IP
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="the distributed extra (ray[data]) is not installed")

# Ray Data warns about its own deprecated settings when it copies its context
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def local_ray():
    """One private Ray instance on loopback for the whole module; stopped, with its processes."""
    import psutil

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    ray.init(address=None, include_dashboard=False, num_cpus=2, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="WARNING")
    spawned = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    listening = set()
    for p in spawned:
        try:
            listening |= {c.laddr.ip for c in p.net_connections(kind="inet")
                          if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    try:
        assert listening and all(ip.endswith("127.0.0.1") for ip in listening), listening
        yield spawned
    finally:
        ray.shutdown()
        _, alive = psutil.wait_procs([p for p in spawned if p.is_running()], timeout=15)
        for p in alive:   # never leave a raylet behind, even if the test failed
            p.kill()
        assert not alive, f"Ray left processes running: {[p.pid for p in alive]}"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_batch")
    arch = make_archive(root, n_photos=5, n_videos=2, seed=3)
    return {"root": root, "archive": arch, "model": tiny_model(root / "model"),
            "manifest": arch / "sites.csv"}


def _run(archive, name: str, **kw):
    out = archive["root"] / name / "results.parquet"
    config = BatchConfig(inputs=(str(archive["archive"]),), out=str(out),
                         model=str(archive["model"]), manifest=str(archive["manifest"]),
                         shard_size=3, **kw)
    return run_batch(config, progress=False), read_rows(out)


def test_ray_and_local_engines_give_identical_rows(local_ray, archive):
    _, local_rows = _run(archive, "local", engine="local", workers=1)
    summary, ray_rows = _run(archive, "ray", engine="ray", workers=2)
    assert len(ray_rows) == len(local_rows) == summary.n_files
    assert {r["status"] for r in ray_rows} >= {"ok", "error"}
    assert not row_differences(local_rows, ray_rows)
    # a rerun of the Ray engine finds every shard done and scores nothing
    again, rows = _run(archive, "ray", engine="ray", workers=2)
    assert again.files_scored == 0 and again.shards_skipped == again.shards_total
    assert not row_differences(local_rows, rows)
