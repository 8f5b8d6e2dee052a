"""Clients spread over three real `collab serve` processes sharing one store (a SQLite
file, or a Postgres schema) and a real Redis. Whichever process a socket lands on,
it reaches the actor's one owner: stock y-websocket clients converge and see each
other's awareness, every chat member sees the same order, a cron ticks once per tick
cluster-wide, and when the owner is killed with -9 the sockets on other processes
are closed with 1012, reconnect and find everything that was acknowledged. Last, a
Redis restart in the middle of editing (a Redis of the test's own)."""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.error import HTTPError

import pytest
from pycrdt import Doc, Text

from tests.nclient import NativeError, NClient
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.test_interop_node import content_of, require_node, run_node, server_content
from tests.waits import until

REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def cluster(tmp_path, store_url):
    """`cluster(n)`: n server processes on one store and one Redis, 1 s leases."""
    started: list[ServerProcess] = []

    def start(n: int = 3, env: dict[str, str] | None = None,
              args: tuple = ()) -> list[ServerProcess]:
        for i in range(n):
            name = f"node{len(started)}-{i}"
            started.append(ServerProcess(
                tmp_path / f"{name}.db", database_url=store_url,
                env={"REDIS_URL": REDIS_URL, "COLLAB_LEASE_TTL": "1", **(env or {})},
                args=args).start())
        return started[-n:]

    yield start
    for proc in started:
        proc.stop()


def owners_copy(servers: list[ServerProcess], doc: str) -> list[dict]:
    """The document as GET /api/docs gives it, from every process that serves it."""
    copies = []
    for srv in servers:
        try:
            copies.append(server_content(srv.http_url, doc))
        except HTTPError:
            pass  # not the owner
    return copies


async def test_stock_yjs_clients_on_three_processes_converge(cluster):
    require_node()
    servers = cluster(3)
    doc = f"spread-{uuid.uuid4().hex[:8]}"
    urls = ",".join(srv.ws_url for srv in servers)
    result = await asyncio.to_thread(
        run_node, "multi_client.mjs", "--url", urls, "--doc", doc, "--clients", "6",
        "--offline", "2", "--seed", "7")
    assert result["converged"] and result["clients"] == 6
    assert result["offlineDiverged"]
    # Each client's own map key counts its edits: 25 + 15 + 10 rounds, none lost.
    assert [result["meta"][f"client-{i}"]["n"] for i in range(6)] == [50] * 6
    names = [f"client-{i}" for i in range(6)]
    assert result["awareness"] == {name: names for name in names}
    assert result["latestAwarenessSeen"]
    assert result["serverCloses"] == []
    copies = owners_copy(servers, doc)
    assert copies and all(copy == content_of(result) for copy in copies)


async def test_a_cron_ticks_once_per_tick_across_three_processes(cluster, session):
    """The ticker hibernates between ticks (idle timeout 0.2 s), so every process's
    timer waker races to wake it; the lease lets one run each tick."""
    servers = cluster(3, env={"COLLAB_IDLE_TIMEOUT": "0.2"},
                      args=("--app", "tests.apps.counter:registry"))
    base = f"/api/actors/ticker/ticker-{uuid.uuid4().hex[:8]}/actions"
    resp = await session.post(f"{servers[0].http_url}{base}/start")
    assert resp.status == 200, await resp.text()

    async def ticks() -> list[float]:
        for srv in servers:  # whichever process owns it now answers, or forwards
            resp = await session.post(f"{srv.http_url}{base}/ticks")
            if resp.status == 200:
                return (await resp.json())["result"]
        return []

    async def several() -> bool:
        return len(await ticks()) >= 5

    await until(several)
    seen = await ticks()
    assert len(seen) == len(set(seen)), f"a tick ran twice: {seen}"
    assert seen == sorted(seen)


ROOM = {"actor": "room"}


def messages(client: NClient) -> list[tuple[int, str]]:
    return [(e["data"]["seq"], e["data"]["body"]) for e in client.events
            if e["event"] == "actor.event" and e["name"] == "message"]


async def test_chat_members_on_three_processes_see_one_order(cluster, session):
    servers = cluster(3)
    room = f"spread-{uuid.uuid4().hex[:8]}"
    members = []
    for i, srv in enumerate(servers * 2):  # two members on each process
        client = await NClient.connect(session, srv.http_url)
        await client.request("actor.connect", **ROOM, key=room, params={"user": f"u{i}"})
        members.append(client)

    async def chat(index: int, client: NClient) -> None:
        for n in range(12):
            await client.request("actor.call", **ROOM, key=room, action="send",
                                 args=[f"{index}-{n}", f"{index}:{n}"])

    await asyncio.gather(*(chat(i, c) for i, c in enumerate(members)))
    for client in members:
        await client.wait_for(lambda c=client: len(messages(c)) == 72)
    first = messages(members[0])
    assert [seq for seq, _ in first] == list(range(1, 73))
    assert all(messages(client) == first for client in members)
    for client in members:
        await client.close()


async def native_subscribe(session, srv: ServerProcess, doc: str, ydoc: Doc) -> NClient:
    """A /ws client subscribed to `doc`, applying the updates it is sent to `ydoc`."""
    client = await NClient.connect(session, srv.http_url)
    try:
        answer = await client.request("doc.subscribe", doc=doc, sv=ydoc.get_state())
    except BaseException:
        await client.close()  # a refused join must not hold a connection of the session
        raise
    ydoc.apply_update(answer["update"])
    return client


def apply_events(client: NClient, ydoc: Doc, doc: str) -> int:
    """Apply every doc.update event `client` got for `doc` (again: Yjs ignores
    what it has); returns how many there were."""
    events = [e for e in client.events if e["event"] == "doc.update" and e["doc"] == doc]
    for event in events:
        ydoc.apply_update(event["update"])
    return len(events)


async def test_kill_9_of_the_owner_closes_relayed_sockets_and_loses_nothing(cluster,
                                                                           session):
    owner, b, c = cluster(3)
    doc = f"failover-{uuid.uuid4().hex[:8]}"
    first = await native_subscribe(session, owner, doc, Doc())  # the owner is `owner`
    writer_doc, reader_doc = Doc(), Doc()
    writer = await native_subscribe(session, b, doc, writer_doc)
    reader = await native_subscribe(session, c, doc, reader_doc)
    text = writer_doc.get("body", type=Text)
    for n in range(20):
        before = writer_doc.get_state()
        text += f"<{n}>"
        result = await writer.request("doc.update", doc=doc,
                                      update=writer_doc.get_update(before))
        assert result["seq"] >= 1  # acknowledged: committed by the owner
    acked = str(text)
    await reader.wait_for(lambda: (apply_events(reader, reader_doc, doc) and
                                   str(reader_doc.get("body", type=Text)) == acked))

    owner.kill()
    # The relays on b and c see the owner's channel go silent and close their sockets.
    for client in (writer, reader):
        await client.wait_for(lambda cl=client: cl.ws.closed)
        assert client.ws.close_code == 1012
    await first.close()

    # Reconnected (on c, say), a client finds every acknowledged update, once the
    # dead owner's lease has run out and b or c took the document over.
    fresh = Doc()

    async def back() -> bool:
        try:
            client = await native_subscribe(session, c, doc, fresh)
        except NativeError as exc:
            assert exc.code in ("owned_elsewhere", "owner_unreachable"), exc
            return False  # still owned by the dead process
        await client.close()
        return True

    await until(back)
    assert str(fresh.get("body", type=Text)) == acked


async def ready(session, srv: ServerProcess) -> bool:
    resp = await session.get(f"{srv.http_url}/readyz")
    return resp.status == 200


async def test_a_redis_restart_mid_stream(tmp_path, session):
    """Redis dies (its leases and subscriptions with it) while clients edit through
    two processes: both report not ready; the owner keeps serving its own socket
    through the outage (nobody can take the document over without Redis, and the
    store would fence it if someone did), while the relayed socket, which cannot
    reach the owner, is closed with 1012 after a lease TTL. With Redis back (without
    its data), the owner takes its lease again, the processes subscribe again, the
    relayed client reconnects, and every acknowledged update is there."""
    redis = RedisProcess().start()
    servers = [ServerProcess(tmp_path / f"{name}.db", database_url=f"sqlite:///{tmp_path}/s.db",
                             env={"REDIS_URL": redis.url, "COLLAB_LEASE_TTL": "1"}).start()
               for name in "ab"]
    try:
        a, b = servers
        doc = "restart"
        owner_doc, writer_doc = Doc(), Doc()
        on_a = await native_subscribe(session, a, doc, owner_doc)
        writer = await native_subscribe(session, b, doc, writer_doc)
        owner_text = owner_doc.get("body", type=Text)

        async def write(client: NClient, ydoc: Doc, chars: str) -> None:
            before = ydoc.get_state()
            body = ydoc.get("body", type=Text)
            body.insert(len(body), chars)
            await client.request("doc.update", doc=doc, update=ydoc.get_update(before))

        for n in range(10):
            await write(writer, writer_doc, f"<{n}>")
        await on_a.wait_for(lambda: apply_events(on_a, owner_doc, doc) and
                            str(owner_text).endswith("<9>"))
        redis.stop()
        for srv in servers:
            await until(lambda s=srv: _not(ready(session, s)))
        # The relaying process cannot reach the owner: after a lease TTL it closes.
        await writer.wait_for(lambda: writer.ws.closed)
        assert writer.ws.close_code == 1012
        # The owner's own socket is served all along, for three lease TTLs and more.
        for n in range(6):
            await write(on_a, owner_doc, f"[{n}]")
            await asyncio.sleep(0.5)
        assert not on_a.ws.closed

        redis.start()
        for srv in servers:
            await until(lambda s=srv: ready(session, s))
        # A Redis restarted without its data has no leases: the owner takes its own
        # again at once, but a reconnect on the other process may claim the document
        # first. Then the store refuses the old owner's next write, it stops there,
        # and its socket is closed with 1012 too: either way, nothing acknowledged
        # is lost, and both clients end up on the one owner.
        expected = "".join(f"<{n}>" for n in range(10)) + "".join(f"[{n}]" for n in range(6))
        clients = {}

        async def reconnected(srv: ServerProcess) -> bool:
            ydoc = Doc()
            try:
                clients[srv.http_url] = (await native_subscribe(session, srv, doc, ydoc), ydoc)
            except (NativeError, ConnectionError):
                return False
            return True

        await until(lambda: reconnected(b))
        writer, writer_doc = clients[b.http_url]
        assert str(writer_doc.get("body", type=Text)) == expected
        await write(writer, writer_doc, "<after>")
        clients[a.http_url] = (on_a, owner_doc)

        async def a_has_it() -> bool:
            client, ydoc = clients[a.http_url]
            if client.ws.closed:
                assert client.ws.close_code == 1012
                await reconnected(a)
                return False
            apply_events(client, ydoc, doc)
            return str(ydoc.get("body", type=Text)) == expected + "<after>"

        await until(a_has_it)
        for client, _ in clients.values():
            await client.close()
    finally:
        for srv in servers:
            srv.stop()
        redis.stop()


async def _not(check) -> bool:
    return not await check
