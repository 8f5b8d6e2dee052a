"""Loading, keep-alive and fan-out of one document, against a real server process."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp.test_utils import TestServer

from collab.config import Settings
from collab.gateway.app import build_app
from collab.protocol.ywire import (
    AwarenessMessage,
    SyncStep1,
    SyncUpdate,
    decode_state_vector,
    encode_awareness,
    serialize,
)
from tests.serverproc import TIMEOUT, ServerProcess
from tests.waits import until
from tests.yclient import Editor, YClient


async def test_concurrent_first_connections_share_one_load(tmp_path):
    db = tmp_path / "load.db"
    srv = ServerProcess(db).start()
    editor = Editor()
    async with aiohttp.ClientSession() as session:
        client = await YClient.connect(session, srv.http_url, "busy")
        await client.recv()
        for i in range(300):
            await client.send(SyncUpdate(editor.type(f"line {i}\n")))
        await client.recv_until(lambda m: isinstance(m, SyncUpdate) and b"line 299" in m.update)
    srv.stop()

    srv = ServerProcess(db).start()
    try:
        async with aiohttp.ClientSession() as session:
            clients = await asyncio.gather(
                *(YClient.connect(session, srv.http_url, "busy") for _ in range(30)))
            first = await asyncio.gather(*(c.recv() for c in clients))
            expected = decode_state_vector(editor.doc.get_state())
            # Nobody saw an empty document while it loaded.
            assert all(isinstance(m, SyncStep1) for m in first)
            assert all(decode_state_vector(m.state_vector) == expected for m in first)
            health = await (await session.get(f"{srv.http_url}/healthz")).json()
            assert health["loads"] == 1
    finally:
        srv.stop()


async def test_silent_peer_is_dropped_by_keepalive(tmp_path):
    """One sweep for all sockets (gateway/keepalive.py): a socket silent for a round
    is pinged, and dropped if it stays silent; an answered ping, or any other frame,
    keeps a socket."""
    srv = ServerProcess(tmp_path / "ka.db", env={"COLLAB_PING_INTERVAL": "0.4"}).start()
    try:
        async with aiohttp.ClientSession() as session:
            # autoping=False: these clients never answer the server's pings.
            silent = await session.ws_connect(f"{srv.http_url}/yjs/ka", autoping=False)
            talker = await session.ws_connect(f"{srv.http_url}/yjs/ka", autoping=False)
            polite = await session.ws_connect(f"{srv.http_url}/yjs/ka")
            talking = asyncio.ensure_future(talk(talker))
            seen = []
            async with asyncio.timeout(TIMEOUT):
                while True:
                    msg = await silent.receive()
                    seen.append(msg.type)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
            assert aiohttp.WSMsgType.PING in seen, "dropped without a ping first"
            assert not polite.closed  # an answering peer stays connected
            await asyncio.sleep(1.0)  # two more ping rounds
            assert not polite.closed and not talker.closed
            talking.cancel()
    finally:
        srv.stop()


async def test_served_by_an_application_s_own_runner_a_silent_socket_is_dropped(tmp_path):
    """Without collab's Listener (an application's own aiohttp runner), the keep-alive
    sweep covers the sockets all the same."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/hb.db", ping_interval=0.4)
    server = TestServer(build_app(settings))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            silent = await session.ws_connect(server.make_url("/yjs/hb"), autoping=False)
            polite = await session.ws_connect(server.make_url("/yjs/hb"))
            async with asyncio.timeout(TIMEOUT):
                while (await silent.receive()).type not in (aiohttp.WSMsgType.CLOSE,
                                                             aiohttp.WSMsgType.CLOSED):
                    pass
            assert not polite.closed
            await polite.close()
    finally:
        await server.close()


async def talk(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Send an (empty) awareness message every 0.1 s, reading nothing."""
    while True:
        await ws.send_bytes(serialize(AwarenessMessage(encode_awareness([]))))
        await asyncio.sleep(0.1)


async def test_updates_in_one_turn_reach_everyone_and_converge(tmp_path):
    """Many writers at once: coalesced broadcasts still deliver every update to every
    other client, and each writer gets exactly its own updates echoed."""
    srv = ServerProcess(tmp_path / "fan.db").start()
    try:
        async with aiohttp.ClientSession() as session:
            clients = [await YClient.connect(session, srv.http_url, "fan") for _ in range(8)]
            await asyncio.gather(*(c.recv() for c in clients))
            editors = [Editor() for _ in clients]
            pairs = list(zip(clients, editors, strict=True))
            for round_ in range(10):
                await asyncio.gather(*(c.send(SyncUpdate(e.type(f"<{i}.{round_}>")))
                                       for i, (c, e) in enumerate(pairs)))
            wanted = {f"<{i}.{r}>".encode() for i in range(8) for r in range(10)}

            async def collect(client: YClient, editor: Editor) -> None:
                seen: set[bytes] = set()
                async with asyncio.timeout(TIMEOUT):
                    while not wanted <= seen:
                        message = await client.recv()
                        if isinstance(message, SyncUpdate):
                            editor.doc.apply_update(message.update)
                            seen = {w for w in wanted if w in str(editor.text).encode()}

            await asyncio.gather(*(collect(c, e) for c, e in zip(clients, editors, strict=True)))
            texts = {str(e.text) for e in editors}
            assert len(texts) == 1
    finally:
        srv.stop()



async def open_raw_websocket(port: int, path: str) -> tuple[socket.socket, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads, with a
    small receive buffer so the kernel cannot absorb a backlog for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    status = await reader.readline()
    assert b" 101 " in status, status
    await reader.readuntil(b"\r\n\r\n")
    return sock, writer


async def test_slow_consumer_is_dropped_and_the_rest_carry_on(tmp_path):
    """A client that never reads fills its socket buffer; past COLLAB_MAX_OUTBOUND_BYTES
    the server drops it instead of buffering without bound, and the writer and a
    reading client are unaffected."""
    srv = ServerProcess(tmp_path / "slow.db",
                        env={"COLLAB_MAX_OUTBOUND_BYTES": str(256 * 1024)}).start()
    try:
        _, slow = await open_raw_websocket(srv.port, "/yjs/slow")
        async with aiohttp.ClientSession() as session:
            writer = await YClient.connect(session, srv.http_url, "slow")
            reader = await YClient.connect(session, srv.http_url, "slow")
            await writer.recv(), await reader.recv()
            editor = Editor()
            chunk = "x" * 16 * 1024
            for i in range(200):  # 3.2 MiB in all, far past the slow peer's allowance
                await writer.send(SyncUpdate(editor.type(f"<{i}>{chunk}")))
            await reader.recv_until(lambda m: isinstance(m, SyncUpdate)
                                    and b"<199>" in m.update)
            await until(lambda: "slow consumer" in srv.log())

            async def only_the_readers_left() -> bool:
                health = await (await session.get(f"{srv.http_url}/healthz")).json()
                return health["connections"] == 2  # writer and reader, not the slow one

            await until(only_the_readers_left)
        slow.close()
    finally:
        srv.stop()
