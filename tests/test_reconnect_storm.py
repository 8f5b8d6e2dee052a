"""A reconnect storm against a real server: 500 y-websocket clients on one document,
the server restarted under them (every socket closed with 1012), and all 500
reconnecting at the same moment. Every one of them resyncs the whole document, and
the server's memory stays bounded (measured, not timed)."""

from __future__ import annotations

import asyncio
import resource

import aiohttp
from pycrdt import Doc, Text

from collab.protocol.ywire import SyncStep1, SyncStep2, SyncUpdate
from tests.serverproc import ServerProcess
from tests.yclient import Editor, YClient

CLIENTS = 500
#: Server RSS allowed for 500 connections on one document, over its idle size: a
#: generous bound (8 MiB was measured: ~17 KiB a connection) that a per-connection leak or an
#: unbounded buffer would break.
RSS_GROWTH_LIMIT_MIB = 200


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def sync(session: aiohttp.ClientSession, base_url: str, doc: str) -> tuple[YClient, str]:
    """Connect, ask for everything (an empty state vector), return the text synced."""
    client = await YClient.connect(session, base_url, doc)
    await client.send(SyncStep1(b"\x00"))
    ydoc = Doc()
    answer = await client.recv_until(lambda m: isinstance(m, SyncStep2))
    ydoc.apply_update(answer.update)
    return client, str(ydoc.get("body", type=Text))


async def test_500_clients_reconnect_at_once_and_all_resync(tmp_path):
    raise_open_file_limit(4 * CLIENTS)
    srv = ServerProcess(tmp_path / "storm.db").start()
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            writer = await YClient.connect(session, srv.http_url, "storm")
            editor = Editor()
            for i in range(200):
                await writer.send(SyncUpdate(editor.type(f"<{i}>")))
            expected = str(editor.text)
            await writer.recv_until(lambda m: isinstance(m, SyncUpdate) and b"<199>" in m.update)

            first = await asyncio.gather(*(sync(session, srv.http_url, "storm")
                                           for _ in range(CLIENTS)))
            assert all(text == expected for _, text in first)

            srv.stop()  # SIGTERM: every socket is closed with 1012
            codes = await asyncio.gather(*(client.closed_with() for client, _ in first))
            assert set(codes) == {1012}
            srv.start()  # same database file
            idle = srv.rss_mib()
            storm = await asyncio.gather(*(sync(session, srv.http_url, "storm")
                                           for _ in range(CLIENTS)))
            assert all(text == expected for _, text in storm)
            growth = srv.rss_mib() - idle
            assert growth < RSS_GROWTH_LIMIT_MIB, f"server RSS grew {growth:.0f} MiB"
            for client, _ in storm:
                await client.ws.close()
    finally:
        srv.stop()
