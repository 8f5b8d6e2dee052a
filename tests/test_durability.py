"""Durability with a real server process: SIGKILL at random moments (also during
compaction) loses no acknowledged update; SIGTERM closes with 1012 and flushes."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time

import aiohttp
import pytest

from collab.protocol.ywire import SyncStep2, SyncUpdate
from tests.serverproc import TIMEOUT, ServerProcess
from tests.waits import until
from tests.yclient import Editor, YClient

MARKER = re.compile(rb"<(\d+)>")


async def doc_text(base_url: str, doc: str) -> str:
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"{base_url}/api/docs/{doc}?format=json&text=body")
        return (await resp.json())["text"]["body"]


async def stream_until_killed(srv: ServerProcess, doc: str, editor: Editor, start: int,
                              kill_after: float) -> set[int]:
    """Send marker updates as fast as they are acknowledged (window 20) and SIGKILL
    the server after `kill_after` seconds; returns the markers whose echo arrived."""
    acked: set[int] = set()
    async with aiohttp.ClientSession() as session:
        client = await YClient.connect(session, srv.http_url, doc)
        # As a provider does: answer the server's state vector with what it lacks
        # (updates sent before the last kill that were never acknowledged).
        server_state = await client.recv()
        await client.send(SyncStep2(editor.doc.get_update(server_state.state_vector)))

        async def reader():
            while True:
                try:
                    message = await client.recv()
                except (TimeoutError, ConnectionError, TypeError):
                    return
                if isinstance(message, SyncUpdate):
                    acked.update(int(m) for m in MARKER.findall(message.update))

        reading = asyncio.create_task(reader())
        killer = asyncio.get_running_loop().call_later(kill_after, srv.kill)
        i = start
        deadline = time.monotonic() + kill_after + TIMEOUT
        try:
            while srv.proc.poll() is None and time.monotonic() < deadline:
                if i - start - len(acked) < 20:
                    await client.send(SyncUpdate(editor.type(f"<{i}>")))
                    i += 1
                else:
                    await asyncio.sleep(0.001)
        except (ConnectionError, aiohttp.ClientError):
            pass
        finally:
            killer.cancel()
            srv.kill()
            await asyncio.wait([reading], timeout=TIMEOUT)
    return acked


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="log-only"),
        # Compaction after every few rows, with no delay: kills land mid-compaction.
        pytest.param({"COLLAB_COMPACT_ROWS": "5", "COLLAB_COMPACT_DELAY": "0"},
                     id="during-compaction"),
        # Servers run on uvloop unless told otherwise (collab/eventloop.py).
        pytest.param({"COLLAB_EVENT_LOOP": "asyncio"}, id="asyncio-loop"),
    ],
)
async def test_sigkill_loses_no_acknowledged_update(tmp_path, env):
    db = tmp_path / "crash.db"
    editor = Editor()
    rng = random.Random(7)
    acked_all: set[int] = set()
    start = 0
    for _round in range(4):
        srv = ServerProcess(db, env=env).start()
        acked = await stream_until_killed(srv, "crash", editor, start,
                                          kill_after=rng.uniform(0.3, 1.2))
        assert acked, "no update was acknowledged before the kill"
        acked_all |= acked
        start += 10_000
        srv = ServerProcess(db, env=env).start()
        present = {int(m) for m in MARKER.findall((await doc_text(srv.http_url, "crash"))
                                                  .encode())}
        srv.stop()
        lost = sorted(acked_all - present)
        assert not lost, f"{len(lost)} acknowledged updates lost, first: {lost[:10]}"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_sigterm_closes_1012_and_flushes_pending_writes(tmp_path):
    db = tmp_path / "term.db"
    srv = ServerProcess(db).start()
    editor = Editor()
    async with aiohttp.ClientSession() as session:
        writer = await YClient.connect(session, srv.http_url, "term")
        watcher = await YClient.connect(session, srv.http_url, "term")
        await writer.recv(), await watcher.recv()
        for i in range(200):
            await writer.send(SyncUpdate(editor.type(f"<{i}>")))
        # The watcher saw the last one: the server applied all 200 (acks may still be pending).
        await watcher.recv_until(
            lambda m: isinstance(m, SyncUpdate) and b"<199>" in m.update)
        srv.proc.send_signal(15)
        assert await watcher.closed_with() == 1012
        assert srv.proc.wait(timeout=TIMEOUT) == 0
    srv = ServerProcess(db).start()
    text = await doc_text(srv.http_url, "term")
    srv.stop()
    assert all(f"<{i}>" in text for i in range(200))


async def test_hibernation_unloads_every_idle_document(tmp_path):
    srv = ServerProcess(tmp_path / "idle.db", env={"COLLAB_IDLE_TIMEOUT": "0.2"}).start()
    try:
        async with aiohttp.ClientSession() as session:
            async def open_and_close(n: int) -> None:
                client = await YClient.connect(session, srv.http_url, f"doc-{n}")
                await client.recv()
                if n % 10 == 0:  # some documents get content, so unloading must save it
                    await client.send(SyncUpdate(Editor().type(f"content {n}")))
                    await client.recv()
                await client.ws.close()

            for batch in range(0, 1000, 50):
                await asyncio.gather(*(open_and_close(n) for n in range(batch, batch + 50)))

            async def health() -> dict:
                return await (await session.get(f"{srv.http_url}/healthz")).json()

            peak = (await health())["actors"]
            async def all_unloaded() -> bool:
                return (await health())["actors"] == 0

            await until(all_unloaded)
            assert peak > 0
            # The next request loads a document again, with its content.
            assert await doc_text(srv.http_url, "doc-990") == "content 990"
    finally:
        srv.stop()
