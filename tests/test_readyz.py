"""`/readyz`: ready when the store (and Redis, in cluster mode) answer; with Redis
unreachable the server still starts, says it is not ready, and answers 503."""

from __future__ import annotations

from tests.serverproc import ServerProcess

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
        assert resp.status == 503 and body["status"] == "not ready"
        assert body["checks"]["store"] == "ok" and body["checks"]["redis"] != "ok"
        resp = await session.post(f"{srv.http_url}/api/actors/counter/k/actions/increment")
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "cluster_unavailable"
        assert (await session.get(f"{srv.http_url}/healthz")).status == 200  # alive, not ready
    finally:
        assert srv.stop() == 0
