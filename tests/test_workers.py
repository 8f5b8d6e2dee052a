"""`collab serve --workers N`: refused without Redis; with it, N processes share one
port, connections spread over them, and an actor stays consistent across them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import aiohttp

from tests.serverproc import ServerProcess
from tests.yclient import Editor

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


async def test_workers_answer_every_document_request(tmp_path):
    """With --workers 2 the kernel hands each connection to either worker: every
    document read and update is answered, whichever worker owns the document."""
    srv = ServerProcess(tmp_path / "workers.db", env={"REDIS_URL": REDIS_URL},
                        args=("--workers", "2")).start()
    try:
        writer = Editor()
        doc = f"workers-{uuid.uuid4().hex[:8]}"
        statuses = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for i in range(30):
                resp = await s.post(f"{srv.http_url}/api/docs/{doc}/update",
                                    data=writer.type(f"<{i}>"))
                statuses.append(resp.status)
                resp = await s.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body")
                statuses.append(resp.status)
                if resp.status == 200:
                    assert (await resp.json())["text"]["body"] == "".join(
                        f"<{j}>" for j in range(i + 1))
        assert statuses == [200] * 60
    finally:
        assert srv.stop() == 0
