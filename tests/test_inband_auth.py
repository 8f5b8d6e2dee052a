"""Authentication inside the socket and by the application, against real server processes:
`/ws`'s auth message (the only frame accepted first, within a deadline, bounded in
size), and an application hook (COLLAB_AUTH_HOOK) that looks a session cookie or an
API key up before signed tokens are tried."""

from __future__ import annotations

import asyncio

import aiohttp
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab.errors import CloseCode
from tests.nclient import NativeError, NClient
from tests.test_auth_gateway import SECRET, an_update, token, ws_base
from tests.waits import TIMEOUT

HOOK = "tests.apps.session_auth:authenticate"


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, list]:
    """Read until the server closes: (close code, the messages received before)."""
    received = []
    while True:
        msg = await ws.receive(timeout=TIMEOUT)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.ERROR):
            return ws.close_code, received
        received.append(msgpack.unpackb(msg.data) if isinstance(msg.data, bytes) else msg.json())


@pytest.fixture
def secured(server_factory):
    return server_factory("secured", env={"COLLAB_SECRET": SECRET, "COLLAB_AUTH_TIMEOUT": "1"})


async def test_auth_message_admits_the_socket_and_its_user(secured, session):
    ws = await session.ws_connect(f"{ws_base(secured)}/ws")
    client = NClient(ws, json_mode=True)  # the auth frame's format sets the event format
    result = await client.request("auth", token=token("ann", docs={"notes-*": "rw"}))
    assert result["user"] == "ann" and result["expires_at"] > 0
    subscribed = await client.request("doc.subscribe", doc="notes-1")
    assert isinstance(subscribed["sv"], str)  # JSON mode: base64
    assert (await client.request("doc.update", doc="notes-1", update=an_update("hi")))["seq"] == 1
    with pytest.raises(NativeError) as forbidden:  # the token's grants apply
        await client.request("doc.subscribe", doc="secret")
    assert forbidden.value.code == "forbidden"
    with pytest.raises(NativeError) as again:
        await client.request("auth", token=token("eve"))
    assert again.value.code == "already_authenticated"
    await client.close()


async def test_anything_before_the_auth_message_closes_the_socket(secured, session):
    for first in ({"id": 1, "op": "doc.subscribe", "doc": "notes-1"},  # nothing queued
                  {"id": 1, "op": "auth"},  # no token
                  b"\xc1 not msgpack"):
        async with session.ws_connect(f"{ws_base(secured)}/ws") as ws:
            if isinstance(first, bytes):
                await ws.send_bytes(first)
            else:
                await ws.send_json(first)
            code, received = await _closed(ws)
            assert code == CloseCode.UNAUTHORIZED and received == []


async def test_a_refused_token_is_answered_then_closed_with_4401(secured, session):
    async with session.ws_connect(f"{ws_base(secured)}/ws") as ws:
        await ws.send_bytes(msgpack.packb({"id": 7, "op": "auth", "token": token(ttl=-60)}))
        code, received = await _closed(ws)
    assert code == CloseCode.UNAUTHORIZED
    assert received == [{"id": 7, "ok": False,
                         "error": {"code": "unauthorized", "message": "token expired"}}]


async def test_the_auth_deadline_and_the_size_cap(secured, session):
    async with session.ws_connect(f"{ws_base(secured)}/ws") as ws:  # says nothing
        code, _ = await _closed(ws)
    assert code == CloseCode.UNAUTHORIZED
    assert "no auth message within 1 s" in secured.log()
    async with session.ws_connect(f"{ws_base(secured)}/ws") as ws:
        await ws.send_bytes(msgpack.packb({"op": "auth", "token": "x" * 100_000}))
        code, _ = await _closed(ws)
    assert code == CloseCode.MESSAGE_TOO_BIG


async def test_the_hook_admits_a_session_cookie_and_an_api_key(server_factory, session):
    srv = server_factory("hooked", env={"COLLAB_AUTH_HOOK": HOOK})
    assert "AUTHENTICATION IS OFF" not in srv.log()  # a hook is authentication
    base = srv.http_url
    # The cookie (what a browser sends by itself) is enough for both WebSockets and HTTP.
    async with aiohttp.ClientSession(cookies={"session": "s-ann"}) as browser:
        client = NClient(await browser.ws_connect(f"{ws_base(srv)}/ws"), json_mode=False)
        await client.request("doc.subscribe", doc="plan")
        await client.request("doc.update", doc="plan", update=an_update("from ann"))
        async with browser.get(f"{base}/api/docs/plan?format=json&text=t") as response:
            assert response.status == 200
            assert (await response.json())["text"]["t"] == "from ann"
        await client.close()
    # An API key as the token: the hook makes it read-only.
    client = NClient(await session.ws_connect(f"{ws_base(srv)}/ws?token=key-bob"), False)
    await client.request("doc.subscribe", doc="plan")
    with pytest.raises(NativeError) as read_only:
        await client.request("doc.update", doc="plan", update=an_update("from bob"))
    assert read_only.value.code == "forbidden"
    await client.close()
    # In-band, the same key works too.
    client = NClient(await session.ws_connect(f"{ws_base(srv)}/ws"), False)
    assert (await client.request("auth", token="key-bob"))["user"] == "bob"
    await client.close()


async def test_the_hook_refuses_and_falls_back_to_signed_tokens(server_factory, session):
    srv = server_factory("hooked-jwt", env={"COLLAB_AUTH_HOOK": HOOK, "COLLAB_SECRET": SECRET,
                                            "COLLAB_FORWARDED_HOPS": "1"})
    base = srv.http_url
    async with session.get(f"{base}/yjs/plan?token={token(docs={'*': 'r'})}",
                           headers={"X-Forwarded-For": "203.0.113.9"}) as response:
        assert response.status == 403  # the hook sees the address the proxy saw
        assert (await response.json())["error"]["message"] == "203.0.113.9 is blocked"
    async with session.get(f"{base}/yjs/plan?token=key-banned") as response:
        assert response.status == 403  # the hook's own refusal, with its reason
        assert (await response.json())["error"]["message"] == "this key is banned"
    async with session.get(f"{base}/yjs/plan?token=nobody-knows-this") as response:
        assert response.status == 401  # not the hook's: verified as a JWT, and not one
        assert (await response.json())["error"]["message"] == "malformed token"
    async with session.get(f"{base}/api/docs/plan",
                           headers={"Authorization": f"Bearer {token(docs={'*': 'r'})}"}) as r:
        assert r.status == 200  # a signed token still works next to the hook
    async with session.ws_connect(f"{ws_base(srv)}/ws") as ws:
        await ws.send_bytes(msgpack.packb({"id": 1, "op": "auth", "token": "key-banned"}))
        code, received = await _closed(ws)
    assert code == CloseCode.FORBIDDEN and received[0]["error"]["code"] == "forbidden"


def test_a_hook_that_cannot_be_loaded_stops_the_server_with_a_clear_error(tmp_path):
    from tests.test_cli import run_collab

    result = run_collab("serve", "--port", "0", env={"COLLAB_AUTH_HOOK": "tests.apps.nope:auth",
                                                     "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert result.returncode == 2
    assert "COLLAB_AUTH_HOOK tests.apps.nope:auth: cannot import 'tests.apps.nope'" \
        in result.stderr


async def test_in_development_mode_the_auth_message_is_accepted_and_changes_nothing(
        server, session):
    client = await NClient.connect(session, server.http_url)
    assert await client.request("auth", token="anything") == {"user": "", "expires_at": None}
    await client.request("doc.subscribe", doc="dev")
    await client.close()


FIRST_FRAMES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.dictionaries(st.sampled_from(["id", "op", "token", "doc"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=20),
                              st.binary(max_size=20), st.just("auth")),
                    max_size=4).map(lambda m: msgpack.packb(m, use_bin_type=True)))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=FIRST_FRAMES)
def test_any_first_frame_without_a_good_token_is_refused(secured, first):
    async def attempt() -> int | None:
        async with aiohttp.ClientSession() as client_session, \
                client_session.ws_connect(f"{ws_base(secured)}/ws") as ws:
            if isinstance(first, bytes):
                await ws.send_bytes(first)
            else:
                await ws.send_str(first)
            code, received = await _closed(ws)
            assert all(not m.get("ok") for m in received)  # never admitted
            return code

    code = asyncio.run(attempt())
    assert code in (CloseCode.UNAUTHORIZED, CloseCode.MESSAGE_TOO_BIG), code
