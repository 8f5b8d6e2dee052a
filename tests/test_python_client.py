"""The Python client (collab.client) against real `collab serve` processes.

Documents converge between Python clients, with a stock Node y-websocket
client, and with the server's own copy; `saved()` waits for the commit (a held
SQLite lock keeps it waiting); a restart and a network cut are survived with
documents resynced, offline edits and chat messages delivered once; actor calls,
events, queues and errors carry the server's codes; tokens go in the auth message.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time

import jwt
import pytest
from pycrdt import Doc, Text

from collab.client import CollabClient, CollabError, Event, Room, SyncedDoc
from tests.faults import write_lock_held
from tests.tcpproxy import TcpProxy
from tests.test_interop_node import JS_DIR, SCRIPT_TIMEOUT_MS, SUBPROCESS_TIMEOUT, require_node
from tests.test_interop_pycrdt import boundaries, has_word
from tests.waits import TIMEOUT, until

APP = ("--app", "tests.apps.counter:registry")
#: Seconds between reconnect attempts at most, so a test's restart is noticed quickly.
FAST_RECONNECT = 0.5
SECRET = "python-client-test-secret-long-enough-for-hs256"
#: Seconds a whole test may take. Its waits are bounded by TIMEOUT where they are
#: explicit; this bounds the rest (a client that never syncs or never connects fails
#: the test instead of hanging the suite).
TEST_BUDGET = 3 * TIMEOUT


def bounded(test):
    @functools.wraps(test)
    async def run(*args, **kwargs):
        async with asyncio.timeout(TEST_BUDGET):
            return await test(*args, **kwargs)
    return run


def native_url(srv, port: int | None = None) -> str:
    return f"ws://127.0.0.1:{srv.port if port is None else port}/ws"


def client_for(srv, **options) -> CollabClient:
    return CollabClient(native_url(srv), max_delay=FAST_RECONNECT, **options)


def body(doc: SyncedDoc) -> Text:
    return doc.ydoc.get("body", type=Text)


async def write_words(doc: SyncedDoc, prefix: str, count: int, rng: random.Random) -> None:
    for i in range(count):
        text = body(doc)
        text.insert(rng.choice(boundaries(str(text))), f"{prefix}{i};")
        doc.awareness.set_local_state_field("cursor", {"index": i})
        await asyncio.sleep(rng.uniform(0.002, 0.005))  # pacing, so edits interleave


def peer_names(doc: SyncedDoc) -> list[str]:
    return sorted(state["user"]["name"] for state in doc.awareness.states.values()
                  if isinstance(state, dict) and "user" in state)


async def server_text(session, http_url: str, doc: str) -> str:
    async with session.get(f"{http_url}/api/docs/{doc}?format=json&text=body") as response:
        assert response.status == 200, await response.text()
        return (await response.json())["text"]["body"]


async def room_bodies(session, http_url: str, room: str) -> list[str]:
    async with session.get(f"{http_url}/api/rooms/{room}/messages?after=0&limit=200") as response:
        assert response.status == 200, await response.text()
        return [message["body"] for message in (await response.json())["messages"]]


def recorder(room: Room) -> list[dict]:
    """Every `message` the room emits, in order."""
    seen: list[dict] = []
    room.on("message", seen.append)
    return seen


async def barrier(sender: Room, seen: list[dict]) -> None:
    """Send a message and wait until `seen` has it: messages of one room arrive in
    seq order, so every earlier message has arrived too."""
    seq = (await sender.send("barrier"))["seq"]
    await until(lambda: any(m["seq"] == seq for m in seen))


# -- documents -------------------------------------------------------------------------


@bounded
async def test_two_clients_converge_and_the_server_has_the_same_text(server, session):
    async with client_for(server) as a, client_for(server) as b:
        doc_a, doc_b = await a.doc("py/pair"), await b.doc("py/pair")
        assert doc_a.synced and doc_b.synced
        doc_a.awareness.set_local_state_field("user", {"name": "py-a"})
        doc_b.awareness.set_local_state_field("user", {"name": "py-b"})
        await until(lambda: peer_names(doc_a) == peer_names(doc_b) == ["py-a", "py-b"])

        await asyncio.gather(write_words(doc_a, "a", 30, random.Random(1)),
                             write_words(doc_b, "b", 30, random.Random(2)))
        await asyncio.wait_for(asyncio.gather(doc_a.saved(), doc_b.saved()), TIMEOUT)
        assert doc_a.unsynced_changes == doc_b.unsynced_changes == 0
        await until(lambda: str(body(doc_a)) == str(body(doc_b))
                    and str(body(doc_a)).count(";") == 60)
        final = str(body(doc_a))

    expected = sorted([f"a{i}" for i in range(30)] + [f"b{i}" for i in range(30)])
    assert sorted(final.rstrip(";").split(";")) == expected
    assert await server_text(session, server.http_url, "py/pair") == final


@bounded
async def test_content_made_before_joining_is_pushed_and_the_servers_is_pulled(server, session):
    async with client_for(server) as a:
        first = await a.doc("py/merge")
        body(first).insert(0, "server;")
        await first.saved()
    async with client_for(server) as b:
        ydoc = Doc()
        ydoc.get("body", type=Text).insert(0, "local;")  # made before any connection
        doc = await b.doc("py/merge", ydoc)
        assert doc.ydoc is ydoc and set(str(body(doc)).rstrip(";").split(";")) == {
            "server", "local"}
        await doc.saved()
        assert await server_text(session, server.http_url, "py/merge") == str(body(doc))


async def text_after_kill(server_factory, session, srv, name: str, doc: str) -> str:
    """SIGKILL `srv` (only what was committed survives) and read `doc` after a restart."""
    srv.kill()
    restarted = server_factory(name)
    return await server_text(session, restarted.http_url, doc)


@bounded
async def test_saved_waits_for_the_commit(server_factory, session):
    srv = server_factory("saved")
    async with client_for(srv) as writer, client_for(srv) as watcher:
        doc, seen = await writer.doc("py/saved"), await watcher.doc("py/saved")
        # Released before the server's 5 s busy timeout in practice: the commit waits
        # for the lock rather than fails.
        async with write_lock_held(srv):
            body(doc).insert(0, "durable")
            assert doc.unsynced_changes == 1
            saving = asyncio.create_task(doc.saved())
            # The server relays an update at once, before its commit: once the
            # watcher has it, the server has it and is waiting on the lock.
            await until(lambda: str(body(seen)) == "durable")
            assert not saving.done(), "saved() resolved while the commit could not happen"
            assert doc.unsynced_changes == 1
        await asyncio.wait_for(saving, TIMEOUT)
        assert doc.unsynced_changes == 0
    assert await text_after_kill(server_factory, session, srv, "saved", "py/saved") == "durable"


@bounded
async def test_saved_waits_for_a_failed_commit_to_be_written_again(server_factory, session):
    """A commit fails (the write lock is held past the server's 5 s busy timeout);
    the client resubscribes while the rows wait to be written again. The server holds
    the change in memory, but saying so in the subscribe answer would make the client
    count it saved: the answer waits for those rows, and kill -9 then loses nothing."""
    srv = server_factory("saved-again")
    async with client_for(srv) as writer:
        doc = await writer.doc("py/saved-again")
        errors: list[Exception] = []
        doc.on("error", errors.append)
        async with write_lock_held(srv):
            body(doc).insert(0, "durable")
            saving = asyncio.ensure_future(doc.saved())
            await until(lambda: bool(errors))  # the commit failed (after 5 s)
            assert {getattr(error, "code", None) for error in errors} == {"store_unavailable"}
            # It resubscribes within a second (FAST_RECONNECT); its answer must wait.
            done, _ = await asyncio.wait([saving], timeout=2.0)
            assert not done, "saved() resolved while the change was not committed"
            assert doc.unsynced_changes >= 1
        await asyncio.wait_for(saving, TIMEOUT)
        assert doc.unsynced_changes == 0
    assert await text_after_kill(server_factory, session, srv, "saved-again",
                                 "py/saved-again") == "durable"


@bounded
async def test_an_http_update_adding_nothing_is_acknowledged_only_once_all_is_committed(
        server_factory, session):
    """An HTTP POST whose commit failed (the write lock held past the server's 5 s
    busy timeout) leaves its rows to be written again. An update that adds nothing
    is then answered "committed, seq N": not before seq N really is, or kill -9
    loses what the answer vouched for."""
    srv = server_factory("http-again")
    edit = Doc()
    edit["body"] = Text("durable")
    url = f"{srv.http_url}/api/docs/py/http-again/update"

    async def post(update: bytes) -> tuple[int, dict]:
        async with session.post(url, data=update) as response:
            return response.status, await response.json()

    async with write_lock_held(srv):
        assert (await post(edit.get_update()))[0] == 503
        status, reply = await post(Doc().get_update())  # adds nothing
        assert (status, reply.get("error", {}).get("code")) == (503, "store_unavailable"), \
            f"answered while seq {reply.get('seq')} was not committed: {status} {reply}"
    status, reply = await post(Doc().get_update())
    assert (status, reply["seq"]) == (200, 1), reply
    assert await text_after_kill(server_factory, session, srv, "http-again",
                                 "py/http-again") == "durable"


@bounded
async def test_a_python_client_and_a_node_y_websocket_client_converge(server, session):
    node = require_node()
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "writer_reader.mjs"),
        "--url", server.ws_url, "--doc", "py/node", "--name", "node-writer",
        "--peer", "py-writer", "--count", "25", "--done", "node-done", "--wait-for", "py-done",
        "--timeout-ms", str(SCRIPT_TIMEOUT_MS),
        cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    node_run = asyncio.create_task(proc.communicate())

    def node_still_running() -> bool:
        if node_run.done():
            out, err = node_run.result()
            raise AssertionError(f"writer_reader.mjs ended early:\n{out.decode()}\n{err.decode()}")
        return False

    try:
        async with client_for(server) as client:
            doc = await client.doc("py/node")
            doc.awareness.set_local_state_field("user", {"name": "py-writer"})
            await until(lambda: "node-writer" in peer_names(doc) or node_still_running())
            await write_words(doc, "p", 25, random.Random(3))
            body(doc).insert(len(body(doc)), "py-done;")
            await until(lambda: has_word(str(body(doc)), "node-done;") or node_still_running())
            await doc.saved()
            final = str(body(doc))
        out, err = await asyncio.wait_for(node_run, SUBPROCESS_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    lines = out.decode().strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), f"{out.decode()}\n{err.decode()}"
    assert result["text"] == final
    # The Node client saw our awareness state under the name we set.
    assert result["peersSeen"] == ["node-writer", "py-writer"]
    words = sorted(final.rstrip(";").split(";"))
    expected = [f"n{i}" for i in range(25)] + [f"p{i}" for i in range(25)]
    assert words == sorted([*expected, "node-done", "py-done"])
    assert await server_text(session, server.http_url, "py/node") == final


@bounded
async def test_a_deleted_document_stops_syncing(server, session):
    async with client_for(server) as client:
        doc = await client.doc("py/deleted")
        body(doc).insert(0, "old content")
        await doc.saved()
        epochs: list = []
        doc.on("deleted", epochs.append)

        async with session.delete(f"{server.http_url}/api/docs/py/deleted") as response:
            assert response.status == 204
        await until(lambda: doc.deleted)
        assert len(epochs) == 1 and isinstance(epochs[0], int)
        assert not doc.synced
        body(doc).insert(0, "never sent ")  # the old copy no longer syncs
        with pytest.raises(CollabError) as refused:
            await doc.saved()
        assert refused.value.code == "document_deleted"

        # The name is free again on this client: a new Doc follows the new document.
        fresh = await client.doc("py/deleted")
        assert str(body(fresh)) == ""
        body(fresh).insert(0, "new content")
        await fresh.saved()
    assert await server_text(session, server.http_url, "py/deleted") == "new content"


# -- reconnects --------------------------------------------------------------------------


@bounded
async def test_a_restart_resyncs_and_what_was_made_offline_arrives_once(server_factory,
                                                                         session):
    srv = server_factory("restart")
    port = srv.port
    async with client_for(srv) as client, client_for(srv) as other:
        doc = await client.doc("py/restart")
        body(doc).insert(0, "before;")
        await doc.saved()
        room = await client.room("py-lobby", user="bot")
        watcher = await other.room("py-lobby", user="ann")
        watched = recorder(watcher)
        await room.send("before the restart")
        closes: list = []
        client.on("close", closes.append)

        assert srv.stop() == 0, srv.log()  # SIGTERM: every socket closes with 1012
        await until(lambda: client.status != "connected" and not doc.synced)
        assert closes[0].code == 1012 and closes[0].opened
        body(doc).insert(len(body(doc)), "offline;")
        assert doc.unsynced_changes == 1
        sending = asyncio.create_task(room.send("sent while the server was down"))

        restarted = server_factory("restart", args=("--port", str(port)))
        posted = await asyncio.wait_for(sending, TIMEOUT)
        await asyncio.wait_for(doc.saved(), TIMEOUT)
        assert doc.synced and client.status == "connected"
        # The other client (reconnected too) caught up on the message it missed.
        await barrier(room, watched)
        assert [m["body"] for m in watched] == [
            "before the restart", "sent while the server was down", "barrier"]

    assert posted["seq"] == 2
    assert await server_text(session, restarted.http_url, "py/restart") == "before;offline;"
    assert await room_bodies(session, restarted.http_url, "py-lobby") == [
        "before the restart", "sent while the server was down", "barrier"]


class ReplyDroppingProxy(TcpProxy):
    """A TcpProxy that can also drop what the server sends (`dropping`): requests
    still arrive and run, their answers are lost, as on a link dying mid-request."""

    dropping = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.links += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       replies: bool) -> None:
            try:
                while data := await src.read(65536):
                    if replies and self.dropping:
                        continue
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))


@bounded
async def test_a_send_whose_answer_was_lost_is_resent_and_posted_once(server, session):
    proxy = ReplyDroppingProxy("127.0.0.1", server.port)
    await proxy.start()
    try:
        async with client_for(server) as ann_client, CollabClient(
                native_url(server, proxy.port), max_delay=FAST_RECONNECT) as bob_client:
            ann = await ann_client.room("py-lost", user="ann")
            bob = await bob_client.room("py-lost", user="bob")
            ann_seen, bob_seen = recorder(ann), recorder(bob)

            proxy.dropping = True
            sending = asyncio.create_task(bob.send("answer lost", client_id="bob-1"))
            # Committed (ann sees it) while bob hears nothing back.
            await until(lambda: any(m["client_id"] == "bob-1" for m in ann_seen))
            assert not sending.done()
            proxy.cut()
            await until(lambda: bob_client.status != "connected")
            proxy.dropping = False
            await proxy.start()

            posted = await asyncio.wait_for(sending, TIMEOUT)
            original = next(m for m in ann_seen if m["client_id"] == "bob-1")
            assert posted["seq"] == original["seq"]
            await barrier(ann, bob_seen)
            # Bob never got the live event: the catch-up after the reconnect emitted it, once.
            assert [m["client_id"] if m["body"] != "barrier" else "barrier" for m in bob_seen] \
                == ["bob-1", "barrier"]
    finally:
        proxy.cut()
    assert await room_bodies(session, server.http_url, "py-lost") == ["answer lost", "barrier"]


@bounded
async def test_a_client_cut_off_the_network_resyncs_its_document(server, session):
    proxy = TcpProxy("127.0.0.1", server.port)
    await proxy.start()
    try:
        async with client_for(server) as peer_client, CollabClient(
                native_url(server, proxy.port), max_delay=FAST_RECONNECT) as cut_client:
            peer = await peer_client.doc("py/cut")
            cut = await cut_client.doc("py/cut")
            cut.awareness.set_local_state_field("user", {"name": "cut"})
            peer.awareness.set_local_state_field("user", {"name": "peer"})
            await until(lambda: peer_names(peer) == ["cut", "peer"])
            await until(lambda: peer_names(cut) == ["cut", "peer"])

            proxy.cut()
            await until(lambda: not cut.synced)
            await until(lambda: peer_names(peer) == ["peer"])  # the server removed its state
            assert peer_names(cut) == ["cut"]  # and it dropped the others'
            # Edits on both sides while apart.
            body(cut).insert(0, "from-cut;")
            body(peer).insert(0, "from-peer;")
            await peer.saved()
            await proxy.start()

            await asyncio.wait_for(cut.saved(), TIMEOUT)
            await until(lambda: str(body(cut)) == str(body(peer))
                        and str(body(cut)).count(";") == 2)
            # The cut client announced its awareness again with the resync (before
            # its diff, which `saved` saw acknowledged): the server has it now, long
            # before the 15 s renewal would have sent it anyway.
            async with client_for(server) as late_client:
                late = await late_client.doc("py/cut")
                assert peer_names(late) == ["cut", "peer"]
            await until(lambda: peer_names(peer) == ["cut", "peer"])
            # It sees the peer again from the server's snapshot, not only at the
            # peer's next renewal (15 s, past the wait budget's reach below).
            async with asyncio.timeout(5):
                await until(lambda: peer_names(cut) == ["cut", "peer"])
            final = str(body(peer))
    finally:
        proxy.cut()
    assert await server_text(session, server.http_url, "py/cut") == final


# -- actors -------------------------------------------------------------------------------


@bounded
async def test_actor_calls_events_and_queues(server_factory):
    srv = server_factory("actors", args=APP)
    async with client_for(srv) as one, client_for(srv) as two:
        counter = one.actor("counter", "py-c", connect=False)
        assert await counter.call("increment", 2) == 2
        assert await counter.call("increment", by=3) == 5
        assert (await counter.call("get"))["count"] == 5

        ann = one.actor("lobby", "py-hall", params={"name": "ann"})
        ann_events = ann.events()
        await ann.ready()
        assert await anext(ann_events) == Event("welcome", {"visits": 1})
        bob = two.actor("lobby", "py-hall", params={"name": "bob"})
        bob_said = bob.events("said")
        assert await bob.call("say", "hi") == 1
        assert await asyncio.wait_for(anext(ann_events), TIMEOUT) == Event("joined", "bob")
        said = {"who": "bob", "text": "hi"}
        assert await asyncio.wait_for(anext(ann_events), TIMEOUT) == Event("said", said)
        assert await asyncio.wait_for(anext(bob_said), TIMEOUT) == Event("said", said)
        # Calls from a connected handle come from its connection.
        assert (await bob.call("whoami"))["params"] == {"name": "bob"}

        await bob.disconnect()
        assert await asyncio.wait_for(anext(ann_events), TIMEOUT) == Event("left", "bob")
        with pytest.raises(CollabError) as closed:
            await bob.call("say", "gone")
        assert closed.value.code == "closed"

        worker = one.actor("worker", "py-w", connect=False)
        assert (await worker.enqueue("jobs", {"n": 7}))["seq"] >= 1

        async def done() -> bool:
            return await worker.call("done") == [7]

        await until(done)


@bounded
async def test_bad_input_raises_the_servers_error_code(server_factory):
    srv = server_factory("errors", args=APP)
    async with client_for(srv) as client:
        errors: list = []
        client.on("error", errors.append)
        counter = client.actor("counter", "py-e", connect=False)
        with pytest.raises(CollabError) as unknown:
            await counter.call("no_such_action")
        assert unknown.value.code == "unknown_action"
        assert "no_such_action" in unknown.value.message
        with pytest.raises(CollabError) as own:
            await counter.call("fail_after_change")
        assert (own.value.code, own.value.message) == ("refused", "refused on purpose")
        with pytest.raises(CollabError) as arguments:
            await counter.call("increment", "not a number")
        assert arguments.value.code == "invalid_arguments"
        assert (await counter.call("get"))["count"] == 0  # the refused call changed nothing

        nobody = client.actor("nosuch", "k")
        with pytest.raises(CollabError) as no_type:
            await nobody.ready()
        assert no_type.value.code == "unknown_actor_type"
        with pytest.raises(CollabError):  # the refused handle is closed: calls fail too
            await nobody.call("anything")
        assert [error.code for error in errors] == ["unknown_actor_type"]

        refused = client.actor("lobby", "py-door", params={})
        with pytest.raises(CollabError) as no_name:
            await refused.ready()
        assert no_name.value.code == "name_required"
        with pytest.raises(CollabError) as no_user:
            await client.room("py-room")  # development mode: the room needs a user
        assert no_user.value.code == "invalid_user"

        # Names are checked before anything is sent.
        with pytest.raises(ValueError):
            await client.doc("../escape")
        with pytest.raises(ValueError):
            client.actor("Counter", "k")
        with pytest.raises(ValueError):
            client.actor("counter", "a b")


# -- auth ----------------------------------------------------------------------------------


def make_token(user: str, ttl: float = 600) -> str:
    claims = {"sub": user, "exp": int(time.time() + ttl), "docs": {"*": "rw"},
              "rooms": {"*": "rw"}}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@bounded
async def test_a_token_in_the_auth_message_and_a_fresh_one_after_a_refusal(server_factory):
    srv = server_factory("auth", env={"COLLAB_SECRET": SECRET})
    issued: list[str] = []

    async def token() -> str:
        # The first token is expired: the server refuses it (unauthorized, 4401) and
        # the client must ask again rather than retry the same one forever.
        issued.append(make_token("alice", ttl=-60 if not issued else 600))
        return issued[-1]

    async with client_for(srv, token=token) as client:
        errors: list = []
        closes: list = []
        client.on("error", errors.append)
        client.on("close", closes.append)
        room = await client.room("py-auth")  # no user: the token's
        posted = await room.send("signed")
        assert posted["message"]["user"] == "alice"
        doc = await client.doc("py/auth")
        body(doc).insert(0, "by alice")
        await doc.saved()

    assert len(issued) == 2
    assert [error.code for error in errors] == ["unauthorized"]
    assert closes[0].code == 4401 and closes[0].opened
