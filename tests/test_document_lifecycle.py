"""Loading, keep-alive and fan-out of one document, against a real server process."""

from __future__ import annotations

import asyncio

import aiohttp

from collab.protocol.ywire import SyncStep1, SyncUpdate, decode_state_vector
from tests.serverproc import TIMEOUT, ServerProcess
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
    srv = ServerProcess(tmp_path / "ka.db", env={"COLLAB_PING_INTERVAL": "0.4"}).start()
    try:
        async with aiohttp.ClientSession() as session:
            # autoping=False: this client never answers the server's pings.
            silent = await session.ws_connect(f"{srv.http_url}/yjs/ka", autoping=False)
            polite = await session.ws_connect(f"{srv.http_url}/yjs/ka")
            async with asyncio.timeout(TIMEOUT):
                while True:
                    msg = await silent.receive()
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
            assert not polite.closed  # an answering peer stays connected
            await asyncio.sleep(1.0)  # two more ping rounds
            assert not polite.closed
    finally:
        srv.stop()


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

