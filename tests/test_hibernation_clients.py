"""Hibernating connections (COLLAB_CONNECTED_IDLE_TIMEOUT) with the clients of the
other two endpoints, against real server processes: collab's own `/ws` (the Python
client) and Hocuspocus (raw frames). Quiet clients let the CRDT unload and stay
connected; presence, and the sync of a client that holds what the server holds, do
not load it again; the next edit does, and reaches the other client; a newcomer
gets everything; nothing is lost or applied twice. tests/test_hibernation.py tells
the same story for y-websocket."""

from __future__ import annotations

from pycrdt import Doc, Text

from collab.client import CollabClient
from collab.protocol import hocuspocus as hp
from collab.protocol import ywire
from tests.test_hibernation import QUIET, counts, presence_of, text_of
from tests.test_hocuspocus import HP, of
from tests.test_python_client import body, native_url
from tests.waits import until
from tests.yclient import Editor


def copy_of(doc: Doc) -> Doc:
    copy = Doc()
    copy.apply_update(doc.get_update())
    return copy


def names(doc) -> set[str]:
    return {state["user"]["name"] for state in doc.awareness.states.values()
            if isinstance(state, dict) and "user" in state}


async def test_quiet_ws_clients_let_the_crdt_unload_and_an_edit_loads_it_again(
        server_factory, session):
    srv = server_factory("ws-quiet", env=QUIET)
    clients = [CollabClient(native_url(srv)) for _ in range(4)]
    try:
        a, b, c, d = clients
        doc_a, doc_b = await a.doc("ws-quiet"), await b.doc("ws-quiet")
        body(doc_a).insert(0, "hello")
        await doc_a.saved()
        await until(lambda: str(body(doc_b)) == "hello")

        async def unloaded() -> bool:
            return (await counts(session, srv))[0] >= 1

        await until(unloaded)
        # Presence comes and goes without the CRDT.
        doc_a.awareness.set_local_state_field("user", {"name": "a"})
        await until(lambda: names(doc_b) == {"a"})
        assert (await counts(session, srv))[1] == 0
        # A client that holds what the server holds (a reconnect: b's copy, as the
        # HTTP export would load the CRDT) is answered unloaded.
        doc_c = await c.doc("ws-quiet", copy_of(doc_b.ydoc))
        assert str(body(doc_c)) == "hello" and doc_c.unsynced_changes == 0
        await until(lambda: names(doc_c) == {"a"})
        assert (await counts(session, srv))[1] == 0  # not loaded again for any of that

        body(doc_a).insert(5, " world")  # an edit loads it
        await until(lambda: str(body(doc_b)) == "hello world")
        await until(lambda: str(body(doc_c)) == "hello world")
        await doc_a.saved()
        assert (await counts(session, srv))[1] >= 1
        # A newcomer lacking everything gets everything, once.
        doc_d = await d.doc("ws-quiet")
        assert str(body(doc_d)) == "hello world"
        assert await text_of(session, srv, "ws-quiet") == "hello world"
        for client in clients:
            assert client.status == "connected"  # nobody was closed meanwhile
    finally:
        for client in clients:
            await client.close()


async def test_quiet_hocuspocus_clients_let_the_crdt_unload_and_an_edit_loads_it_again(
        server_factory, session):
    srv = server_factory("hp-quiet", env=QUIET)
    key = "hp-quiet"
    writer, reader = Editor(), Doc()
    a, b = await HP.connect(session, srv), await HP.connect(session, srv)
    await a.open(key), await b.open(key)
    await a.send(key, ywire.SyncUpdate(writer.type("hello")))
    await a.recv_until(of(hp.SyncStatus))  # committed
    got = await b.recv_until(of(ywire.SyncUpdate))
    reader.apply_update(got.message.update)

    async def unloaded() -> bool:
        return (await counts(session, srv))[0] >= 1

    await until(unloaded)
    # Presence comes and goes without the CRDT.
    entry = ywire.AwarenessEntry(7, 1, '{"user":{"name":"a"}}')
    await a.send(key, ywire.AwarenessMessage(ywire.encode_awareness([entry])))
    await b.recv_until(lambda f: presence_of(7)(f.message))
    assert (await counts(session, srv))[1] == 0
    # A provider that holds what the server holds (a reconnect) syncs as providers do:
    # its step 1, and its step 2 answering the server's. Both are answered unloaded.
    c = await HP.connect(session, srv)
    await c.open(key)
    step1 = await c.recv_until(of(ywire.SyncStep1))
    await c.recv_until(lambda f: presence_of(7)(f.message))  # who is here, unloaded too
    await c.send(key, ywire.SyncStep1(reader.get_state()))
    await c.send(key, ywire.SyncStep2(reader.get_update(step1.message.state_vector)))
    answer = await c.recv_until(of(ywire.SyncStep2))
    reader.apply_update(answer.message.update)
    assert str(reader.get("body", type=Text)) == "hello"
    assert (await c.recv_until(of(hp.SyncStatus))).message == hp.SyncStatus(True)
    assert (await counts(session, srv))[1] == 0  # not loaded again for any of that

    await a.send(key, ywire.SyncUpdate(writer.type(" world")))  # an edit loads it
    assert (await a.recv_until(of(hp.SyncStatus))).message == hp.SyncStatus(True)
    for client in (b, c):
        copy = Doc()
        copy.apply_update(reader.get_update())
        copy.apply_update((await client.recv_until(of(ywire.SyncUpdate))).message.update)
        assert str(copy.get("body", type=Text)) == "hello world"
    assert (await counts(session, srv))[1] >= 1
    # A newcomer lacking everything gets everything, once.
    d = await HP.connect(session, srv)
    await d.open(key)
    await d.send(key, ywire.SyncStep1(Doc().get_state()))
    fresh = Doc()
    fresh.apply_update((await d.recv_until(of(ywire.SyncStep2))).message.update)
    assert str(fresh.get("body", type=Text)) == "hello world"
    assert await text_of(session, srv, key) == "hello world"
    for client in (a, b, c, d):
        assert not client.ws.closed  # nobody was closed meanwhile
        await client.ws.close()
