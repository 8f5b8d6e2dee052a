"""SIGTERM on a real server process with 200 open WebSockets (/yjs and /ws): `/readyz`
turns 503 at once, upgrades are refused with 503, every socket is closed with 1012,
what was acknowledged is in the store after a restart, and the process exits 0 within
the bound. Past COLLAB_SHUTDOWN_TIMEOUT it exits 1, saying so."""

from __future__ import annotations

import asyncio
import resource
import signal

import aiohttp

from collab.protocol.ywire import SyncUpdate
from tests.nclient import NClient
from tests.serverproc import ServerProcess
from tests.waits import until
from tests.yclient import Editor, YClient

#: Open sockets at the moment of the signal, half on each endpoint.
SOCKETS = 200
DOCS = 10
#: Seconds from SIGTERM to exit that the shutdown must stay under (Heroku kills at 30).
EXIT_BOUND = 25.0
#: Connections opened at once: below the listen backlog (128), so none waits for a retry.
CONNECT_BATCH = 50
APP = ("--app", "tests.apps.counter:registry")
#: Seconds a Lingerer actor takes to save at shutdown: the drain stays open at least
#: that long, so the test can watch /readyz and refused upgrades meanwhile.
LINGER = 3.0


def raise_open_file_limit(needed: int) -> None:
    """Let this process (and the server it starts, which inherits it) hold `needed` fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def in_batches(make, count: int) -> list:
    made = []
    for start in range(0, count, CONNECT_BATCH):
        batch = range(start, min(count, start + CONNECT_BATCH))
        made += await asyncio.gather(*(make(i) for i in batch))
    return made


async def doc_text(session: aiohttp.ClientSession, base_url: str, doc: str) -> str:
    resp = await session.get(f"{base_url}/api/docs/{doc}?format=json&text=body")
    return (await resp.json())["text"]["body"]


async def linger(session: aiohttp.ClientSession, base_url: str, seconds: float) -> None:
    resp = await session.post(f"{base_url}/api/actors/lingerer/l/actions/linger",
                              json={"args": [seconds]})
    assert resp.status == 200


async def upgrade_status(session: aiohttp.ClientSession, url: str) -> int:
    try:
        ws = await session.ws_connect(url)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def test_sigterm_with_200_sockets(tmp_path):
    raise_open_file_limit(4 * SOCKETS + 256)
    db = tmp_path / "term.db"
    srv = ServerProcess(db, args=APP).start()
    connector = aiohttp.TCPConnector(limit=0)  # the default pool holds only 100
    async with aiohttp.ClientSession(connector=connector) as session:
        async def yjs_client(i: int) -> YClient:
            client = await YClient.connect(session, srv.http_url, f"doc-{i % DOCS}")
            await client.recv()  # sync step 1: it has joined
            return client

        async def native_client(i: int) -> NClient:
            client = await NClient.connect(session, srv.http_url)
            await client.request("doc.subscribe", doc=f"doc-{i % DOCS}")
            return client

        yjs = await in_batches(yjs_client, SOCKETS // 2)
        native = await in_batches(native_client, SOCKETS // 2)
        # Acknowledged just before the signal: the echo on /yjs, the answer on /ws.
        editor = Editor()
        await yjs[0].send(SyncUpdate(editor.type("<acked on yjs>")))
        await yjs[0].recv_until(lambda m: isinstance(m, SyncUpdate)
                                and b"acked on yjs" in m.update)
        await native[1].request("doc.update", doc="doc-1",
                                update=Editor().type("<acked on ws>"))
        await linger(session, srv.http_url, LINGER)
        closes = [asyncio.create_task(client.closed_with()) for client in yjs]

        srv.proc.send_signal(signal.SIGTERM)
        signalled = asyncio.get_running_loop().time()

        async def draining() -> bool:
            resp = await session.get(f"{srv.http_url}/readyz")
            return resp.status == 503 and (await resp.json()) == {"status": "draining"}

        await until(draining)
        base = srv.http_url.replace("http", "ws", 1)
        assert await upgrade_status(session, f"{base}/yjs/doc-0") == 503
        assert await upgrade_status(session, f"{base}/ws") == 503

        assert await asyncio.gather(*closes) == [1012] * len(yjs)
        for client in native:
            await client.wait_for(lambda c=client: c.ws.closed)
        assert [client.ws.close_code for client in native] == [1012] * len(native)

        code = await asyncio.to_thread(srv.proc.wait, EXIT_BOUND)
        assert code == 0
        assert asyncio.get_running_loop().time() - signalled < EXIT_BOUND

    restarted = ServerProcess(db).start()
    try:
        async with aiohttp.ClientSession() as session:
            assert "<acked on yjs>" in await doc_text(session, restarted.http_url, "doc-0")
            assert "<acked on ws>" in await doc_text(session, restarted.http_url, "doc-1")
    finally:
        assert restarted.stop() == 0
    assert "stopped in" in srv.log()


async def test_shutdown_past_its_deadline_exits_1(tmp_path):
    limit = "1"  # seconds, well under the time the Lingerer takes to save
    srv = ServerProcess(tmp_path / "late.db", env={"COLLAB_SHUTDOWN_TIMEOUT": limit},
                        args=APP).start()
    async with aiohttp.ClientSession() as session:
        await linger(session, srv.http_url, 4 * float(limit))
    srv.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(srv.proc.wait, EXIT_BOUND)
    assert code == 1
    assert f"shutdown did not finish within {limit} s" in srv.log()
