"""A real `collab serve` process on Postgres (a schema of each test's own): Yjs
updates, actor state and timers survive kill -9, and `collab migrate` brings a
Postgres schema up to date, also when two processes run it at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import asyncpg
import pytest

from collab.protocol.ywire import SyncUpdate
from collab.storage.schema import LATEST_VERSION
from tests.serverproc import TIMEOUT, ServerProcess
from tests.waits import until
from tests.yclient import Editor, YClient

APP = ("--app", "tests.apps.counter:registry")
#: Compact after every few rows at once, so snapshots are written to Postgres too.
COMPACT_OFTEN = {"COLLAB_COMPACT_ROWS": "5", "COLLAB_COMPACT_DELAY": "0"}


@pytest.fixture
def server(tmp_path, pg_url):
    """Start servers storing in the test's Postgres schema (logs in tmp_path/pg.log);
    every one is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(**kwargs) -> ServerProcess:
        started.append(ServerProcess(tmp_path / "pg.db", database_url=pg_url, **kwargs).start())
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


async def doc_text(session: aiohttp.ClientSession, srv: ServerProcess, doc: str) -> str:
    resp = await session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body")
    return (await resp.json())["text"]["body"]


async def test_acknowledged_yjs_updates_survive_kill_9(server, tmp_path, pg_url, session):
    srv = server(env=COMPACT_OFTEN)
    editor = Editor()
    client = await YClient.connect(session, srv.http_url, "notes")
    await client.recv()  # the server's sync step 1
    for i in range(30):
        await client.send(SyncUpdate(editor.type(f"<{i}>")))
    # The echo of the last update is its durable acknowledgement (see architecture.md).
    await client.recv_until(lambda m: isinstance(m, SyncUpdate) and b"<29>" in m.update)
    srv.kill()
    await client.ws.close()

    srv = server()
    assert await doc_text(session, srv, "notes") == "".join(f"<{i}>" for i in range(30))
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetchval("SELECT (SELECT COUNT(*) FROM doc_updates WHERE doc = $1) + "
                                   "(SELECT COUNT(*) FROM doc_snapshots WHERE doc = $1)", "notes")
    finally:
        await conn.close()
    assert rows > 0
    assert not (tmp_path / "pg.db").exists()  # nothing went to a SQLite file


async def test_http_update_survives_restart(server, session):
    srv = server()
    resp = await session.post(f"{srv.http_url}/api/docs/posted/update",
                              data=Editor().type("over http"))
    assert resp.status == 200  # answered after the commit
    srv.kill()
    assert await doc_text(session, server(), "posted") == "over http"


def action_url(srv: ServerProcess, kind: str, key: str, action: str) -> str:
    return f"{srv.http_url}/api/actors/{kind}/{key}/actions/{action}"


async def test_actor_state_and_timer_survive_kill_9(server, session):
    srv = server(args=APP)
    for i in range(1, 21):
        resp = await session.post(action_url(srv, "counter", "k9", "increment"))
        assert (await resp.json())["result"] == i
    resp = await session.post(action_url(srv, "reminder", "k9", "remind_in"),
                              json={"args": [0.5, "after the crash"]})
    timer_id = (await resp.json())["result"]
    srv.kill()

    srv = server(args=APP)
    resp = await session.post(action_url(srv, "counter", "k9", "get"))
    state = (await resp.json())["result"]
    assert state["count"] == 20 and state["created"] == 1

    async def rang() -> bool:  # the waker found the timer row in Postgres
        resp = await session.post(action_url(srv, "reminder", "k9", "fired"))
        return (await resp.json())["result"] == [["after the crash", timer_id]]

    await until(rang)


async def migrate(url: str) -> subprocess.CompletedProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collab", "migrate", "--database-url", url,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    return subprocess.CompletedProcess(proc.pid, proc.returncode, out.decode(), err.decode())


async def test_documents_are_listed_versioned_restored_and_deleted(server, session):
    """Managing documents on Postgres, across a restart: the catalog, versions and the
    incarnation live in Postgres; a deleted document's old copy is refused after it."""
    srv = server(env=COMPACT_OFTEN)
    base = f"{srv.http_url}/api/docs/pg-managed"
    editor = Editor()
    for i in range(8):  # past COMPACT_OFTEN: the catalog is counted again after snapshots
        assert (await session.post(f"{base}/update", data=editor.type(f"<{i}>"))).status == 200
    resp = await session.post(f"{base}/versions", json={"name": "eight"})
    assert resp.status == 201
    await session.post(f"{base}/update", data=editor.type("<8>"))
    srv.stop()

    srv = server()
    base = f"{srv.http_url}/api/docs/pg-managed"
    page = await (await session.get(f"{srv.http_url}/api/docs?prefix=pg-")).json()
    assert [d["name"] for d in page["docs"]] == ["pg-managed"] and page["docs"][0]["bytes"] > 0
    resp = await session.post(f"{base}/versions/1/restore")
    assert resp.status == 200, await resp.text()
    assert await doc_text(session, srv, "pg-managed") == "".join(f"<{i}>" for i in range(8))
    assert (await session.delete(base)).status == 204
    resp = await session.post(f"{base}/update", data=editor.type("<again>"))
    assert resp.status == 410
    page = await (await session.get(f"{srv.http_url}/api/docs?prefix=pg-")).json()
    assert page["docs"] == []


async def test_migrate_reports_latest_version(pg_url):
    heroku_style = pg_url.replace("postgresql://", "postgres://", 1)
    # Two at once on an empty schema: they take turns, and both report the result.
    results = await asyncio.gather(migrate(heroku_style), migrate(heroku_style))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert f"schema at version {LATEST_VERSION}" in result.stdout
    conn = await asyncpg.connect(pg_url)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM collab_schema")]
    finally:
        await conn.close()
    assert sorted(versions) == list(range(1, LATEST_VERSION + 1))
    again = await migrate(heroku_style)
    assert again.returncode == 0 and f"version {LATEST_VERSION}" in again.stdout


async def test_migrate_without_postgres_says_so():
    result = await migrate("postgres://collab:secret@127.0.0.1:1/collab")
    assert result.returncode == 1
    assert "cannot connect to Postgres at 127.0.0.1:1/collab" in result.stderr
    assert "secret" not in result.stderr + result.stdout
