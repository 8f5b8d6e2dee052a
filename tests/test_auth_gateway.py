"""Auth at the gateway, against real server processes: 401/403 before the upgrade,
tokens in the query or a subprotocol, read-only documents and rooms, the room user
bound to the token, expiry mid-session (4401), the Origin allowlist, the
development-mode warning and `collab token`."""

from __future__ import annotations

import time
import urllib.request

import aiohttp
import jwt
import pytest
from pycrdt import Doc, Text

from collab.auth import issue_token
from collab.errors import CloseCode
from collab.protocol import ywire
from tests.nclient import NativeError, NClient
from tests.test_cli import run_collab
from tests.waits import TIMEOUT
from tests.yclient import YClient

SECRET = "gateway-test-secret-long-enough-for-hs256"
AUTH_ENV = {"COLLAB_SECRET": SECRET}


def token(user: str = "alice", *, ttl: float = 600, **grants) -> str:
    claims = {"sub": user, "exp": int(time.time() + ttl), **grants}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def ws_base(srv) -> str:
    return srv.http_url.replace("http", "ws", 1)


async def native(session, srv, jwt_token: str) -> NClient:
    ws = await session.ws_connect(f"{ws_base(srv)}/ws?token={jwt_token}")
    return NClient(ws, False)


def an_update(text: str) -> bytes:
    doc = Doc()
    doc["t"] = Text(text)
    return doc.get_update()


@pytest.fixture
def auth_server(server_factory):
    return server_factory("auth", env=AUTH_ENV)


async def _refusal(session, url: str) -> tuple[int, dict]:
    async with session.get(url) as response:  # the check runs before any upgrade
        return response.status, await response.json()


async def test_missing_expired_and_forged_tokens_get_401_json(auth_server, session):
    base = auth_server.http_url
    status, body = await _refusal(session, f"{base}/yjs/notes-1")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert "missing token" in body["error"]["message"]
    status, body = await _refusal(session, f"{base}/ws?token={token(ttl=-60)}")
    assert (status, body["error"]["message"]) == (401, "token expired")
    forged = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256")
    status, body = await _refusal(session, f"{base}/yjs/notes-1?token={forged}")
    assert (status, body["error"]["message"]) == (401, "bad signature")
    # /ws may authenticate in-band instead (tests/test_inband_auth.py): it upgrades,
    # but a first frame other than the auth message closes it with 4401.
    async with session.ws_connect(f"{ws_base(auth_server)}/ws") as ws:
        await ws.send_json({"id": 1, "op": "ping"})
        assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == CloseCode.UNAUTHORIZED


async def test_yjs_without_read_permission_gets_403(auth_server, session):
    status, body = await _refusal(
        session, f"{auth_server.http_url}/yjs/secret?token={token(docs={'notes-*': 'rw'})}")
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_token_in_a_subprotocol_is_accepted_and_echoed(auth_server, session):
    offered = f"collab-token.{token(docs={'*': 'rw'})}"
    ws = await session.ws_connect(f"{ws_base(auth_server)}/yjs/notes-1", protocols=(offered,))
    assert ws.protocol == offered
    client = YClient(ws)
    assert isinstance(await client.recv(), ywire.SyncStep1)
    await ws.close()


async def test_read_only_yjs_client_reads_and_shares_awareness_but_a_change_closes_4403(
        auth_server, session):
    base = ws_base(auth_server)
    writer = YClient(await session.ws_connect(
        f"{base}/yjs/notes-1?token={token('w', docs={'notes-*': 'rw'})}"))
    await writer.send(ywire.SyncUpdate(an_update("hello")))
    await writer.recv_until(lambda m: isinstance(m, ywire.SyncUpdate))  # committed echo
    reader = YClient(await session.ws_connect(
        f"{base}/yjs/notes-1?token={token('r', docs={'notes-*': 'r'})}"))
    await reader.send(ywire.SyncStep1(b"\x00"))
    step2 = await reader.recv_until(lambda m: isinstance(m, ywire.SyncStep2))
    doc = Doc()
    doc.apply_update(step2.update)
    assert str(doc.get("t", type=Text)) == "hello"
    await reader.send(ywire.SyncStep2(ywire.EMPTY_UPDATE))  # nothing new: allowed
    await reader.send(ywire.AwarenessMessage(b"\x00"))  # no clients: allowed
    await reader.send(ywire.SyncUpdate(an_update("vandalism")))
    assert await reader.closed_with() == CloseCode.FORBIDDEN
    assert reader.ws.close_code == 4403
    await writer.ws.close()


async def test_native_doc_ops_follow_the_token(auth_server, session):
    client = await native(session, auth_server, token(docs={"notes-*": "r"}))
    with pytest.raises(NativeError) as refused:
        await client.request("doc.subscribe", doc="secret")
    assert refused.value.code == "forbidden"
    await client.request("doc.subscribe", doc="notes-1")
    with pytest.raises(NativeError) as refused:
        await client.request("doc.update", doc="notes-1", update=an_update("x"))
    assert refused.value.code == "forbidden"
    async with session.get(f"{auth_server.http_url}/api/docs/notes-1",
                           headers={"Authorization": f"Bearer {token(docs={'*': 'r'})}"}) as r:
        assert r.status == 200
        doc = Doc()
        doc.apply_update(await r.read())
        assert "t" not in doc.keys()  # nothing was applied
    await client.close()


async def test_rooms_bind_the_user_to_the_token_and_read_only_cannot_send(auth_server,
                                                                          session):
    writer = await native(session, auth_server, token("ann", rooms={"lobby": "rw"}))
    with pytest.raises(NativeError) as refused:
        await writer.request("actor.connect", actor="room", key="lobby",
                             params={"user": "mallory"})
    assert refused.value.code == "forbidden"
    await writer.request("actor.connect", actor="room", key="lobby", params={})  # user: ann
    sent = await writer.request("actor.call", actor="room", key="lobby", action="send",
                                args=["m-1", "hi"])
    assert sent["message"]["user"] == "ann"

    reader = await native(session, auth_server, token("rob", rooms={"lob*": "r"}))
    await reader.request("actor.connect", actor="room", key="lobby")
    history = await reader.request("actor.call", actor="room", key="lobby", action="history")
    assert [m["body"] for m in history["messages"]] == ["hi"]
    await reader.request("actor.call", actor="room", key="lobby", action="typing")
    with pytest.raises(NativeError) as refused:
        await reader.request("actor.call", actor="room", key="lobby", action="send",
                             args=["m-2", "spam"])
    assert refused.value.code == "forbidden"
    with pytest.raises(NativeError) as refused:  # no grant at all
        await reader.request("actor.connect", actor="room", key="staff")
    assert refused.value.code == "forbidden"
    with pytest.raises(NativeError) as refused:  # user= must be the token's too
        await reader.request("actor.call", actor="room", key="lobby", action="unread",
                             kwargs={"user": "ann"})
    assert refused.value.code == "forbidden"
    await writer.close()
    await reader.close()


async def test_token_expiry_mid_session_closes_4401(auth_server, session):
    client = await native(session, auth_server, token(ttl=2, docs={"*": "rw"}))
    await client.request("doc.subscribe", doc="notes-1")
    await client.wait_for(lambda: client.ws.closed)
    assert client.ws.close_code == CloseCode.UNAUTHORIZED


async def test_origin_allowlist_refuses_other_origins_with_403(server_factory, session):
    srv = server_factory("origins", env={"COLLAB_ALLOWED_ORIGINS": "https://app.example"})
    url = f"{ws_base(srv)}/yjs/doc"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(url, origin="https://evil.example")
    assert refused.value.status == 403
    for origin in ("https://app.example", None):  # listed, or not a browser
        ws = await session.ws_connect(url, origin=origin)
        await ws.close()


async def test_development_mode_warns_loudly_and_lets_everyone_in(server_factory, session):
    dev = server_factory("dev")
    assert "WARNING collab: AUTHENTICATION IS OFF (development mode)" in dev.log()
    client = await NClient.connect(session, dev.http_url)
    await client.request("actor.connect", actor="room", key="lobby", params={"user": "zed"})
    await client.close()
    secured = server_factory("secured", env=AUTH_ENV)
    assert "AUTHENTICATION IS OFF" not in secured.log()


def test_collab_token_prints_a_signed_token():
    result = run_collab("token", "--user", "alice", "--doc", "notes-*", "--doc", "wiki/*",
                        "--room", "lobby", "--read-only", "--ttl", "2d", env=AUTH_ENV)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["docs"] == {"notes-*": "r", "wiki/*": "r"}
    assert claims["rooms"] == {"lobby": "r"}
    assert claims["exp"] - claims["iat"] == 2 * 86400
    assert issue_token(SECRET, "x")  # the same code path the server verifies
    refused = run_collab("token", "--user", "alice", env={"COLLAB_SECRET": ""})
    assert refused.returncode == 2 and "COLLAB_SECRET" in refused.stderr
    bad_ttl = run_collab("token", "--user", "a", "--ttl", "soon", env=AUTH_ENV)
    assert bad_ttl.returncode == 2 and "--ttl" in bad_ttl.stderr


async def test_http_api_needs_a_bearer_token_that_grants_the_route(auth_server, session):
    base = auth_server.http_url

    def bearer(jwt_token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {jwt_token}"}

    async with session.get(f"{base}/api/docs/notes-1") as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    reader = bearer(token(docs={"notes-*": "r"}, rooms={"lobby": "r"}))
    async with session.post(f"{base}/api/docs/notes-1/update", data=an_update("x"),
                            headers=reader) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
    async with session.get(f"{base}/api/rooms/lobby/messages", headers=reader) as r:
        assert r.status == 200
    async with session.post(f"{base}/api/actors/room/lobby/actions/send", headers=reader,
                            json={"args": ["m-1", "hi"], "kwargs": {"user": "anyone"}}) as r:
        assert r.status == 403 and "admin" in (await r.json())["error"]["message"]
    admin = bearer(token("ops", admin=True))
    async with session.post(f"{base}/api/actors/room/lobby/actions/send", headers=admin,
                            json={"args": ["m-1", "hi"], "kwargs": {"user": "bot"}}) as r:
        assert r.status == 200, await r.text()
    async with session.get(f"{base}/healthz") as r:  # not under /api/: open
        assert r.status == 200


async def test_admin_revoke_closes_live_sockets_and_refuses_older_tokens(auth_server, session):
    base = auth_server.http_url
    old = token("eve", docs={"*": "rw"})
    client = await native(session, auth_server, old)
    await client.request("doc.subscribe", doc="notes-1")
    async with session.post(f"{base}/api/admin/revoke", json={"user": "eve"},
                            headers={"Authorization": f"Bearer {token('eve', docs={'*': 'rw'})}"}
                            ) as r:
        assert r.status == 403  # only an admin token may revoke
    admin = {"Authorization": f"Bearer {token('ops', admin=True)}"}
    async with session.post(f"{base}/api/admin/revoke", json={"user": "eve"},
                            headers=admin) as r:
        assert r.status == 200 and (await r.json()) == {"user": "eve", "closed": 1}
    await client.wait_for(lambda: client.ws.closed)
    assert client.ws.close_code == CloseCode.FORBIDDEN
    status, body = await _refusal(session, f"{base}/ws?token={old}")
    assert (status, body["error"]["message"]) == (401, "token revoked")
    fresh = jwt.encode({"sub": "eve", "iat": int(time.time()) + 2, "exp": int(time.time()) + 600},
                       SECRET, algorithm="HS256")
    ws = await session.ws_connect(f"{ws_base(auth_server)}/ws?token={fresh}")
    await ws.close()
    async with session.post(f"{base}/api/admin/revoke", json={"who": "x"}, headers=admin) as r:
        assert r.status == 400


def test_stock_y_websocket_reader_with_a_read_only_token_syncs_and_stays(auth_server):
    """y-websocket's `params: { token }` is the query parameter; a read-only client
    answers the server's sync step 1 with an empty update and is not closed."""
    from tests.test_interop_node import require_node, run_node

    require_node()
    doc = Doc()
    doc["body"] = Text("for your eyes")
    request = urllib.request.Request(
        f"{auth_server.http_url}/api/docs/notes-ro/update", data=doc.get_update(),
        headers={"Authorization": f"Bearer {token(docs={'*': 'rw'})}"}, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        assert response.status == 200
    check = run_node("check_content.mjs", "--url", auth_server.ws_url, "--doc", "notes-ro",
                     "--token", token("reader", docs={"notes-*": "r"}))
    assert check["text"] == "for your eyes"
    assert check["serverCloses"] == []
    assert "a change from read-only user" not in auth_server.log()
