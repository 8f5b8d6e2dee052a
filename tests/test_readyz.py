"""`/readyz`: ready when the store (and Redis, in cluster mode) answer; with Redis
unreachable the server still starts, says it is not ready, and answers 503. A failing
check is named with a fixed word (`error`, `timeout`); what went wrong (an address, a
driver's message) goes to the server's log, not to whoever asks."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from tests.serverproc import ServerProcess
from tests.tcpproxy import TcpProxy

APP = ("--app", "tests.apps.counter:registry")


async def test_ready_with_its_store(server, session):
    resp = await session.get(f"{server.http_url}/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "checks": {"store": "ok"}}


async def test_not_ready_without_redis(tmp_path, session):
    srv = ServerProcess(tmp_path / "noredis.db", env={"REDIS_URL": "redis://127.0.0.1:1/0"},
                        args=APP).start()
    try:
        resp = await session.get(f"{srv.http_url}/readyz")
        body = await resp.json()
        assert resp.status == 503
        assert body == {"status": "not ready", "checks": {"store": "ok", "redis": "error"}}
        resp = await session.post(f"{srv.http_url}/api/actors/counter/k/actions/increment")
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "cluster_unavailable"
        assert (await session.get(f"{srv.http_url}/healthz")).status == 200  # alive, not ready
        for _ in range(5):  # a load balancer's probes: the log says why, once
            await session.get(f"{srv.http_url}/readyz")
    finally:
        assert srv.stop() == 0
    failures = [line for line in srv.log().splitlines() if "the redis check failed" in line]
    assert len(failures) == 1 and "127.0.0.1:1" in failures[0]


async def test_a_store_that_stops_answering_is_named_not_described(tmp_path, pg_url, session):
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    port = await proxy.start()
    via_proxy = urlunsplit(parts._replace(
        netloc=f"{parts.username or ''}@127.0.0.1:{port}".lstrip("@")))
    # In a thread: the server connects through the proxy, which runs on this loop.
    srv = await asyncio.to_thread(
        lambda: ServerProcess(tmp_path / "pg.db", database_url=via_proxy).start())
    try:
        proxy.cut()
        async with session.get(f"{srv.http_url}/readyz") as resp:
            assert resp.status == 503
            text = await resp.text()
        assert await resp.json() in ({"status": "not ready", "checks": {"store": "error"}},
                                     {"status": "not ready", "checks": {"store": "timeout"}})
        assert str(port) not in text and "127.0.0.1" not in text
    finally:
        await asyncio.to_thread(srv.stop)
    assert "not ready: the store check failed" in srv.log()
