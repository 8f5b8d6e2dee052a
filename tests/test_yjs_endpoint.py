"""`/yjs/<doc>` against a real server process: sync, echo-after-commit, awareness,
bad input (each closes only the offender, with its code), and the HTTP doc API."""

from __future__ import annotations

import aiohttp
import pytest
from pycrdt import Doc, Text

from collab.errors import BadRequest
from collab.gateway.names import parse_doc_name
from collab.protocol import ywire
from collab.protocol.ywire import AwarenessEntry, AwarenessMessage, SyncStep1, SyncUpdate
from tests.serverproc import ServerProcess
from tests.yclient import Editor, YClient

MAX_MESSAGE = 64 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("endpoint") / "collab.db",
                         env={"COLLAB_MAX_MESSAGE_BYTES": str(MAX_MESSAGE)}).start()
    yield proc
    proc.stop()


def text_of(update: bytes) -> str:
    doc = Doc()
    doc.apply_update(update)
    return str(doc.get("body", type=Text))


async def test_handshake(srv, session):
    client = await YClient.connect(session, srv.http_url, "handshake")
    assert await client.recv() == SyncStep1(b"\x00")  # empty doc: server's state vector
    await client.send(SyncStep1(b"\x00"))
    reply = await client.recv()
    assert isinstance(reply, ywire.SyncStep2)


async def test_update_broadcast_then_echo_after_commit(srv, session):
    a = await YClient.connect(session, srv.http_url, "echo")
    b = await YClient.connect(session, srv.http_url, "echo")
    await a.recv(), await b.recv()
    editor = Editor()
    update = editor.type("hello")
    await a.send(SyncUpdate(update))
    got = await b.recv()
    assert isinstance(got, SyncUpdate) and text_of(got.update) == "hello"
    echo = await a.recv()  # the durable acknowledgement
    assert isinstance(echo, SyncUpdate) and text_of(echo.update) == "hello"
    # A late joiner syncs the content from the server.
    c = await YClient.connect(session, srv.http_url, "echo")
    await c.recv()
    await c.send(SyncStep1(b"\x00"))
    step2 = await c.recv_until(lambda m: isinstance(m, ywire.SyncStep2))
    assert text_of(step2.update) == "hello"


async def test_awareness_relay_query_and_removal_on_close(srv, session):
    a = await YClient.connect(session, srv.http_url, "aware")
    b = await YClient.connect(session, srv.http_url, "aware")
    await a.recv(), await b.recv()
    state = AwarenessEntry(42, 1, '{"user":{"name":"ann"}}')
    await a.send(AwarenessMessage(ywire.encode_awareness([state])))
    got = await b.recv_until(lambda m: isinstance(m, AwarenessMessage))
    assert ywire.decode_awareness(got.payload) == [state]
    await b.send(ywire.QueryAwareness())
    answer = await b.recv_until(lambda m: isinstance(m, AwarenessMessage))
    assert ywire.decode_awareness(answer.payload) == [state]
    await a.ws.close()  # no explicit removal from the client: the server must do it
    removal = await b.recv_until(lambda m: isinstance(m, AwarenessMessage))
    assert ywire.decode_awareness(removal.payload) == [AwarenessEntry(42, 1, "null")]


BAD_FRAMES = [
    pytest.param(b"\x80", 1002, id="truncated-varint"),
    pytest.param(b"\xff" * 12, 1002, id="overlong-varint"),
    pytest.param(b"\x00\x02\x09abc", 1002, id="truncated-payload"),
    pytest.param(b"\x09\x00", 1003, id="unknown-type"),
    pytest.param(b"\x00\x05\x00", 1003, id="unknown-sync-type"),
    pytest.param(ywire.encode_update(b"garbage!"), 1007, id="update-pycrdt-rejects"),
    pytest.param(b"\x00\x00\x02\xff\xff", 1007, id="bad-state-vector"),
    pytest.param(b"\x01" + ywire.write_var_bytes(b"\x01\x01\x01\x03{{{"), 1007,
                 id="awareness-not-json"),
    pytest.param(b"\x00\x02" + ywire.write_var_bytes(b"\x00" * (MAX_MESSAGE + 10)), 1009,
                 id="too-big"),
    pytest.param("text frame", 1003, id="text-frame"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
async def test_bad_input_closes_only_the_offender(srv, session, frame, code):
    doc = f"bad-{code}-{abs(hash(frame)) % 10**6}"
    good = await YClient.connect(session, srv.http_url, doc)
    bad = await YClient.connect(session, srv.http_url, doc)
    await good.recv(), await bad.recv()
    editor = Editor()
    await good.send(SyncUpdate(editor.type("before ")))
    await good.recv()  # echo: committed
    if isinstance(frame, str):
        await bad.ws.send_str(frame)
    else:
        await bad.ws.send_bytes(frame)
    assert await bad.closed_with() == code
    # The document and its other client carry on, with nothing partially applied.
    await good.send(SyncUpdate(editor.type("after")))
    await good.recv()
    resp = await session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body")
    assert (await resp.json())["text"]["body"] == "before after"


BAD_NAMES = ["", "a b", "x/", "é", "a" * 129, "a//b", "a%00b", "a;b", "<script>"]


@pytest.mark.parametrize("name", [*BAD_NAMES, "a/../b", "..", "."])
def test_name_pattern(name):
    with pytest.raises(BadRequest):
        parse_doc_name(name)


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_names_are_refused_before_upgrade(srv, session, name):
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(f"{srv.http_url}/yjs/{name}")
    assert info.value.status in (400, 404)
    resp = await session.get(f"{srv.http_url}/api/docs/{name}")
    assert resp.status in (400, 404)
    if resp.status == 400:
        assert (await resp.json())["error"]["code"] == "invalid_name"


async def test_slash_names_are_documents(srv, session):
    client = await YClient.connect(session, srv.http_url, "team/notes.md")
    assert isinstance(await client.recv(), SyncStep1)


async def test_http_update_is_committed_broadcast_and_exported(srv, session):
    live = await YClient.connect(session, srv.http_url, "http-doc")
    await live.recv()
    update = Editor().type("from http")
    resp = await session.post(f"{srv.http_url}/api/docs/http-doc/update", data=update)
    assert resp.status == 200
    body = await resp.json()
    assert body["committed"] is True and body["seq"] >= 1
    got = await live.recv_until(lambda m: isinstance(m, SyncUpdate))
    assert text_of(got.update) == "from http"
    resp = await session.get(f"{srv.http_url}/api/docs/http-doc")
    assert resp.content_type == "application/octet-stream"
    assert text_of(await resp.read()) == "from http"
    resp = await session.get(f"{srv.http_url}/api/docs/http-doc?format=json")
    assert (await resp.json())["roots"] == ["body"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(b"", 400, "invalid_update"), (b"garbage!", 400, "invalid_payload"),
     (b"\x00" * (MAX_MESSAGE + 1), 413, "too_large")],
)
async def test_http_bad_updates(srv, session, body, status, code):
    resp = await session.post(f"{srv.http_url}/api/docs/http-bad/update", data=body)
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code


async def test_http_bad_query(srv, session):
    resp = await session.get(f"{srv.http_url}/api/docs/x?format=xml")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_format"
    resp = await session.get(f"{srv.http_url}/api/docs/x?format=json&bogus=1")
    assert resp.status == 400


async def test_healthz(srv, session):
    resp = await session.get(f"{srv.http_url}/healthz")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "ok"
