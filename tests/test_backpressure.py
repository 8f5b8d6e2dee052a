"""Backpressure in a chat room: a `/ws` member that never reads is dropped once its
outbound buffer passes COLLAB_MAX_OUTBOUND_BYTES, while the room carries on for
everyone else and the server's memory stays bounded (the same for documents is in
test_document_lifecycle.py); and a newcomer is never dropped for the size of the sync
it asked for."""

from __future__ import annotations

import asyncio
import os
import socket

import aiohttp
import msgpack

from collab.protocol import ywire
from collab.protocol.ywire import SyncStep1, SyncUpdate
from tests.nclient import NClient
from tests.serverproc import ServerProcess
from tests.test_document_lifecycle import open_raw_websocket
from tests.waits import until
from tests.yclient import Editor, YClient

ROOM = {"actor": "room", "key": "busy"}
BODY = "x" * 15_000  # just under the 16 KiB message limit
#: A document larger than the kernel's socket buffers on loopback (4 MiB at most for
#: sending) and far larger than the outbound allowance the test sets, written in chunks.
DOC_BYTES, CHUNK = 6 * 1024 * 1024, 256 * 1024


def masked_frame(payload: bytes) -> bytes:
    """One binary WebSocket frame as a client must send it (masked)."""
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x82])
    if size < 126:
        header += bytes([0x80 | size])
    elif size < 65536:
        header += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + size.to_bytes(8, "big")
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


async def open_unread_websocket(port: int, path: str) -> tuple[asyncio.StreamReader,
                                                                asyncio.StreamWriter]:
    """A WebSocket that completes the handshake and then reads nothing until told, with
    a small receive buffer so the kernel cannot absorb what the server sends it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def sent_bytes(session: aiohttp.ClientSession, srv: ServerProcess, endpoint: str,
                     kind: str) -> float:
    async with session.get(f"{srv.http_url}/metrics") as response:
        text = await response.text()
    prefix = f'collab_sent_bytes_total{{endpoint="{endpoint}",kind="{kind}"}} '
    return float(next(line for line in text.splitlines() if line.startswith(prefix))
                 [len(prefix):])


async def test_a_newcomer_is_never_dropped_for_the_size_of_the_sync_it_asked_for(tmp_path):
    """A document far larger than COLLAB_MAX_OUTBOUND_BYTES: what a client asked for to
    sync (the document, who is here) may wait unread without making it a slow consumer,
    on both endpoints; a client that asks again and again without reading is still
    dropped once past one document's worth."""
    srv = ServerProcess(tmp_path / "big.db",
                        env={"COLLAB_MAX_OUTBOUND_BYTES": str(256 * 1024),
                             "COLLAB_MAX_DOCUMENT_BYTES": str(DOC_BYTES + 1024 * 1024)}).start()
    try:
        async with aiohttp.ClientSession() as session:
            writer = await YClient.connect(session, srv.http_url, "big")
            editor = Editor()
            await writer.recv()  # its sync step 1: from now on, read what comes back
            for _ in range(DOC_BYTES // CHUNK):  # far past the kernel's socket buffers too
                await writer.send(SyncUpdate(editor.type("x" * CHUNK)))
                await writer.recv_until(lambda m: isinstance(m, SyncUpdate))  # the echo

            # Each newcomer asks, then reads nothing until the server has written it all.
            answers = (("yjs", "sync_step2"), ("ws", "response"))
            before = [await sent_bytes(session, srv, *answer) for answer in answers]
            yjs_reader, yjs = await open_unread_websocket(srv.port, "/yjs/big")
            yjs.write(masked_frame(ywire.serialize(SyncStep1(b"\x00"))))
            ws_reader, ws = await open_unread_websocket(srv.port, "/ws")
            ws.write(masked_frame(msgpack.packb({"id": 1, "op": "doc.subscribe", "doc": "big"})))

            async def both_written() -> bool:
                now = [await sent_bytes(session, srv, *answer) for answer in answers]
                return all(after - was > DOC_BYTES for was, after in zip(before, now,
                                                                          strict=True))
            await until(both_written)
            for reader in (yjs_reader, ws_reader):  # all of it comes, nothing cut
                await reader.readexactly(DOC_BYTES)
            await writer.send(SyncUpdate(editor.type("still here")))
            for reader in (yjs_reader, ws_reader):
                await reader.readuntil(b"still here")
            assert "slow consumer" not in srv.log()

            # Asking for the document again and again without reading is no initial sync.
            sock, raw = await open_raw_websocket(srv.port, "/yjs/big")
            for _ in range(4):
                raw.write(masked_frame(ywire.serialize(SyncStep1(b"\x00"))))
            await raw.drain()
            await until(lambda: "slow consumer" in srv.log())
            sock.close()
            for stream in (yjs, ws):
                stream.close()
            await writer.ws.close()
    finally:
        srv.stop()
