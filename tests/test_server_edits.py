"""Server-side edits against real server processes: an actor edits a document through
`self.document(name)` (actors/document_ref.py); its edits reach connected y-websocket
clients like anyone's, are durable when the action returns (kill -9 right after), merge
with concurrent edits, carry one client id per actor, and its presence shows; with two
processes, the actor's process need not own the document."""

from __future__ import annotations

import os
import uuid

from pycrdt import Doc, Text

from collab.protocol import ywire
from tests.serverproc import ServerProcess
from tests.waits import until
from tests.yclient import Editor, YClient

APP = ("--app", "tests.apps.scribe:registry")
REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def call(session, srv: ServerProcess, action: str, *args) -> object:
    resp = await session.post(f"{srv.http_url}/api/actors/scribe/s/actions/{action}",
                              json={"args": list(args)})
    body = await resp.json()
    assert resp.status == 200, body
    return body["result"]


async def body_of(session, srv: ServerProcess, doc: str) -> str:
    async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body") as resp:
        return (await resp.json())["text"]["body"]


async def test_an_actor_edits_a_document_like_a_client_and_durably(tmp_path, session):
    srv = ServerProcess(tmp_path / "edits.db", args=APP).start()
    try:
        watcher = await YClient.connect(session, srv.http_url, "edited")
        seen = Doc()
        typist = Editor()
        resp = await session.post(f"{srv.http_url}/api/docs/edited/update",
                                  data=typist.type("typed;"))
        assert resp.status == 200
        assert await call(session, srv, "write", "edited", "written;") == "typed;written;"

        def holds(text: str):
            def check(message: ywire.Message) -> bool:
                if isinstance(message, ywire.SyncUpdate | ywire.SyncStep2):
                    seen.apply_update(message.update)
                return str(seen.get("body", type=Text)) == text
            return check

        await watcher.recv_until(holds("typed;written;"))  # broadcast like any update
        await call(session, srv, "write", "edited", "again;")
        # One client id for the actor's edits, not one per edit.
        state = await (await session.get(f"{srv.http_url}/api/docs/edited")).read()
        copy = Doc()
        copy.apply_update(state)
        assert len(ywire.decode_state_vector(copy.get_state())) == 2  # the typist, the actor
        # A block that raises sends nothing.
        resp = await session.post(f"{srv.http_url}/api/actors/scribe/s/actions/"
                                  "fail_while_writing", json={"args": ["edited"]})
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "refused"
        assert await body_of(session, srv, "edited") == "typed;written;again;"
        srv.kill()  # durable before the action answered
        srv = ServerProcess(tmp_path / "edits.db", args=APP).start()
        assert await body_of(session, srv, "edited") == "typed;written;again;"
    finally:
        srv.stop()


async def test_an_actors_presence_is_seen_and_removed(tmp_path, session):
    srv = ServerProcess(tmp_path / "presence.db", args=APP).start()
    try:
        watcher = await YClient.connect(session, srv.http_url, "shown")
        client_id = await call(session, srv, "appear", "shown", "Agent")

        def presence(state: str):
            def check(message: ywire.Message) -> bool:
                return isinstance(message, ywire.AwarenessMessage) and any(
                    entry.client_id == client_id and entry.state == state
                    for entry in ywire.decode_awareness(message.payload))
            return check

        await watcher.recv_until(presence('{"user": {"name": "Agent", "color": "#f80"}}'))
        late = await YClient.connect(session, srv.http_url, "shown")  # told on joining too
        await late.recv_until(presence('{"user": {"name": "Agent", "color": "#f80"}}'))
        await call(session, srv, "leave", "shown")
        await watcher.recv_until(presence("null"))
    finally:
        srv.stop()


async def test_an_actor_edits_a_document_another_process_owns(tmp_path, session):
    env = {"REDIS_URL": REDIS_URL, "COLLAB_LEASE_TTL": "5"}
    a, b = (ServerProcess(tmp_path / f"{name}.db", database_url=f"sqlite:///{tmp_path}/s.db",
                          env=env, args=APP).start() for name in "ab")
    doc = f"remote-{uuid.uuid4().hex[:8]}"
    try:
        owner = await YClient.connect(session, b.http_url, doc)  # B owns the document
        await owner.recv()
        await call(session, a, "write", doc, "from a;")  # the actor lives on A
        await call(session, b, "write", doc, "via b;")  # forwarded to the actor on A
        assert await body_of(session, b, doc) == "from a;via b;"
        client_id = await call(session, a, "appear", doc, "Remote")
        await owner.recv_until(lambda m: isinstance(m, ywire.AwarenessMessage) and any(
            e.client_id == client_id for e in ywire.decode_awareness(m.payload)))
    finally:
        a.stop()
        b.stop()


# -- change hooks: @collab.watch ---------------------------------------------------------


async def seen(session, srv: ServerProcess) -> list:
    resp = await session.post(f"{srv.http_url}/api/actors/indexer/all/actions/seen", json={})
    return (await resp.json())["result"]


async def test_a_watcher_hears_of_changes_debounced_and_after_a_crash(tmp_path, session):
    srv = ServerProcess(tmp_path / "watch.db", args=APP).start()
    try:
        editor = Editor()
        for n in range(5):  # a burst: one notification after it went quiet
            resp = await session.post(f"{srv.http_url}/api/docs/watched/a/update",
                                      data=editor.type(f"<{n}>"))
            assert resp.status == 200
        await session.post(f"{srv.http_url}/api/docs/unwatched/update",
                           data=Editor().type("x"))

        async def told(count: int) -> bool:
            return len(await seen(session, srv)) >= count

        await until(lambda: told(1))
        changes = await seen(session, srv)
        assert changes == [{"doc": "watched/a", "seq": 5, "with_update": True,
                            "body": "<0><1><2><3><4>"}]
        # Committed, then killed before the quiet period ended: told after the restart.
        await session.post(f"{srv.http_url}/api/docs/watched/a/update", data=editor.type("<5>"))
        srv.kill()
        srv = ServerProcess(tmp_path / "watch.db", args=APP).start()
        await until(lambda: told(2))
        changes = await seen(session, srv)
        assert len(changes) == 2 and changes[1]["seq"] == 6 and changes[1]["body"].endswith("<5>")
    finally:
        srv.stop()
