"""A fault while a document whose CRDT is unloaded (its clients connected and quiet,
COLLAB_CONNECTED_IDLE_TIMEOUT) loads it again for an edit.

The edit's sender must not be acknowledged, nor its edit dropped unseen: a
y-websocket client is closed with 1013 and resends on its reconnect's sync, a `/ws`
client is answered with a passing error and resubscribes. Once the fault is lifted,
every edit either client made is in the document exactly once; the document's
other client and a client of another document lose nothing and are not closed.

Postgres: the server's backends that read the document are terminated (they wait
on a table lock the test holds, so the load is caught every time): the load
itself fails. SQLite: another process holds the write lock past the busy timeout;
readers go on in WAL mode, so the load succeeds and the edit's commit fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections import Counter

import aiohttp
import asyncpg
import pytest

from collab.client import CollabClient, CollabError
from collab.errors import CloseCode
from collab.protocol import ywire
from tests.faults import write_lock_held
from tests.serverproc import ServerProcess
from tests.test_fault_holes import tagged
from tests.test_hibernation import counts, text_of
from tests.test_python_client import body, native_url
from tests.waits import TIMEOUT, until
from tests.yclient import Editor, YClient

ENV = {"COLLAB_CONNECTED_IDLE_TIMEOUT": "0.3", "COLLAB_MAX_CONNECTIONS_PER_IP": "0"}
MARKER = re.compile(r"<(\w+:\d+)>")
#: Seconds between a closed socket and the next attempt (a provider's first retry).
RECONNECT_PAUSE = 0.05
#: Seconds between two edits of the other document's writer.
OTHER_PACE = 0.05


def markers(text: str) -> Counter[str]:
    return Counter(MARKER.findall(text))


class Provider:
    """A /yjs client as y-websocket's provider behaves: each (re)connect syncs (its
    state vector out, what the server lacks back, answering the server's step 1),
    each edit goes out as it is made (or with the next sync, while disconnected),
    and a closed socket is reconnected. Its own edits are acknowledged by their echo,
    which the server sends after their commit."""

    def __init__(self, session: aiohttp.ClientSession, srv: ServerProcess, doc: str,
                 name: str) -> None:
        self.session, self.srv, self.doc, self.name = session, srv, doc, name
        self.editor = Editor()
        self.made: list[str] = []
        self.acked: set[str] = set()
        self.closes: list[int | None] = []
        self.connects = 0
        self.client: YClient | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        return str(self.editor.text)

    def start(self) -> Provider:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            await self.client.ws.close()

    async def synced(self) -> None:
        await until(lambda: self.client is not None)

    async def edit(self) -> str:
        marker = f"{self.name}:{len(self.made) + 1}"
        self.made.append(marker)
        update = self.editor.type(f"<{marker}>")
        if self.client is not None:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self.client.send(ywire.SyncUpdate(update))
        return marker

    async def _run(self) -> None:
        while True:
            try:
                client = await YClient.connect(self.session, self.srv.http_url, self.doc)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            self.connects += 1
            try:
                await client.send(ywire.SyncStep1(self.editor.doc.get_state()))
                async for msg in client.ws:
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        await self._receive(client, ywire.parse(msg.data))
            except (aiohttp.ClientError, ConnectionError):
                pass
            self.client = None
            self.closes.append(client.ws.close_code)
            await asyncio.sleep(RECONNECT_PAUSE)

    async def _receive(self, client: YClient, message: ywire.Message) -> None:
        if isinstance(message, ywire.SyncStep1):
            await client.send(ywire.SyncStep2(self.editor.doc.get_update(message.state_vector)))
        elif isinstance(message, ywire.SyncStep2):
            self.editor.doc.apply_update(message.update)
            self.client = client  # synced: edits go out on this socket from now on
        elif isinstance(message, ywire.SyncUpdate):
            self.editor.doc.apply_update(message.update)
            text = message.update.decode("utf-8", "replace")
            self.acked |= {m for m in MARKER.findall(text) if m.startswith(f"{self.name}:")}


@contextlib.asynccontextmanager
async def reads_terminated(url: str, tag: str, tables: str = "doc_snapshots"):
    """While inside: a lock on `tables` (doc_snapshots: the server's loads of a
    document) makes the server's reads of them wait, and each backend of the server
    (`tag`) found waiting is terminated, so every such read fails. Yields how many
    were terminated so far (a list of one)."""
    admin = await asyncpg.connect(url)
    killed = [0]
    done = asyncio.Event()
    holding = admin.transaction()
    await holding.start()
    await admin.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
    killer = await asyncpg.connect(url)

    async def terminate() -> None:
        while not done.is_set():
            killed[0] += await killer.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND wait_event_type = 'Lock'", tag)
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(terminate())
    try:
        yield killed
    finally:
        done.set()
        await task
        await holding.rollback()
        await admin.close()
        await killer.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_fault_while_reloading_loses_and_doubles_nothing(
        tmp_path, pg_schema, session, backend: str):
    tag = f"collab-reload-{secrets.token_hex(4)}"
    async with contextlib.AsyncExitStack() as stack:
        url = admin_url = None
        if backend == "postgres":
            admin_url = await stack.enter_async_context(pg_schema())
            url = tagged(admin_url, tag)
        srv = ServerProcess(tmp_path / "reload.db", database_url=url, env=ENV).start()
        stack.callback(srv.kill)

        writer = Provider(session, srv, "reload", "w").start()
        stack.push_async_callback(writer.stop)
        bystander = Provider(session, srv, "reload", "b").start()
        stack.push_async_callback(bystander.stop)
        other = Provider(session, srv, "other", "o").start()
        stack.push_async_callback(other.stop)
        native = CollabClient(native_url(srv), max_delay=0.5)
        stack.push_async_callback(native.close)
        errors: list[CollabError] = []
        for provider in (writer, bystander, other):
            await provider.synced()
        # The other document stays busy (and loaded) throughout.
        stop_other = asyncio.Event()

        async def keep_editing() -> None:
            while not stop_other.is_set():
                await other.edit()
                await asyncio.sleep(OTHER_PACE)

        editing = asyncio.ensure_future(keep_editing())
        doc = await native.doc("reload")
        doc.on("error", errors.append)

        first = await writer.edit()
        await until(lambda: first in writer.acked)
        body(doc).insert(len(body(doc)), "<p:1>")
        await doc.saved()

        async def unloaded() -> bool:  # this document: it went quiet, and still is
            unloads, reloads = await counts(session, srv)
            return unloads > reloads

        await until(unloaded)

        if backend == "sqlite":
            # Held until the writer is told: its commit may wait one busy timeout behind
            # the other document's (which fails first), so a fixed hold could end
            # while it waits, and the commit would then go through.
            async with write_lock_held(srv):
                await writer.edit()
                body(doc).insert(len(body(doc)), "<p:2>")
                # The load reads past the lock (WAL); the edit's commit fails: 1013. The
                # native client's update goes in the next commit, which may wait it out.
                await until(lambda: CloseCode.TRY_AGAIN_LATER in writer.closes)
        else:
            async with reads_terminated(admin_url, tag) as killed:
                await writer.edit()
                body(doc).insert(len(body(doc)), "<p:2>")
                # Each load fails: the writer is closed with 1013, and so is its
                # reconnect (its sync needs the CRDT too); the native client's update
                # is refused, and so is its subscribe again.
                await until(lambda: writer.closes.count(CloseCode.TRY_AGAIN_LATER) >= 2)
                await until(lambda: len(errors) >= 2)
                assert killed[0] >= 4
        # Told as a passing outage (so it retries), never as an internal error.
        assert {error.code for error in errors} <= {"store_unavailable"}, errors

        # The fault is over: both resend by syncing; their next edits are acknowledged.
        # The writer's goes out on a socket synced since: one closed by the fault may
        # have taken the echo of what it sent (an echo is y-websocket's only ack).
        await until(lambda: writer.client is not None)
        last = await writer.edit()
        await until(lambda: last in writer.acked)
        body(doc).insert(len(body(doc)), "<p:3>")
        async with asyncio.timeout(TIMEOUT):
            await doc.saved()
        stop_other.set()
        await editing
        last_other = other.made[-1]
        await until(lambda: last_other in other.acked)

        expected = Counter([*writer.made, "p:1", "p:2", "p:3"])
        assert markers(await text_of(session, srv, "reload")) == expected
        await until(lambda: markers(bystander.text) == expected)
        await until(lambda: markers(str(body(doc))) == expected)
        assert bystander.closes == [], "the document's other client was closed"
        assert markers(await text_of(session, srv, "other")) == Counter(other.made)
        if backend == "postgres":  # its commits never waited on what was locked
            assert other.closes == [], "another document's client was closed"
        assert (await counts(session, srv))[1] >= 1
