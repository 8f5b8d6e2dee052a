"""Per-connection rate limits against a real server: a socket past its message rate is
paced (a bulk import goes through at the rate, nothing lost, not closed); one that
floods for longer than the grace is closed with 4429, on both endpoints, while a
well-behaved client of the same document carries on; and the token bucket itself."""

from __future__ import annotations

import aiohttp

from collab.protocol.ywire import AwarenessMessage, SyncUpdate, encode_awareness
from collab.runtime.buckets import TokenBucket
from tests.nclient import NClient
from tests.serverproc import ServerProcess
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
