"""Revocations (gateway/user_rules.py): stored by every back end, kept across a
restart, and shared by the processes of a cluster, which close the user's sockets
with 4403 and refuse the older tokens at once; a revocation whose message a Redis
outage lost is still enforced, from the store."""

from __future__ import annotations

import os
import time
import uuid

import jwt
import pytest

from collab.errors import CloseCode
from tests.nclient import NClient
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.waits import until
from tests.yclient import Editor

REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "revocations-test-secret-long-enough-for-hs256"
AUTH_ENV = {"COLLAB_SECRET": SECRET}
#: Seconds before now the "old" tokens say they were issued: surely before a revocation.
OLD = 5


def token(user: str, *, issued: float, admin: bool = False) -> str:
    claims = {"sub": user, "iat": int(issued), "exp": int(time.time() + 600),
              "docs": {"*": "rw"}}
    if admin:
        claims["admin"] = True
    return jwt.encode(claims, SECRET, algorithm="HS256")


def a_user() -> str:
    """A user name of this test's own: the machine's Redis is shared with other tests."""
    return f"eve-{uuid.uuid4().hex[:8]}"


async def revoke(session, srv: ServerProcess, user: str) -> dict:
    admin = {"Authorization": f"Bearer {token('ops', issued=time.time(), admin=True)}"}
    async with session.post(f"{srv.http_url}/api/admin/revoke", json={"user": user},
                            headers=admin) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def refusal(session, srv: ServerProcess, jwt_token: str) -> tuple[int, str]:
    """Status and error message of a WebSocket upgrade with `jwt_token` (checked before
    any upgrade, so a plain GET shows it)."""
    async with session.get(f"{srv.http_url}/ws?token={jwt_token}") as r:
        body = await r.json()
        return r.status, body.get("error", {}).get("message", "")


async def native(session, srv: ServerProcess, jwt_token: str, *, doc: str | None = "notes"
                 ) -> NClient:
    """A /ws client admitted with `jwt_token`, subscribed to `doc` (None: to nothing)."""
    ws = await session.ws_connect(f"{srv.http_url.replace('http', 'ws', 1)}/ws?token={jwt_token}")
    client = NClient(ws, False)
    if doc is not None:
        await client.request("doc.subscribe", doc=doc)
    return client


# -- one process, restarted ---------------------------------------------------------------


async def test_revocation_survives_a_restart(tmp_path, store_url, session):
    user = a_user()
    old = token(user, issued=time.time() - OLD)
    with ServerProcess(tmp_path / "first.db", env=AUTH_ENV,
                       database_url=store_url) as srv:
        client = await native(session, srv, old)
        assert await revoke(session, srv, user) == {"user": user, "closed": 1}
        await client.wait_for(lambda: client.ws.closed)
        assert client.ws.close_code == CloseCode.FORBIDDEN
    with ServerProcess(tmp_path / "second.db", env=AUTH_ENV,
                       database_url=store_url) as srv:
        assert await refusal(session, srv, old) == (401, "token revoked")
        # Only the tokens issued up to the revocation: a newer one works.
        client = await native(session, srv, token(user, issued=time.time() + 2))
        await client.close()


async def test_a_token_issued_after_the_answer_works_at_once(server_factory, session):
    """`iat` has whole seconds: a token issued 0.3 s after a revocation used to say
    the same second as the revocation, and was refused for up to a second."""
    srv = server_factory("after-revoke", env=AUTH_ENV)
    user = a_user()
    for _ in range(3):  # each would land in the revocation's second, but by chance
        before = token(user, issued=time.time())
        await revoke(session, srv, user)
        after = token(user, issued=time.time())  # as an issuer would, on the answer
        assert await refusal(session, srv, before) == (401, "token revoked")
        client = await native(session, srv, after)  # admitted
        await client.request("doc.update", doc="notes", update=Editor().type("back"))
        await client.close()
    # Revoking again cuts the tokens of the last round off too.
    await revoke(session, srv, user)
    assert await refusal(session, srv, after) == (401, "token revoked")


# -- several processes ------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path, pg_url):
    """`cluster(n, redis_url)`: n auth-enabled processes on one Postgres schema."""
    started: list[ServerProcess] = []

    def start(n: int, redis_url: str = REDIS_URL) -> list[ServerProcess]:
        for _ in range(n):
            started.append(ServerProcess(
                tmp_path / f"node{len(started)}.db", database_url=pg_url,
                env={**AUTH_ENV, "REDIS_URL": redis_url, "COLLAB_LEASE_TTL": "1"}).start())
        return started[-n:]

    yield start
    for proc in started:
        proc.stop()


async def test_revoke_on_one_process_closes_and_refuses_on_the_other(cluster, session):
    a, b = cluster(2)
    user = a_user()
    old = token(user, issued=time.time() - OLD)
    client = await native(session, b, old)
    # A has none of the user's sockets: B closes its own.
    assert await revoke(session, a, user) == {"user": user, "closed": 0}
    await client.wait_for(lambda: client.ws.closed)
    assert client.ws.close_code == CloseCode.FORBIDDEN
    assert await refusal(session, b, old) == (401, "token revoked")
    assert await refusal(session, a, old) == (401, "token revoked")
    fresh = await native(session, b, token(user, issued=time.time() + 2))
    await fresh.close()


async def test_processes_read_revocations_again_after_a_redis_outage(cluster, session):
    redis = RedisProcess().start()
    try:
        a, b = cluster(2, redis.url)
        user = a_user()
        old = token(user, issued=time.time() - OLD)
        # Subscribed to nothing: losing Redis (and so its actors' leases) leaves it open.
        client = await native(session, b, old, doc=None)
        redis.stop()
        # Stored, though nobody hears of it: Redis is down.
        assert await revoke(session, a, user) == {"user": user, "closed": 0}
        assert not client.ws.closed
        # Same port. B reads the table again when its bus sees the reconnection or,
        # if redis-py's retries hid the cut, at its next periodic resync.
        redis.start()
        await client.wait_for(lambda: client.ws.closed)
        assert client.ws.close_code == CloseCode.FORBIDDEN

        async def b_refuses() -> bool:
            return await refusal(session, b, old) == (401, "token revoked")
        await until(b_refuses)
    finally:
        redis.stop()
