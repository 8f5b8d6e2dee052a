"""COLLAB_MEMORY_BUDGET with the clients tests/test_memory_budget.py leaves out,
against real server processes under a budget of 1 byte (nothing fits):
documents whose `/ws` (the Python client) and Hocuspocus (raw frames) clients are
connected unload their CRDT and keep those clients, which still get each other's
edits afterwards, with the content intact; chat rooms nobody is connected to
hibernate, and every message (and read receipt) is there afterwards; a room with
connected members stays loaded and usable, its presence intact."""

from __future__ import annotations

from collab.client import CollabClient
from collab.protocol import hocuspocus as hp
from collab.protocol import ywire
from tests.test_hibernation import text_of
from tests.test_hocuspocus import HP, of
from tests.test_metrics import scrape, value
from tests.test_python_client import body, native_url, room_bodies
from tests.waits import until
from tests.yclient import Editor

TINY = {"COLLAB_MEMORY_BUDGET": "1", "COLLAB_IDLE_TIMEOUT": "3600"}
#: Rooms written over HTTP and then left alone, and messages in each (under the
#: room's burst of 20 writes per caller).
QUIET_ROOMS, MESSAGES = 3, 15


async def metric(session, srv, name: str, **labels: str) -> float:
    _, values = await scrape(session, srv.http_url)
    return value(values, name, **labels)


async def test_a_tiny_budget_unloads_ws_and_hocuspocus_documents_and_keeps_their_clients(
        server_factory, session):
    srv = server_factory("tiny-clients", env=TINY)
    # Two /ws clients on one document, two Hocuspocus sockets on another.
    ws_clients = [CollabClient(native_url(srv)) for _ in range(2)]
    closes: list = []
    for client in ws_clients:
        client.on("close", closes.append)
    try:
        doc_a, doc_b = [await client.doc("ws-held") for client in ws_clients]
        body(doc_a).insert(0, "one;")
        await doc_a.saved()
        await until(lambda: str(body(doc_b)) == "one;")

        writer = Editor()
        a, b = await HP.connect(session, srv), await HP.connect(session, srv)
        await a.open("hp-held"), await b.open("hp-held")
        await a.send("hp-held", ywire.SyncUpdate(writer.type("one;")))
        assert (await a.recv_until(of(hp.SyncStatus))).message == hp.SyncStatus(True)
        await b.recv_until(of(ywire.SyncUpdate))

        async def both_unloaded() -> bool:  # nothing else happens in either meanwhile
            return await metric(session, srv, "collab_documents_unloaded_total") >= 2

        await until(both_unloaded)
        assert await metric(session, srv, "collab_documents_reloaded_total") == 0

        body(doc_b).insert(len(body(doc_b)), "two;")  # loads it again, for everyone
        await until(lambda: str(body(doc_a)) == "one;two;")
        await doc_b.saved()
        await a.send("hp-held", ywire.SyncUpdate(writer.type("two;")))
        assert (await a.recv_until(of(hp.SyncStatus))).message == hp.SyncStatus(True)
        got = await b.recv_until(of(ywire.SyncUpdate))
        assert b"two;" in got.message.update

        assert await text_of(session, srv, "ws-held") == "one;two;"
        assert await text_of(session, srv, "hp-held") == "one;two;"
        assert await metric(session, srv, "collab_documents_reloaded_total") >= 2
        assert await metric(session, srv, "collab_memory_budget_shed_total") >= 2
        # The budget never closes a client.
        assert closes == [] and all(c.status == "connected" for c in ws_clients)
        for socket in (a, b):
            assert not socket.ws.closed
            await socket.ws.close()
    finally:
        for client in ws_clients:
            await client.close()


async def test_a_tiny_budget_hibernates_rooms_nobody_is_in_and_keeps_the_one_in_use(
        server_factory, session):
    srv = server_factory("tiny-rooms", env=TINY)
    ann_client, bob_client = CollabClient(native_url(srv)), CollabClient(native_url(srv))
    closes: list = []
    for client in (ann_client, bob_client):
        client.on("close", closes.append)
    try:
        ann = await ann_client.room("busy", user="ann")
        bob = await bob_client.room("busy", user="bob")
        heard: list[dict] = []
        bob.on("message", heard.append)
        await ann.send("before;")

        # Rooms written over HTTP by someone not connected to them.
        for r in range(QUIET_ROOMS):
            for n in range(MESSAGES):
                async with session.post(
                        f"{srv.http_url}/api/actors/room/quiet-{r}/actions/send",
                        json={"args": [f"c{n}", f"{r}.{n};"], "kwargs": {"user": "ann"}}) as resp:
                    assert resp.status == 200, await resp.text()
            async with session.post(f"{srv.http_url}/api/actors/room/quiet-{r}/actions/read",
                                    json={"args": [5], "kwargs": {"user": "bob"}}) as resp:
                assert resp.status == 200, await resp.text()

        async def only_the_busy_room_loaded() -> bool:
            return await metric(session, srv, "collab_actors_loaded", kind="room") == 1

        await until(only_the_busy_room_loaded)
        assert await metric(session, srv, "collab_memory_budget_shed_total") >= QUIET_ROOMS

        # The room in use: still there, its presence intact, its messages live.
        assert {u["user"] for u in (await bob.presence())["users"]} == {"ann", "bob"}
        await ann.send("after;")
        await until(lambda: [m["body"] for m in heard] == ["before;", "after;"])
        assert await room_bodies(session, srv.http_url, "busy") == ["before;", "after;"]

        # The rooms that slept: every message once, in order, and the receipts.
        for r in range(QUIET_ROOMS):
            assert await room_bodies(session, srv.http_url, f"quiet-{r}") == [
                f"{r}.{n};" for n in range(MESSAGES)]
            async with session.post(f"{srv.http_url}/api/actors/room/quiet-{r}/actions/unread",
                                    json={"kwargs": {"user": "bob"}}) as resp:
                unread = (await resp.json())["result"]
            assert unread == {"count": MESSAGES - 5, "last_read": 5, "last_seq": MESSAGES}
        assert closes == [], "the budget closed a room member"
    finally:
        for client in (ann_client, bob_client):
            await client.close()
