"""Hibernating connections against real server processes: a document whose clients
are connected but quiet unloads its CRDT (COLLAB_CONNECTED_IDLE_TIMEOUT) and keeps
only their sockets and presence; presence renewals, joins and the sync of a client
that holds what the server holds do not load it again; the next edit or a client that
lacks something does, and nothing is lost or applied twice. A stock y-websocket
client alone in a document stays on one socket past its 30 s silence timeout."""

from __future__ import annotations

import aiohttp
from pycrdt import Doc, Text

from collab.protocol import ywire
from tests.test_interop_node import run_node
from tests.test_metrics import scrape, value
from tests.waits import until
from tests.yclient import Editor, YClient

QUIET = {"COLLAB_CONNECTED_IDLE_TIMEOUT": "0.3"}


async def counts(session, srv) -> tuple[float, float]:
    _, values = await scrape(session, srv.http_url)
    return (value(values, "collab_documents_unloaded_total"),
            value(values, "collab_documents_reloaded_total"))


async def text_of(session, srv, doc: str) -> str:
    async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body") as resp:
        return (await resp.json())["text"]["body"]


def is_update(message: ywire.Message) -> bool:
    return isinstance(message, ywire.SyncUpdate)


def presence_of(client_id: int):
    def check(message: ywire.Message) -> bool:
        return isinstance(message, ywire.AwarenessMessage) and any(
            entry.client_id == client_id for entry in ywire.decode_awareness(message.payload))
    return check


async def test_quiet_clients_let_the_crdt_unload_and_an_edit_loads_it_again(
        server_factory, session):
    srv = server_factory("quiet", env=QUIET)
    writer, reader = Editor(), Doc()
    a = await YClient.connect(session, srv.http_url, "quiet")
    b = await YClient.connect(session, srv.http_url, "quiet")
    await a.send(ywire.SyncUpdate(writer.type("hello")))
    reader.apply_update((await b.recv_until(is_update)).update)

    async def unloaded() -> bool:
        return (await counts(session, srv))[0] >= 1

    await until(unloaded)
    # Presence comes and goes without the CRDT, back to its sender too (y-websocket).
    entry = ywire.AwarenessEntry(7, 1, '{"user":{"name":"a"}}')
    await a.send(ywire.AwarenessMessage(ywire.encode_awareness([entry])))
    await b.recv_until(presence_of(7))
    await a.recv_until(presence_of(7))
    # A client that holds what the server holds (a reconnect) is answered unloaded.
    c = await YClient.connect(session, srv.http_url, "quiet")
    await c.send(ywire.SyncStep1(reader.get_state()))
    answer = await c.recv_until(lambda m: isinstance(m, ywire.SyncStep2))
    reader.apply_update(answer.update)
    assert str(reader.get("body", type=Text)) == "hello"
    assert (await counts(session, srv))[1] == 0  # not loaded again for any of that

    await a.send(ywire.SyncUpdate(writer.type(" world")))  # an edit loads it
    reader.apply_update((await b.recv_until(is_update)).update)
    assert str(reader.get("body", type=Text)) == "hello world"
    assert (await counts(session, srv))[1] >= 1
    # A newcomer lacking everything gets everything, once.
    d = await YClient.connect(session, srv.http_url, "quiet")
    await d.send(ywire.SyncStep1(Doc().get_state()))
    fresh = Doc()
    fresh.apply_update((await d.recv_until(lambda m: isinstance(m, ywire.SyncStep2))).update)
    assert str(fresh.get("body", type=Text)) == "hello world"
    assert await text_of(session, srv, "quiet") == "hello world"
    for client in (a, b, c, d):
        await client.ws.close()


async def test_an_unloaded_document_still_answers_reads_and_edits_over_http(
        server_factory, session):
    srv = server_factory("http", env=QUIET)
    editor = Editor()
    a = await YClient.connect(session, srv.http_url, "via-http")
    await a.send(ywire.SyncUpdate(editor.type("one;")))
    await until(lambda: text_is(session, srv, "via-http", "one;"))

    async def unloaded() -> bool:
        return (await counts(session, srv))[0] >= 1

    await until(unloaded)
    resp = await session.post(f"{srv.http_url}/api/docs/via-http/update",
                              data=editor.type("two;"))
    assert resp.status == 200, await resp.text()
    # The connected client has it too (after the echo of its own "one;").
    await a.recv_until(lambda m: is_update(m) and b"two;" in m.update)
    assert await text_of(session, srv, "via-http") == "one;two;"
    await a.ws.close()


async def text_is(session: aiohttp.ClientSession, srv, doc: str, expected: str) -> bool:
    return await text_of(session, srv, doc) == expected


async def test_a_lone_y_websocket_client_stays_on_one_socket_past_its_silence_timeout(
        server_factory, session):
    srv = server_factory("lone", env={"COLLAB_CONNECTED_IDLE_TIMEOUT": "5"})
    result = run_node("lone_client.mjs", "--url", srv.ws_url, "--doc", "lone",
                      "--quiet-ms", "34000", timeout_ms=60_000)
    assert result["connects"] == 1 and result["closes"] == [], result
    assert result["text"] == "before;after;"
    await until(lambda: text_is(session, srv, "lone", "before;after;"))
    unloaded, reloaded = await counts(session, srv)
    assert unloaded >= 1 and reloaded >= 1  # it slept while quiet, and woke for the edit
