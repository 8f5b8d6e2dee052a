"""Two real `collab serve` processes sharing one SQLite file and a real Redis (the
cron and client tests with three are in test_cluster_clients.py):
HTTP calls to either (actor calls and the document API) reach the actor's one
owner, and when the owner is killed with -9 the other takes the actor over, with
every acknowledged state."""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

from pycrdt import Doc, Text

from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.waits import until
from tests.yclient import Editor

REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
APP = ("--app", "tests.apps.counter:registry")


def start(tmp_path, name: str) -> ServerProcess:
    return ServerProcess(tmp_path / f"{name}.db", database_url=f"sqlite:///{tmp_path}/shared.db",
                         env={"REDIS_URL": REDIS_URL, "COLLAB_LEASE_TTL": "1"},
                         args=APP).start()


async def test_calls_reach_the_owner_and_survive_its_kill_9(tmp_path, session):
    key = f"cluster-{uuid.uuid4().hex[:8]}"
    a, b = start(tmp_path, "a"), start(tmp_path, "b")
    try:
        def url(srv: ServerProcess) -> str:
            return f"{srv.http_url}/api/actors/counter/{key}/actions/increment"

        results = []
        for i in range(10):  # alternate: the first call makes A the owner
            resp = await session.post(url(a if i % 2 == 0 else b), json={})
            assert resp.status == 200, await resp.text()
            results.append((await resp.json())["result"])
        assert results == list(range(1, 11))
        a.kill()

        async def b_serves() -> bool:
            resp = await session.post(url(b), json={})
            return resp.status == 200  # 503 while A's lease runs out

        await until(b_serves)
        resp = await session.post(url(b), json={"args": [100]})
        # 10 acknowledged before the kill, 1 by b_serves' success, then 100.
        assert (await resp.json())["result"] == 111
    finally:
        a.stop()
        b.stop()


async def test_the_document_api_answers_on_every_process(tmp_path, session):
    """GET and POST /api/docs on a process that does not own the document are
    forwarded to the one that does: every request answered, one document."""
    doc = f"cluster-doc-{uuid.uuid4().hex[:8]}"
    a, b = start(tmp_path, "a"), start(tmp_path, "b")
    try:
        writer = Editor()
        seqs = []
        for i in range(20):  # the first update makes A the owner; B forwards its half
            srv = a if i % 2 == 0 else b
            resp = await session.post(f"{srv.http_url}/api/docs/{doc}/update",
                                      data=writer.type(f"<{i}>"))
            assert resp.status == 200, await resp.text()
            seqs.append((await resp.json())["seq"])
        assert seqs == list(range(1, 21))
        expected = "".join(f"<{i}>" for i in range(20))
        for srv in (a, b):
            resp = await session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body")
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["text"]["body"] == expected
            roots = await (await session.get(f"{srv.http_url}/api/docs/{doc}?format=json")).json()
            assert roots == {"doc": doc, "roots": ["body"]}
            state = await (await session.get(f"{srv.http_url}/api/docs/{doc}")).read()
            copy = Doc()
            copy.apply_update(state)
            assert str(copy.get("body", type=Text)) == expected
    finally:
        a.stop()
        b.stop()


def deployment(tmp_path, name: str, redis_url: str, prefix: str | None = None):
    """Two processes of one deployment: its own store, its Redis database and prefix."""
    env = {"REDIS_URL": redis_url, "COLLAB_LEASE_TTL": "1"}
    if prefix is not None:
        env["COLLAB_REDIS_PREFIX"] = prefix
    return [ServerProcess(tmp_path / f"{name}-{i}.db",
                          database_url=f"sqlite:///{tmp_path}/{name}.db", env=env).start()
            for i in range(2)]


async def test_deployments_sharing_one_redis_do_not_hear_each_other(tmp_path, session):
    """Pub/sub ignores database numbers: each deployment's keys and channels carry its
    namespace (the database and COLLAB_REDIS_PREFIX), so three deployments serving a
    document of the same name over two processes each deliver all their own updates
    across processes, nothing of the others', and close no socket."""
    parts = urlsplit(REDIS_URL)
    db1 = urlunsplit(parts._replace(path="/1"))
    doc = f"same-name-{uuid.uuid4().hex[:8]}"
    deployments = {"zero": deployment(tmp_path, "zero", REDIS_URL),
                   "one": deployment(tmp_path, "one", db1),
                   "named": deployment(tmp_path, "named", REDIS_URL, prefix="other-app")}
    try:
        sides = {}
        for name, (owner, other) in deployments.items():
            reader = await NClient.connect(session, owner.http_url)  # owns the document
            await reader.request("doc.subscribe", doc=doc, sv=Doc().get_state())
            writer = await NClient.connect(session, other.http_url)  # relayed to the owner
            await writer.request("doc.subscribe", doc=doc, sv=Doc().get_state())
            sides[name] = (reader, writer, Editor())
        for n in range(30):
            for name, (_, writer, editor) in sides.items():
                await writer.request("doc.update", doc=doc, update=editor.type(f"<{name}{n}>"))
        for name, (reader, writer, _) in sides.items():
            copy = Doc()

            def caught_up(reader=reader, copy=copy, name=name) -> bool:
                for event in reader.events:
                    if event["event"] == "doc.update":
                        copy.apply_update(event["update"])
                return str(copy.get("body", type=Text)) == "".join(
                    f"<{name}{n}>" for n in range(30))

            await until(caught_up)
            assert not reader.ws.closed and not writer.ws.closed
            assert not [e for e in reader.events + writer.events
                        if e["event"] not in ("doc.update", "doc.awareness")], name
        for name, (owner, _) in deployments.items():
            resp = await session.get(f"{owner.http_url}/api/docs/{doc}?format=json&text=body")
            assert (await resp.json())["text"]["body"] == "".join(
                f"<{name}{n}>" for n in range(30))
    finally:
        for servers in deployments.values():
            for srv in servers:
                srv.stop()


async def test_a_killed_owner_is_taken_over_in_a_liveness_ttl_not_a_lease_ttl(tmp_path,
                                                                            session):
    """kill -9 of the owner: its heartbeat lapses within COLLAB_LIVENESS_TTL (1.5 s),
    and the survivor takes its document and actor over with a higher token, long
    before their 30 s leases would have run out; every acknowledged write is there."""
    env = {"REDIS_URL": REDIS_URL, "COLLAB_LEASE_TTL": "30"}
    a, b = (ServerProcess(tmp_path / f"{name}.db", database_url=f"sqlite:///{tmp_path}/s.db",
                          env=env, args=APP).start() for name in "ab")
    doc, key = f"takeover-{uuid.uuid4().hex[:8]}", f"takeover-{uuid.uuid4().hex[:8]}"
    try:
        owner = await NClient.connect(session, a.http_url)  # A owns the document ...
        await owner.request("doc.subscribe", doc=doc, sv=Doc().get_state())
        call = f"/api/actors/counter/{key}/actions/increment"
        assert (await session.post(a.http_url + call, json={})).status == 200  # ... and actor
        writer = await NClient.connect(session, b.http_url)  # relayed from B to A
        await writer.request("doc.subscribe", doc=doc, sv=Doc().get_state())
        editor = Editor()
        for n in range(10):
            await writer.request("doc.update", doc=doc, update=editor.type(f"<{n}>"))
        a.kill()
        killed = asyncio.get_running_loop().time()
        await writer.wait_for(lambda: writer.ws.closed)
        assert writer.ws.close_code == 1012

        async def written() -> bool:
            try:
                again = await NClient.connect(session, b.http_url)
                answer = await again.request("doc.subscribe", doc=doc, sv=editor.doc.get_state())
                await again.request("doc.update", doc=doc, update=editor.type("<after>"))
            except NativeError:
                await again.close()
                return False
            editor.doc.apply_update(answer["update"])
            await again.close()
            return True

        await until(written)
        took = asyncio.get_running_loop().time() - killed
        assert took < 10, f"took {took:.1f} s: the survivor waited for the lease"
        resp = await session.post(b.http_url + call, json={})
        assert resp.status == 200 and (await resp.json())["result"] == 2
        resp = await session.get(f"{b.http_url}/api/docs/{doc}?format=json&text=body")
        assert (await resp.json())["text"]["body"] == "".join(
            f"<{n}>" for n in range(10)) + "<after>"
        metrics = await (await session.get(f"{b.http_url}/metrics")).text()
        assert "collab_cluster_takeovers_total 2.0" in metrics  # the document and the actor
        assert "collab_cluster_owned_actors 2.0" in metrics
    finally:
        a.stop()
        b.stop()


def owned(metrics: str) -> float:
    line = next(line for line in metrics.splitlines()
                if line.startswith("collab_cluster_owned_actors "))
    return float(line.split()[1])


async def test_a_joining_process_takes_new_actors_and_a_leaving_one_hands_its_own_over(
        tmp_path, session):
    """Actors are placed where they are first needed: a process that joins owns the
    actors first touched through it at once, while the loaded ones stay put; one that
    stops (SIGTERM) releases its actors after their last commit, so the survivor
    serves them at the next touch, with their state, without waiting for a TTL."""
    env = {"REDIS_URL": REDIS_URL, "COLLAB_LEASE_TTL": "30"}

    def server(name: str) -> ServerProcess:
        return ServerProcess(tmp_path / f"{name}.db", database_url=f"sqlite:///{tmp_path}/s.db",
                             env=env, args=APP).start()

    prefix = f"join-{uuid.uuid4().hex[:8]}"
    a = server("a")
    b = None
    try:
        def call(srv: ServerProcess, n: int) -> str:
            return f"{srv.http_url}/api/actors/counter/{prefix}-{n}/actions/increment"

        for n in range(10):  # before B exists: A owns all ten
            assert (await session.post(call(a, n), json={})).status == 200
        b = server("b")
        for n in range(10, 20):  # first touched through B: B owns them
            assert (await session.post(call(b, n), json={})).status == 200
        for n in range(10):  # A's stay on A, reached through B
            assert (await (await session.post(call(b, n), json={})).json())["result"] == 2
        assert owned(await (await session.get(f"{a.http_url}/metrics")).text()) == 10
        assert owned(await (await session.get(f"{b.http_url}/metrics")).text()) == 10
        assert a.stop() == 0
        started = asyncio.get_running_loop().time()
        for n in range(10):  # released by A: B claims them at once, state intact
            resp = await session.post(call(b, n), json={})
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["result"] == 3
        assert asyncio.get_running_loop().time() - started < 5  # not the 30 s lease TTL
        assert owned(await (await session.get(f"{b.http_url}/metrics")).text()) == 20
    finally:
        a.stop()
        if b is not None:
            b.stop()


async def test_documents_are_managed_from_any_process(tmp_path, session):
    """Listing, versions, restore and delete work on a process that does not own the
    document: listing says it is loaded (elsewhere), the rest is forwarded to the owner,
    whose clients are told of the delete."""
    doc = f"managed-{uuid.uuid4().hex[:8]}"
    a, b = start(tmp_path, "a"), start(tmp_path, "b")
    try:
        owner_client = await NClient.connect(session, a.http_url)  # A owns the document
        await owner_client.request("doc.subscribe", doc=doc, sv=Doc().get_state())
        editor = Editor()
        resp = await session.post(f"{b.http_url}/api/docs/{doc}/update", data=editor.type("one"))
        assert resp.status == 200
        for srv in (a, b):
            page = await (await session.get(f"{srv.http_url}/api/docs?prefix={doc}")).json()
            assert [(d["name"], d["loaded"]) for d in page["docs"]] == [(doc, True)]
        resp = await session.post(f"{b.http_url}/api/docs/{doc}/versions", json={"name": "v"})
        assert resp.status == 201
        version = (await resp.json())["id"]
        await session.post(f"{b.http_url}/api/docs/{doc}/update", data=editor.type(" two"))
        resp = await session.post(f"{b.http_url}/api/docs/{doc}/versions/{version}/restore")
        assert resp.status == 200, await resp.text()
        view = await (await session.get(
            f"{a.http_url}/api/docs/{doc}?format=json&text=body")).json()
        assert view["text"]["body"] == "one"
        resp = await session.delete(f"{b.http_url}/api/docs/{doc}")
        assert resp.status == 204
        event = await owner_client.event("doc.deleted", doc=doc)
        assert event["epoch"] == 2
        for srv in (a, b):
            page = await (await session.get(f"{srv.http_url}/api/docs?prefix={doc}")).json()
            assert page["docs"] == []
    finally:
        a.stop()
        b.stop()
