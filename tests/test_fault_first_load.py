"""A fault while a document or a chat room loads for the first time: the actor's
first read of the store fails, and every request waiting for it is refused.

Refused as a passing condition, as when a document loads again (test_fault_reload.py):
a `/ws` client is answered `store_unavailable` and subscribes (or connects) again
later, y-websocket and Hocuspocus sockets are closed with 1013 and sync again when
they reconnect, HTTP answers 503 `store_unavailable`. Once the fault is lifted the
document syncs, and every edit made meanwhile is in it exactly once; a client of
another document is not closed.

Postgres: the tables the load reads first are locked, and the server's backends
waiting on them are terminated (test_fault_reload.reads_terminated).

SQLite: its reads (WAL mode) wait for no writer, but they do wait while another
process recovers the WAL index (rebuilds the -shm file from the WAL after the last
connection crashed): the index header does not check out and the recovering
process holds the WAL write and recovery locks, so a read fails with
SQLITE_BUSY_RECOVERY once the busy timeout (5 s) runs out. `wal_index_recovering`
puts the database in that state with SQLite's own locks; when it lets go, the next
reader recovers the index from the WAL, as after a crash. Writes fail meanwhile
too, so on SQLite the other document's client does not edit during the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from collab.client import CollabClient, CollabError
from collab.errors import CloseCode
from collab.protocol import hocuspocus as hp
from collab.protocol import ywire
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.test_fault_holes import tagged
from tests.test_fault_reload import Provider, markers, reads_terminated
from tests.test_hocuspocus import HP, of, text
from tests.test_python_client import body, native_url
from tests.waits import TIMEOUT, until
from tests.yclient import Editor

#: The other document keeps its CRDT loaded through the fault (it is not quiet for
#: COLLAB_CONNECTED_IDLE_TIMEOUT): its edits then need no read of the store.
ENV = {"COLLAB_MAX_CONNECTIONS_PER_IP": "0"}
#: SQLite's locks on a WAL database's shared-memory file, one byte each from this
#: offset on (os_unix.c UNIX_SHM_BASE), and the two a WAL-index recovery holds
#: (wal.c WAL_WRITE_LOCK, WAL_RECOVER_LOCK).
SHM_LOCKS = 120
WAL_WRITE_LOCK, WAL_RECOVER_LOCK = 0, 2
#: Where the first of the WAL-index header's two copies keeps its change counter.
HEADER_CHANGE = 8


@contextlib.asynccontextmanager
async def wal_index_recovering(db_path: Path):
    """While inside, the SQLite database at `db_path` is as while another process
    recovers its WAL index: every read of it waits its busy timeout out, then fails
    with SQLITE_BUSY_RECOVERY (see the module docstring). The locks are this
    process's POSIX locks: nothing in it may open and close the -shm file meanwhile
    (closing any descriptor of a file releases the process's locks on it)."""
    fd = os.open(f"{db_path}-shm", os.O_RDWR)
    try:
        for lock in (WAL_WRITE_LOCK, WAL_RECOVER_LOCK):
            async with asyncio.timeout(TIMEOUT):
                while True:  # the server may be committing (it holds the write lock)
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_LOCKS + lock)
                        break
                    except OSError:
                        await asyncio.sleep(0.005)
        # The two copies of the header now differ: a reader must recover the index,
        # and needs the write lock for that.
        change = os.pread(fd, 1, HEADER_CHANGE)
        os.pwrite(fd, bytes([change[0] ^ 0xFF]), HEADER_CHANGE)
        yield
    finally:
        os.close(fd)  # releases both locks: the next reader recovers the index


@contextlib.asynccontextmanager
async def load_fails(backend: str, srv: ServerProcess, admin_url: str | None, tag: str,
                     tables: str):
    """While inside, the server's reads of the store fail (Postgres: its reads of
    `tables`), and so does every load of an actor that is not loaded yet."""
    if backend == "sqlite":
        async with wal_index_recovering(srv.db_path):
            yield
    else:
        async with reads_terminated(admin_url, tag, tables) as killed:
            yield
            assert killed[0] >= 1


async def refusal(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    """The status and error code of a GET expected to fail."""
    async with session.get(url) as response:
        return response.status, (await response.json())["error"]["code"]


@contextlib.asynccontextmanager
async def servers(tmp_path: Path, pg_schema, backend: str, tag: str):
    """Yields (start, admin URL): start() runs a server on the test's store (one at
    a time: the previous one is stopped first)."""
    async with contextlib.AsyncExitStack() as stack:
        url = admin_url = None
        if backend == "postgres":
            admin_url = await stack.enter_async_context(pg_schema())
            url = tagged(admin_url, tag)
        running: list[ServerProcess] = []

        def start() -> ServerProcess:
            for old in running:
                old.stop()
            srv = ServerProcess(tmp_path / "first.db", database_url=url, env=ENV).start()
            running.append(srv)
            stack.callback(srv.kill)
            return srv

        yield start, admin_url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_document_whose_first_load_fails_syncs_once_the_store_is_back(
        tmp_path, pg_schema, session, backend: str):
    tag = f"collab-first-{secrets.token_hex(4)}"
    async with servers(tmp_path, pg_schema, backend, tag) as (start, admin_url), \
            contextlib.AsyncExitStack() as stack:
        # What the store holds before: the server that wrote it stops, so the next one
        # has not loaded the document.
        srv = start()
        async with session.post(f"{srv.http_url}/api/docs/first/update",
                                data=Editor().type("<seed:1>")) as response:
            assert response.status == 200, await response.text()
        srv = start()

        other = Provider(session, srv, "other", "o").start()  # loaded before the fault
        stack.push_async_callback(other.stop)
        await other.synced()
        await other.edit()
        native = CollabClient(native_url(srv), max_delay=0.5)
        stack.push_async_callback(native.close)
        errors: list[CollabError] = []
        writer = Provider(session, srv, "first", "w")
        stack.push_async_callback(writer.stop)
        hocuspocus = await HP.connect(session, srv)
        stack.push_async_callback(hocuspocus.ws.close)
        get_url = f"{srv.http_url}/api/docs/first?format=json&text=body"

        async with load_fails(backend, srv, admin_url, tag, "doc_snapshots"):
            # All of them ask for the document while its (first) load is under way.
            doc = await native.doc("first", wait=False)
            doc.on("error", errors.append)
            writer.start()
            read = asyncio.ensure_future(refusal(session, get_url))
            assert isinstance((await hocuspocus.open("first")).message, hp.Authenticated)
            assert await hocuspocus.closed_with() == CloseCode.TRY_AGAIN_LATER
            assert await read == (503, "store_unavailable")
            await until(lambda: bool(errors and writer.closes))
            # Told as a passing outage (so they retry), never as an internal error.
            assert {error.code for error in errors} == {"store_unavailable"}, errors
            assert set(writer.closes) == {CloseCode.TRY_AGAIN_LATER}, writer.closes
            # Edits made meanwhile go out with the next sync.
            body(doc).insert(len(body(doc)), "<p:1>")
            await writer.edit()
            if backend == "postgres":  # on SQLite the fault blocks writes as well
                last_other = await other.edit()  # another document's commits go on
                await until(lambda: last_other in other.acked)

        async with asyncio.timeout(TIMEOUT):
            await doc.wait_first_sync()
            await doc.saved()
        await until(lambda: writer.client is not None)
        last = await writer.edit()
        await until(lambda: last in writer.acked)
        last_other = await other.edit()
        await until(lambda: last_other in other.acked)

        expected = Counter(["seed:1", "p:1", *writer.made])
        async with session.get(get_url) as response:
            assert response.status == 200
            assert markers((await response.json())["text"]["body"]) == expected
        await until(lambda: markers(str(body(doc))) == expected)
        await until(lambda: markers(writer.text) == expected)
        assert {error.code for error in errors} == {"store_unavailable"}, errors
        assert set(writer.closes) == {CloseCode.TRY_AGAIN_LATER}, writer.closes
        assert other.closes == [], "another document's client was closed"
        hocuspocus = await HP.connect(session, srv)  # and a Hocuspocus socket syncs now
        stack.push_async_callback(hocuspocus.ws.close)
        assert isinstance((await hocuspocus.open("first")).message, hp.Authenticated)
        await hocuspocus.send("first", ywire.SyncStep1(ywire.EMPTY_STATE_VECTOR))
        answer = await hocuspocus.recv_until(of(ywire.SyncStep2, "first"))
        assert markers(text(answer.message.update)) == expected


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_room_whose_first_load_fails_is_joined_once_the_store_is_back(
        tmp_path, pg_schema, session, backend: str):
    tag = f"collab-first-{secrets.token_hex(4)}"
    async with servers(tmp_path, pg_schema, backend, tag) as (start, admin_url), \
            contextlib.AsyncExitStack() as stack:
        srv = start()
        async with session.post(f"{srv.http_url}/api/actors/room/lobby/actions/send",
                                json={"args": ["seed-1", "<seed:1>"],
                                      "kwargs": {"user": "ann"}}) as response:
            assert response.status == 200, await response.text()
        srv = start()

        raw = await NClient.connect(session, srv.http_url)
        stack.push_async_callback(raw.close)
        native = CollabClient(native_url(srv), max_delay=0.5)
        stack.push_async_callback(native.close)
        messages_url = f"{srv.http_url}/api/rooms/lobby/messages"

        # A room reads its state first (then its newest messages).
        async with load_fails(backend, srv, admin_url, tag, "actor_state"):
            room = await native.room("lobby", user="bob", wait=False)
            sent = asyncio.ensure_future(room.send("<r:1>"))  # goes once it is joined
            read = asyncio.ensure_future(refusal(session, messages_url))
            with pytest.raises(NativeError) as refused:
                await raw.request("actor.connect", actor="room", key="lobby",
                                  params={"user": "cat"})
            assert refused.value.code == "store_unavailable"
            assert await read == (503, "store_unavailable")
            # The handle was refused too (a passing refusal is not reported: it retries).
            await until(lambda: room._connect_failures >= 1)
            assert not sent.done() and not room._closed

        async with asyncio.timeout(TIMEOUT):
            await room.ready()
            seq = (await sent)["seq"]
        await raw.request("actor.connect", actor="room", key="lobby", params={"user": "cat"})
        async with session.get(messages_url) as response:
            assert response.status == 200
            page = await response.json()
        assert [(m["seq"], m["body"]) for m in page["messages"]] == \
            [(1, "<seed:1>"), (seq, "<r:1>")]
