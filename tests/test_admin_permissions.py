"""An administrator lowers a user's permissions (POST /api/admin/permissions), against
real server processes: live sockets that may no longer read what they hold close
with 4403, the others go on read-only; new connections get the limits too; the
limits survive a restart, reach every process of a cluster, and can be lifted."""

from __future__ import annotations

import time

import pytest

from collab.errors import CloseCode
from collab.protocol.ywire import SyncUpdate
from tests.nclient import NativeError
from tests.serverproc import ServerProcess

# `cluster` is a fixture: n auth-enabled processes on one Postgres schema and Redis.
from tests.test_revocations import AUTH_ENV, a_user, cluster, native, token  # noqa: F401
from tests.waits import until
from tests.yclient import Editor, YClient

READ_ONLY_AND_NO_SECRETS = {"docs": {"*": "r", "secret/*": "none"}}


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {token('ops', issued=time.time(), admin=True)}"}


async def set_limits(session, srv: ServerProcess, user: str, **limits) -> dict:
    async with session.post(f"{srv.http_url}/api/admin/permissions",
                            json={"user": user, **limits}, headers=admin_headers()) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def an_update(text: str) -> bytes:
    return Editor().type(text)


async def test_limits_close_or_downgrade_live_sockets_and_apply_to_new_ones(
        server_factory, session):
    srv = server_factory("limits", env=AUTH_ENV)
    user = a_user()
    eve = token(user, issued=time.time())
    ws_base = srv.http_url.replace("http", "ws", 1)
    editor = await YClient.connect(session, ws_base, f"notes?token={eve}")
    holds_secret = await native(session, srv, eve, doc="secret/plan")
    writer = await native(session, srv, eve, doc="notes")
    await writer.request("doc.update", doc="notes", update=an_update("before"))

    answer = await set_limits(session, srv, user, **READ_ONLY_AND_NO_SECRETS)
    assert answer == {"user": user, "limits": READ_ONLY_AND_NO_SECRETS, "closed": 1,
                      "downgraded": 2}
    # The socket holding a document it may no longer read is closed...
    await holds_secret.wait_for(lambda: holds_secret.ws.closed)
    assert holds_secret.ws.close_code == CloseCode.FORBIDDEN
    # ...the others are read-only now, and nothing they send changes anything.
    with pytest.raises(NativeError) as refused:
        await writer.request("doc.update", doc="notes", update=an_update("after"))
    assert refused.value.code == "forbidden"
    await writer.request("ping")  # still connected
    await editor.send(SyncUpdate(an_update("sneaky")))
    assert await editor.closed_with() == CloseCode.FORBIDDEN  # /yjs: read-only
    # New connections get the limits as well, from a token that grants more.
    async with session.get(f"{srv.http_url}/yjs/secret/plan?token={eve}") as response:
        assert response.status == 403
    async with session.get(f"{srv.http_url}/api/admin/permissions/{user}",
                           headers=admin_headers()) as response:
        assert (await response.json())["limits"] == READ_ONLY_AND_NO_SECRETS
    async with session.get(f"{srv.http_url}/api/docs/notes?format=json&text=body") as r:
        assert r.status == 401  # (no token: the API needs one)
    await writer.close()


async def test_limits_survive_a_restart_and_can_be_lifted(server_factory, session):
    srv = server_factory("limits-restart", env=AUTH_ENV)
    user = a_user()
    eve = token(user, issued=time.time())
    await set_limits(session, srv, user, docs={"*": "r"})
    srv.stop()
    srv = server_factory("limits-restart", env=AUTH_ENV)
    client = await native(session, srv, eve, doc="notes")
    with pytest.raises(NativeError) as refused:
        await client.request("doc.update", doc="notes", update=an_update("no"))
    assert refused.value.code == "forbidden"
    # Lifting them (an empty body) gives live sockets their token's grants back.
    assert (await set_limits(session, srv, user))["downgraded"] == 1
    assert (await client.request("doc.update", doc="notes", update=an_update("yes")))["seq"]
    await client.close()


async def test_bad_limits_are_refused_with_400(server_factory, session):
    srv = server_factory("limits-bad", env=AUTH_ENV)
    for body in ({"user": "eve", "docs": {"*": "write"}}, {"user": "eve", "docs": ["*"]},
                 {"docs": {"*": "r"}}):
        async with session.post(f"{srv.http_url}/api/admin/permissions", json=body,
                                headers=admin_headers()) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "bad_request"
    async with session.post(f"{srv.http_url}/api/admin/permissions",
                            json={"user": "eve", "docs": {"*": "r"}},
                            headers={"Authorization": f"Bearer {token('eve', issued=0)}"}) as r:
        assert r.status == 403  # an admin token is needed


async def test_limits_set_on_one_process_apply_on_the_other(cluster, session):  # noqa: F811
    a, b = cluster(2)
    user = a_user()
    eve = token(user, issued=time.time())
    client = await native(session, b, eve, doc="notes")
    assert (await set_limits(session, a, user, docs={"*": "r"}))["downgraded"] == 0

    async def lowered() -> bool:
        try:
            await client.request("doc.update", doc="notes", update=an_update("x"))
        except NativeError as exc:
            return exc.code == "forbidden"
        return False

    await until(lowered)
    await client.close()
