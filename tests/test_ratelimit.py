"""Per-connection rate limits against a real server: a socket past its message rate is
paced (a bulk import goes through at the rate, nothing lost, not closed); one that
floods for longer than the grace is closed with 4429, on both endpoints, while a
well-behaved client of the same document carries on; waking actors is paced per socket
and per address; and the token bucket itself."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from collab.protocol.ywire import AwarenessMessage, SyncUpdate, encode_awareness
from collab.runtime.buckets import TokenBucket
from tests.nclient import NClient
from tests.serverproc import ServerProcess
from tests.waits import TIMEOUT
from tests.yclient import Editor, YClient


def test_a_bucket_allows_its_burst_then_its_rate():
    bucket = TokenBucket(10)
    start = bucket.stamp
    assert all(bucket.take(1, start) for _ in range(20))  # a burst of twice the rate
    assert not bucket.take(1, start)
    assert bucket.take(1, start + 0.1)  # 0.1 s later, one more
    assert not bucket.take(1, start + 0.1)


async def test_a_flooding_socket_is_closed_with_4429_and_others_carry_on(tmp_path):
    srv = ServerProcess(tmp_path / "flood.db",
                        env={"COLLAB_MAX_MESSAGES_PER_SECOND": "20",
                             "COLLAB_RATE_LIMIT_GRACE": "0.5"}).start()
    try:
        async with aiohttp.ClientSession() as session:
            calm = await YClient.connect(session, srv.http_url, "flood")
            flood = await YClient.connect(session, srv.http_url, "flood")
            payload = AwarenessMessage(encode_awareness([]))
            for _ in range(200):  # far past a burst of 40, in well under a second
                if flood.ws.closed:
                    break
                await flood.send(payload)
            assert await flood.closed_with() == 4429
            editor = Editor()
            await calm.send(SyncUpdate(editor.type("still here")))
            await calm.recv_until(lambda m: isinstance(m, SyncUpdate)
                                  and b"still here" in m.update)

            native = await NClient.connect(session, srv.http_url)
            for _ in range(200):
                if native.ws.closed:
                    break
                await native.notify("ping")
            await native.wait_for(lambda: native.ws.closed)
            assert native.ws.close_code == 4429
    finally:
        srv.stop()


async def test_a_burst_past_the_rate_is_paced_not_closed(tmp_path):
    srv = ServerProcess(tmp_path / "bulk.db", env={"COLLAB_MAX_MESSAGES_PER_SECOND": "20"}).start()
    try:
        async with aiohttp.ClientSession() as session:
            bulk = await YClient.connect(session, srv.http_url, "bulk")
            editor = Editor()
            for i in range(70):  # a burst of 40 at once, then 20/s: about 1.5 s
                await bulk.send(SyncUpdate(editor.type(f"{i % 10}")))
            last = editor.type("!")
            await bulk.send(SyncUpdate(last))
            await bulk.recv_until(lambda m: isinstance(m, SyncUpdate) and m.update == last)
            async with session.get(f"{srv.http_url}/api/docs/bulk?format=json&text=body") as r:
                text = (await r.json())["text"]["body"]
            assert text == "0123456789" * 7 + "!"  # every update, in order
            assert not bulk.ws.closed
    finally:
        srv.stop()


async def loads(session: aiohttp.ClientSession, srv: ServerProcess) -> int:
    """Actors this server has woken since it started."""
    async with session.get(f"{srv.http_url}/healthz") as response:
        return (await response.json())["loads"]


async def test_subscription_churn_from_one_socket_is_paced_then_closed(tmp_path):
    """Unsubscribing and subscribing over ever new names wakes at most the socket's
    burst (COLLAB_MAX_SUBSCRIPTIONS, so a reconnect re-subscribes everything at once)
    plus COLLAB_MAX_LOADS_PER_SECOND; a socket paced past the grace is closed with
    4429, and others carry on."""
    srv = ServerProcess(tmp_path / "churn.db",
                        env={"COLLAB_MAX_SUBSCRIPTIONS": "100",
                             "COLLAB_MAX_LOADS_PER_SECOND": "20",
                             "COLLAB_RATE_LIMIT_GRACE": "2"}).start()
    try:
        async with aiohttp.ClientSession() as session:
            # A client re-subscribing all it may hold: within the burst, all answered.
            honest = await NClient.connect(session, srv.http_url)
            answers = await asyncio.gather(*(honest.request("doc.subscribe", doc=f"mine-{i}")
                                             for i in range(100)))
            assert len(answers) == 100 and not honest.ws.closed
            await honest.close()

            before = await loads(session, srv)
            churn = await NClient.connect(session, srv.http_url)
            started = time.monotonic()
            for i in range(3000):  # the churn of issue 12: 3,000 loads in 2.7 s
                if churn.ws.closed:
                    break
                await churn.notify("doc.subscribe", doc=f"churn-{i}")
                await churn.notify("doc.unsubscribe", doc=f"churn-{i}")
            await churn.wait_for(lambda: churn.ws.closed)
            elapsed = time.monotonic() - started
            assert churn.ws.close_code == 4429
            woken = await loads(session, srv) - before
            assert woken <= 100 + 20 * elapsed + 2, (woken, elapsed)

            other = await NClient.connect(session, srv.http_url)
            await other.request("doc.subscribe", doc="someone-else")
            await other.close()
    finally:
        srv.stop()


async def joined_or_closed(client: YClient) -> int | str:
    """"joined" once the server's sync step 1 comes, else the code it closed with."""
    message = await client.ws.receive(timeout=TIMEOUT)
    return "joined" if message.type is aiohttp.WSMsgType.BINARY else client.ws.close_code


async def test_actors_woken_from_one_address_are_bounded_across_its_sockets(tmp_path):
    """Sockets each within their own budget, together past their address's
    (COLLAB_MAX_LOADS_PER_SECOND_PER_IP, bursts of ten times that): `/yjs` joins of
    documents not loaded and `/ws` calls to rooms not loaded are paced, and those paced
    past the grace closed with 4429."""
    srv = ServerProcess(tmp_path / "per-ip.db",
                        env={"COLLAB_MAX_LOADS_PER_SECOND_PER_IP": "10",
                             "COLLAB_RATE_LIMIT_GRACE": "2"}).start()
    try:
        # More sockets than aiohttp's default pool of 100 connections.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            before = await loads(session, srv)
            started = time.monotonic()
            joins = [await YClient.connect(session, srv.http_url, f"join-{i}")
                     for i in range(150)]
            callers = [await NClient.connect(session, srv.http_url) for _ in range(3)]
            for n, caller in enumerate(callers):
                for i in range(50):
                    await caller.notify("actor.call", actor="room", key=f"r-{n}-{i}",
                                        action="presence")
            codes = await asyncio.gather(*(joined_or_closed(join) for join in joins[100:]))
            for caller in callers:
                await caller.wait_for(lambda caller=caller: caller.ws.closed)
            elapsed = time.monotonic() - started
            assert 4429 in codes and {caller.ws.close_code for caller in callers} == {4429}
            woken = await loads(session, srv) - before
            assert woken <= 100 + 10 * elapsed + len(callers) + 1, (woken, elapsed)
            for join in joins[:100]:  # the burst went in at once, and they stay
                assert not join.ws.closed
                await join.ws.close()
    finally:
        srv.stop()
