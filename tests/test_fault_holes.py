"""A failed commit never costs a later acknowledged write (issue: the log is never
left with a hole).

A real server takes writes on every path at once (/yjs, /ws, HTTP document
updates, a chat room, an actor's state) while a fault makes its commits fail for
a few seconds: another process holding SQLite's write lock past the busy
timeout, a full disk (the server's file size limit lowered under it), or
Postgres backends terminated under it. Writing goes on after the fault, then the
server is killed with SIGKILL and started again: everything that was
acknowledged, before, during or after the fault, is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from collab.protocol.ywire import SyncStep1, SyncStep2, SyncUpdate
from tests.conftest import TEST_DATABASE_URL
from tests.faults import write_lock_held
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.waits import TIMEOUT
from tests.yclient import Editor, YClient

APP = ("--app", "tests.apps.counter:registry")
MARKER = re.compile(r"<(\d+)>")
#: Seconds of writing before the fault, and after it is lifted.
BEFORE, AFTER = 1.0, 2.5
#: Seconds another process holds SQLite's write lock: past the server's 5 s busy
#: timeout, so a batch fails rather than waits.
LOCK_HELD = 6.5
#: Seconds the disk stays full / Postgres backends keep being terminated.
OUTAGE = 3.0


@dataclass
class Tally:
    """What one writer sent and what the server acknowledged."""

    acked: set[int] = field(default_factory=set)
    errors: int = 0
    acked_after_fault: int = 0
    fault_over: bool = False

    def ack(self, n: int) -> None:
        self.acked.add(n)
        if self.fault_over:
            self.acked_after_fault += 1


def markers(data: bytes | str) -> set[int]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return {int(m) for m in MARKER.findall(text)}


async def pause_after_error(tally: Tally) -> None:
    tally.errors += 1
    await asyncio.sleep(0.05)


# -- the writers: each loops until `stop`, reconnecting after any error -------------


async def yjs_writer(session, srv: ServerProcess, stop: asyncio.Event, tally: Tally) -> None:
    """A y-websocket client as a provider behaves: on (re)connect it answers the
    server's state vector with what the server lacks; its own updates are
    acknowledged by their echo after commit."""
    editor, n = Editor(), 0
    while not stop.is_set():
        try:
            client = await YClient.connect(session, srv.http_url.replace("http", "ws", 1), "yjs")
        except (aiohttp.ClientError, OSError):
            await pause_after_error(tally)
            continue
        in_flight: set[int] = set()

        async def read(client: YClient = client, in_flight: set[int] = in_flight) -> None:
            while True:
                message = await client.recv()
                if isinstance(message, SyncStep1):
                    await client.send(SyncStep2(editor.doc.get_update(message.state_vector)))
                elif isinstance(message, SyncUpdate):
                    for m in markers(message.update):
                        tally.ack(m)
                        in_flight.discard(m)

        reading = asyncio.ensure_future(read())
        try:
            while not stop.is_set() and not reading.done():
                if len(in_flight) < 20:
                    n += 1
                    in_flight.add(n)
                    await client.send(SyncUpdate(editor.type(f"<{n}>")))
                else:
                    await asyncio.sleep(0.002)
        except (aiohttp.ClientError, OSError):
            pass
        reading.cancel()
        with contextlib.suppress(Exception):
            await client.ws.close()
        if not stop.is_set():
            await pause_after_error(tally)


async def native_writer(session, srv: ServerProcess, stop: asyncio.Event, tally: Tally) -> None:
    """A /ws client: subscribe with its state vector, send what the server lacks,
    then each change as `doc.update`, acknowledged by its answer."""
    editor, n = Editor(), 0
    while not stop.is_set():
        client = None
        try:
            client = await NClient.connect(session, srv.http_url)
            state = await client.request("doc.subscribe", doc="ws", sv=editor.doc.get_state())
            missing = editor.doc.get_update(state["sv"])
            if missing != b"\x00\x00":
                await client.request("doc.update", doc="ws", update=missing)
            while not stop.is_set():
                n += 1
                await client.request("doc.update", doc="ws", update=editor.type(f"<{n}>"))
                tally.ack(n)
        except (NativeError, ConnectionError, TimeoutError, aiohttp.ClientError, OSError):
            await pause_after_error(tally)
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()


async def http_writer(session, srv: ServerProcess, stop: asyncio.Event, tally: Tally) -> None:
    """POST /api/docs/<doc>/update; after a failure the whole state goes first."""
    editor, n, resend = Editor(), 0, False
    url = f"{srv.http_url}/api/docs/http/update"
    while not stop.is_set():
        try:
            if resend:
                async with session.post(url, data=editor.doc.get_update()) as response:
                    if response.status != 200:
                        await pause_after_error(tally)
                        continue
                resend = False
            n += 1
            async with session.post(url, data=editor.type(f"<{n}>")) as response:
                if response.status == 200:
                    tally.ack(n)
                    continue
            resend = True
        except (aiohttp.ClientError, OSError):
            resend = True
        await pause_after_error(tally)


async def action_writer(session, srv: ServerProcess, stop: asyncio.Event, tally: Tally,
                        path: str, args: Callable[[int], dict]) -> None:
    """Calls one actor action over HTTP; item n is acknowledged by a 200."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            async with session.post(f"{srv.http_url}/api/actors/{path}", json=args(n)) as response:
                if response.status == 200:
                    tally.ack(n)
                    continue
        except (aiohttp.ClientError, OSError):
            pass
        await pause_after_error(tally)


# -- what survived ---------------------------------------------------------------------


async def surviving(session, srv: ServerProcess) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for doc in ("yjs", "ws", "http"):
        async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body") as resp:
            assert resp.status == 200, await resp.text()
            found[doc] = markers((await resp.json())["text"]["body"])
    bodies: set[int] = set()
    after = 0
    while True:
        async with session.get(f"{srv.http_url}/api/rooms/lobby/messages",
                               params={"after": after, "limit": 200}) as resp:
            page = await resp.json()
        bodies |= markers("".join(m["body"] for m in page["messages"]))
        if not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
    found["room"] = bodies
    async with session.post(f"{srv.http_url}/api/actors/journal/j/actions/items",
                            json={}) as resp:
        found["actor"] = set((await resp.json())["result"])
    return found


# -- the faults --------------------------------------------------------------------------


async def hold_sqlite_lock(srv: ServerProcess, _: str) -> None:
    async with write_lock_held(srv):
        await asyncio.sleep(LOCK_HELD)


async def fill_the_disk(srv: ServerProcess, _: str) -> None:
    """Lower the server's file size limit under its files: every write past it
    fails with EFBIG, which SQLite reports as it does a full disk."""
    soft, hard = resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (4096, hard))
    try:
        await asyncio.sleep(OUTAGE)
    finally:
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))


async def terminate_backends(_: ServerProcess, tag: str) -> None:
    admin = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        deadline = time.monotonic() + OUTAGE
        while time.monotonic() < deadline:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = $1", tag)
            await asyncio.sleep(0.02)
    finally:
        await admin.close()


def tagged(url: str, tag: str) -> str:
    """`url` whose sessions carry application_name `tag`, so the test can find them."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = f"{query.get('options', '')} -capplication_name={tag}".strip()
    return urlunsplit(parts._replace(query=urlencode(query)))


Fault = Callable[[ServerProcess, str], Awaitable[None]]


@pytest.mark.parametrize("backend, fault", [
    pytest.param("sqlite", hold_sqlite_lock, id="sqlite-lock"),
    pytest.param("sqlite", fill_the_disk, id="sqlite-full-disk"),
    pytest.param("postgres", terminate_backends, id="postgres-terminated"),
])
async def test_no_acknowledged_write_is_lost_across_a_failed_commit(
        tmp_path, pg_schema, session, backend: str, fault: Fault):
    tag = f"collab-fault-{secrets.token_hex(4)}"
    async with contextlib.AsyncExitStack() as stack:
        url = None
        if backend == "postgres":
            url = tagged(await stack.enter_async_context(pg_schema()), tag)

        def server() -> ServerProcess:
            return ServerProcess(tmp_path / "holes.db", database_url=url, args=APP,
                                 env={"COLLAB_MAX_CONNECTIONS_PER_IP": "0"}).start()

        srv = server()
        stack.callback(srv.kill)
        tallies = {name: Tally() for name in ("yjs", "ws", "http", "room", "actor")}
        stop = asyncio.Event()
        writers = [
            yjs_writer(session, srv, stop, tallies["yjs"]),
            native_writer(session, srv, stop, tallies["ws"]),
            http_writer(session, srv, stop, tallies["http"]),
            action_writer(session, srv, stop, tallies["room"], "room/lobby/actions/send",
                          lambda n: {"args": [f"c{n}", f"<{n}>"], "kwargs": {"user": "ann"}}),
            action_writer(session, srv, stop, tallies["actor"], "journal/j/actions/add",
                          lambda n: {"args": [n]}),
        ]
        running = [asyncio.ensure_future(writer) for writer in writers]
        try:
            await asyncio.sleep(BEFORE)
            await fault(srv, tag)
            for tally in tallies.values():
                tally.fault_over = True
            await asyncio.sleep(AFTER)
            srv.kill()  # SIGKILL: nothing flushed, nothing saved
        finally:
            stop.set()
            await asyncio.wait(running, timeout=TIMEOUT)
        for task in running:
            task.cancel()

        # The fault bit (something failed) and writes were acknowledged after it.
        assert sum(t.errors for t in tallies.values()) > 0, "the fault caused no failure"
        for name, tally in tallies.items():
            assert tally.acked_after_fault > 0, f"{name}: nothing acknowledged after the fault"

        srv = server()
        stack.callback(srv.kill)
        found = await surviving(session, srv)
        lost = {name: sorted(tally.acked - found[name]) for name, tally in tallies.items()}
        assert lost == {name: [] for name in tallies}, \
            f"acknowledged but lost: {lost}; acknowledged: " \
            f"{ {name: len(t.acked) for name, t in tallies.items()} }"
