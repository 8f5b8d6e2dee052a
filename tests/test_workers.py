"""`collab serve --workers N`: refused without Redis; with it, N processes share one
port, connections spread over them, and an actor stays consistent across them."""

from __future__ import annotations

import os
import subprocess
import sys

import aiohttp

from tests.serverproc import ServerProcess

REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_workers_need_redis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "collab", "serve", "--workers", "2", "--port", "0",
         "--database-url", f"sqlite:///{tmp_path}/w.db"],
        env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "needs REDIS_URL" in done.stderr


async def test_workers_share_the_port_and_the_actors(tmp_path):
    srv = ServerProcess(tmp_path / "workers.db", env={"REDIS_URL": REDIS_URL},
                        args=("--workers", "2", "--app", "tests.apps.counter:registry")).start()
    try:
        pids = set()
        results = []
        # A new connection per request, so the kernel picks a worker each time.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(40):
                health = await (await s.get(f"{srv.http_url}/healthz")).json()
                pids.add(health["pid"])
                assert health["node"]  # cluster mode: each worker is a node
            for _ in range(20):
                resp = await s.post(f"{srv.http_url}/api/actors/counter/shared/actions/increment")
                assert resp.status == 200, await resp.text()
                results.append((await resp.json())["result"])
        assert len(pids) == 2
        assert results == list(range(1, 21))  # one owner, whichever worker was asked
    finally:
        assert srv.stop() == 0
