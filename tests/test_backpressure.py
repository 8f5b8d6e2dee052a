"""Backpressure in a chat room: a `/ws` member that never reads is dropped once its
outbound buffer passes COLLAB_MAX_OUTBOUND_BYTES, while the room carries on for
everyone else and the server's memory stays bounded (the same for documents is in
test_document_lifecycle.py)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import msgpack

from tests.nclient import NClient
from tests.serverproc import ServerProcess
from tests.test_document_lifecycle import open_raw_websocket
from tests.waits import until

ROOM = {"actor": "room", "key": "busy"}
BODY = "x" * 15_000  # just under the 16 KiB message limit


def masked_frame(payload: bytes) -> bytes:
    """One binary WebSocket frame as a client must send it (masked)."""
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x82])
    if size < 126:
        header += bytes([0x80 | size])
    else:
        header += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_member_that_never_reads_is_dropped_and_the_room_carries_on(tmp_path):
    srv = ServerProcess(tmp_path / "busy.db",
                        env={"COLLAB_MAX_OUTBOUND_BYTES": str(256 * 1024)}).start()
    try:
        sock, raw = await open_raw_websocket(srv.port, "/ws")
        raw.write(masked_frame(msgpack.packb(
            {"id": 1, "op": "actor.connect", **ROOM, "params": {"user": "sleepy"}})))
        await raw.drain()
        async with aiohttp.ClientSession() as session:
            reader = await NClient.connect(session, srv.http_url)
            await reader.request("actor.connect", **ROOM, params={"user": "reader"})
            writers = []
            for i in range(12):
                client = await NClient.connect(session, srv.http_url)
                await client.request("actor.connect", **ROOM, params={"user": f"w{i}"})
                writers.append(client)
            idle = srv.rss_mib()

            async def chat(i: int, client: NClient) -> None:
                for n in range(18):  # within the rate limit's burst
                    await client.request("actor.call", **ROOM, action="send",
                                         args=[f"{i}-{n}", BODY])

            # 216 messages of 15 KB: 3.2 MB for each member, far past the sleeper's allowance.
            await asyncio.gather(*(chat(i, c) for i, c in enumerate(writers)))
            await until(lambda: "slow consumer" in srv.log())

            def messages() -> int:
                return sum(1 for e in reader.events if e.get("name") == "message")
            await reader.wait_for(lambda: messages() == 216)  # every one, in order
            seqs = [e["data"]["seq"] for e in reader.events if e.get("name") == "message"]
            assert seqs == list(range(1, 217))
            presence = await reader.request("actor.call", **ROOM, action="presence")
            assert "sleepy" not in [u["user"] for u in presence["users"]]
            growth = srv.rss_mib() - idle
            assert growth < 100, f"server RSS grew {growth:.0f} MiB"
            for client in [reader, *writers]:
                await client.close()
        sock.close()
    finally:
        srv.stop()
