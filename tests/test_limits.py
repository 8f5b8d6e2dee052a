"""The per-client limits against real server processes, each set low so a test can
reach it: WebSockets per client address (and behind a proxy), documents and actors
per `/ws` socket, a document's size quota, and awareness state size, clients and
rate. Each test checks that the offender gets a clear answer and that nothing is
lost for anyone else."""

from __future__ import annotations

import json

import pytest

from collab.actors.awareness import MAX_CLIENTS_PER_OWNER
from collab.errors import CloseCode
from collab.protocol.ywire import AwarenessEntry, AwarenessMessage, SyncUpdate, encode_awareness
from tests.nclient import NativeError, NClient
from tests.waits import until
from tests.yclient import Editor, YClient


def ws_url(srv) -> str:
    return srv.http_url.replace("http", "ws", 1)


def awareness(client_id: int, clock: int, **state) -> AwarenessMessage:
    return AwarenessMessage(encode_awareness([AwarenessEntry(client_id, clock,
                                                             json.dumps(state))]))


async def test_connections_per_address_are_capped_with_429_before_the_upgrade(
        server_factory, session):
    srv = server_factory("per-ip", env={"COLLAB_MAX_CONNECTIONS_PER_IP": "3"})
    held = [await session.ws_connect(f"{ws_url(srv)}/yjs/d") for _ in range(2)]
    held.append(await session.ws_connect(f"{ws_url(srv)}/ws"))  # both endpoints count
    async with session.get(f"{srv.http_url}/yjs/d") as refused:
        assert refused.status == 429
        body = await refused.json()
    assert body["error"]["code"] == "too_many_connections"
    assert "COLLAB_MAX_CONNECTIONS_PER_IP" in body["error"]["message"]
    await held.pop().close()  # a closed socket gives its place back
    for _ in range(100):
        async with session.get(f"{srv.http_url}/healthz") as health:
            if (await health.json())["connections"] == 2:
                break
    held.append(await session.ws_connect(f"{ws_url(srv)}/ws"))
    for ws in held:
        await ws.close()


async def test_behind_a_proxy_the_forwarded_address_is_counted(server_factory, session):
    srv = server_factory("proxied", env={"COLLAB_MAX_CONNECTIONS_PER_IP": "1",
                                         "COLLAB_FORWARDED_HOPS": "1"})

    def via_proxy(client: str) -> dict[str, str]:
        # What the client wrote itself comes first; the proxy appends what it saw.
        return {"X-Forwarded-For": f"6.6.6.6, {client}"}

    first = await session.ws_connect(f"{ws_url(srv)}/yjs/d", headers=via_proxy("10.0.0.1"))
    second = await session.ws_connect(f"{ws_url(srv)}/yjs/d", headers=via_proxy("10.0.0.2"))
    async with session.get(f"{srv.http_url}/yjs/d", headers=via_proxy("10.0.0.1")) as refused:
        assert refused.status == 429
        assert "10.0.0.1" in (await refused.json())["error"]["message"]
    await first.close()
    await second.close()


async def test_documents_and_actors_per_socket_are_capped(server_factory, session):
    srv = server_factory("subs", env={"COLLAB_MAX_SUBSCRIPTIONS": "3"})
    client = await NClient.connect(session, srv.http_url)
    await client.request("doc.subscribe", doc="a")
    await client.request("doc.subscribe", doc="a")  # the same one again takes no more room
    await client.request("doc.subscribe", doc="b")
    await client.request("actor.connect", actor="room", key="lobby", params={"user": "ann"})
    with pytest.raises(NativeError) as full:
        await client.request("doc.subscribe", doc="c")
    assert full.value.code == "too_many_subscriptions"
    with pytest.raises(NativeError) as full:
        await client.request("actor.connect", actor="room", key="other", params={"user": "ann"})
    assert full.value.code == "too_many_subscriptions"
    await client.request("doc.unsubscribe", doc="a")  # the socket carries on; room freed
    await client.request("doc.subscribe", doc="c")
    await client.request("doc.update", doc="c", update=Editor().type("fits"))
    await client.close()


async def test_a_document_at_its_quota_refuses_updates_on_every_path(server_factory, session):
    env = {"COLLAB_MAX_DOCUMENT_BYTES": "4000"}
    srv = server_factory("quota", env=env)
    writer = await NClient.connect(session, srv.http_url)
    await writer.request("doc.subscribe", doc="full")
    reader = await YClient.connect(session, ws_url(srv), "full")
    editor = Editor()
    acked = 0
    with pytest.raises(NativeError) as refused:
        for _ in range(100):
            await writer.request("doc.update", doc="full", update=editor.type("x" * 200))
            acked += 1
    assert refused.value.code == "document_too_large"
    assert "quota of 4000 bytes" in refused.value.message
    assert 10 <= acked < 20  # ~220 bytes each: about 4000 bytes went in, nothing past it
    expected = "x" * 200 * acked  # the refused update was not applied
    # The refusal started a compaction, which may free a few hundred bytes (the
    # snapshot is smaller than the rows it folds): 1,000 bytes never fit.

    async def text() -> str:
        async with session.get(f"{srv.http_url}/api/docs/full?format=json&text=body") as r:
            return (await r.json())["text"]["body"]

    assert await text() == expected
    # HTTP: 413 with the same code; y-websocket: closed with 4413.
    async with session.post(f"{srv.http_url}/api/docs/full/update",
                            data=Editor().type("y" * 1000)) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "document_too_large"
    await reader.send(SyncUpdate(Editor().type("z" * 1000)))
    assert await reader.closed_with() == CloseCode.DOCUMENT_TOO_LARGE
    # Nothing lost for others: the writer's socket still works, reads still work, and
    # after a restart the size is known from the store, so the quota still holds.
    await writer.request("ping")
    assert await text() == expected
    await writer.close()
    srv.stop()
    srv = server_factory("quota", env=env)
    assert await text() == expected
    # Shutdown compacted the log into one snapshot (smaller than the rows it folded),
    # but the document still takes most of its quota: 3,000 more bytes do not fit.
    async with session.post(f"{srv.http_url}/api/docs/full/update",
                            data=Editor().type("y" * 3000)) as response:
        assert response.status == 413


async def test_awareness_state_size_and_clients_per_connection(server_factory, session):
    srv = server_factory("aw-size", env={"COLLAB_MAX_AWARENESS_BYTES": "1024"})
    calm = await YClient.connect(session, ws_url(srv), "aw")
    big = await YClient.connect(session, ws_url(srv), "aw")
    await big.send(awareness(1, 1, name="x" * 2000))
    assert await big.closed_with() == CloseCode.MESSAGE_TOO_BIG
    many = await YClient.connect(session, ws_url(srv), "aw")
    await many.send(AwarenessMessage(encode_awareness(
        [AwarenessEntry(1000 + i, 1, "{}") for i in range(MAX_CLIENTS_PER_OWNER + 1)])))
    assert await many.closed_with() == CloseCode.MESSAGE_TOO_BIG
    # The document and its well-behaved client carry on, and saw none of it.
    await calm.send(awareness(7, 1, name="calm"))
    other = await YClient.connect(session, ws_url(srv), "aw")
    seen = await other.recv_until(lambda m: isinstance(m, AwarenessMessage))
    assert b"calm" in seen.payload and b"xxxx" not in seen.payload and b"1000" not in seen.payload
    await calm.ws.close()
    await other.ws.close()


async def test_an_awareness_storm_is_coalesced_to_the_rate_and_ends_on_the_latest(
        server_factory, session):
    srv = server_factory("aw-rate", env={"COLLAB_MAX_AWARENESS_PER_SECOND": "5"})
    watcher = await YClient.connect(session, ws_url(srv), "storm")
    storm = await YClient.connect(session, ws_url(srv), "storm")
    for clock in range(1, 201):  # a cursor moving far faster than 5/s
        await storm.send(awareness(42, clock, cursor=clock))
    received = 0
    last = None
    while last != 200:
        message = await watcher.recv()
        if isinstance(message, AwarenessMessage) and b'"cursor"' in message.payload:
            received += 1
            last = json.loads(message.payload[message.payload.index(b"{"):].decode())["cursor"]
    # A burst of 10, then only the newest state whenever the budget allows: the
    # watcher ends on the latest cursor without being sent all 200.
    assert received < 200
    # The storming socket was not closed for it (that is for the message rate limit).
    await storm.send(SyncUpdate(Editor().type("still here")))
    await watcher.recv_until(lambda m: isinstance(m, SyncUpdate))
    await storm.ws.close()
    await watcher.ws.close()


async def test_native_awareness_is_coalesced_and_every_request_answered(server_factory,
                                                                        session):
    srv = server_factory("aw-native", env={"COLLAB_MAX_AWARENESS_PER_SECOND": "5"})
    watcher = await YClient.connect(session, ws_url(srv), "n-storm")
    client = await NClient.connect(session, srv.http_url)
    await client.request("doc.subscribe", doc="n-storm")
    for clock in range(1, 51):
        await client.request("doc.awareness", doc="n-storm",
                             update=awareness(9, clock, cursor=clock).payload)
    message = await watcher.recv_until(
        lambda m: isinstance(m, AwarenessMessage) and b'"cursor":50' in m.payload.replace(
            b" ", b""))
    assert message is not None
    await client.close()
    await watcher.ws.close()


async def test_a_full_document_still_takes_deletions_and_then_has_room(server_factory,
                                                                        session):
    srv = server_factory("quota-delete", env={"COLLAB_MAX_DOCUMENT_BYTES": "4000",
                                              "COLLAB_COMPACT_DELAY": "0"})
    writer = await NClient.connect(session, srv.http_url)
    await writer.request("doc.subscribe", doc="full")
    editor = Editor()
    with pytest.raises(NativeError):
        for _ in range(100):
            await writer.request("doc.update", doc="full", update=editor.type("x" * 200))
    del editor.text[0:len(editor.text)]  # the user makes room: a deletion-only update
    assert (await writer.request("doc.update", doc="full", update=editor.updates[-1]))["seq"]

    room_for = Editor().type("y" * 200)  # another client's: it depends on nothing refused

    async def fits() -> bool:  # once compaction has folded the deleted text away
        try:
            await writer.request("doc.update", doc="full", update=room_for)
        except NativeError as exc:
            assert exc.code == "document_too_large"
            return False
        return True

    await until(fits)
    async with session.get(f"{srv.http_url}/api/docs/full?format=json&text=body") as r:
        assert (await r.json())["text"]["body"] == "y" * 200
    await writer.close()
