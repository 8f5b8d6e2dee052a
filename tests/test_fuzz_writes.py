"""One bad row fails only its own request: arbitrary strings (lone surrogates, NUL,
huge ones) in every field of every write path reach a live server while honest
clients keep writing on /yjs, /ws and HTTP. Every fuzzed request gets an answer
that is its own (an error code, never `internal`), and no honest write ever
fails: before text was checked at the edge, a room message whose client_id held
a lone surrogate failed the whole group commit and closed other users' /yjs
writers with 1013."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from collab.protocol.ywire import SyncStep1, SyncStep2, SyncUpdate
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.waits import TIMEOUT
from tests.yclient import Editor, YClient

APP = ("--app", "tests.apps.counter:registry")
SECRET = secrets.token_hex(16)
#: Arbitrary strings drawn per run, plus the ones known to have hurt.
EXAMPLES = 60
KNOWN_BAD = ["\ud800-1", "\udfff", "a\x00b", "\x00", "x" * 100_000, "\U0001F600", "", " "]


def arbitrary_strings() -> list[str]:
    drawn: list[str] = []

    @settings(max_examples=EXAMPLES, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.text(alphabet=st.characters(codec=None, categories=None), max_size=40))
    def draw(value: str) -> None:
        drawn.append(value)

    draw()
    return KNOWN_BAD + drawn


def token(user: str, *, admin: bool = False) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + 3600, "admin": admin,
                       "docs": {"*": "rw"}, "rooms": {"*": "rw"}, "actors": {"*": "rw"}},
                      SECRET, algorithm="HS256")


#: Room calls without a connection name their user (the fuzzer's token is an admin's).
AS_FZ = {"user": "fz"}


def native_requests(s: str) -> list[tuple[str, dict[str, Any]]]:
    """Every /ws write with `s` in one of its fields."""
    room = {"actor": "room", "key": "lobby"}
    return [
        ("actor.call", {**room, "action": "send", "args": [s, "body"], "kwargs": AS_FZ}),
        ("actor.call", {**room, "action": "send", "args": ["fz-body", s], "kwargs": AS_FZ}),
        ("actor.call", {**room, "action": "send", "args": ["fz-mk", "b"],
                        "kwargs": {"meta": {s: 1}, **AS_FZ}}),
        ("actor.call", {**room, "action": "send", "args": ["fz-mv", "b"],
                        "kwargs": {"meta": {"k": s}, **AS_FZ}}),
        ("actor.call", {**room, "action": "send", "args": ["fz-user", "b"],
                        "kwargs": {"user": s}}),
        ("actor.call", {**room, "action": "edit", "args": [1, s], "kwargs": AS_FZ}),
        ("actor.call", {**room, "action": "react", "args": [1, s], "kwargs": AS_FZ}),
        ("actor.connect", {"actor": "room", "key": "side", "params": {"user": s}}),
        ("actor.call", {"actor": "journal", "key": "fz", "action": "note", "args": [s]}),
        ("actor.call", {"actor": "reminder", "key": "fz", "action": "remind_in",
                        "args": [3600, s]}),
        ("actor.call", {"actor": "reminder", "key": "fz", "action": "every_second",
                        "args": [s]}),
        ("actor.queue", {"actor": "worker", "key": "fz", "queue": "jobs", "message": {"n": s}}),
        ("actor.call", {"actor": "worker", "key": "fz", "action": "enqueue_own", "args": [s]}),
        ("doc.subscribe", {"doc": s}),
    ]


def http_requests(s: str) -> list[tuple[str, Any]]:
    """Every HTTP write with `s` in one of its fields: (path, JSON body)."""
    return [
        ("/api/actors/room/lobby/actions/send", {"args": [s, "b"], "kwargs": {"user": "fz"}}),
        ("/api/actors/room/lobby/actions/send", {"args": ["fz-u", "b"], "kwargs": {"user": s}}),
        ("/api/actors/journal/fz/actions/note", {"args": [s]}),
        ("/api/actors/worker/fz/queues/jobs", {"n": s}),
        ("/api/actors/reminder/fz/actions/every_second", {"args": [s]}),
        ("/api/admin/revoke", {"user": s}),
        ("/api/admin/permissions", {"user": s, "docs": {"x": "r"}}),
        ("/api/admin/permissions", {"user": "fz", "docs": {s: "r"}}),
    ]


class Honest:
    """Writers that must never see an error while the fuzzer runs."""

    def __init__(self) -> None:
        self.acked = Counter()
        self.errors: list[str] = []
        self.stop = asyncio.Event()

    async def yjs(self, session, srv: ServerProcess) -> None:
        editor = Editor()
        client = await YClient.connect(session, srv.http_url.replace("http", "ws", 1),
                                       f"honest-yjs?token={token('yjs')}")
        in_flight = 0

        async def read() -> None:
            nonlocal in_flight
            while True:
                message = await client.recv()
                if isinstance(message, SyncStep1):
                    await client.send(SyncStep2(editor.doc.get_update(message.state_vector)))
                elif isinstance(message, SyncUpdate):
                    in_flight = 0
                    self.acked["yjs"] += 1

        reading = asyncio.ensure_future(read())
        try:
            while not self.stop.is_set():
                if reading.done():
                    self.errors.append(f"/yjs closed: {client.ws.close_code} "
                                       f"{reading.exception()!r}")
                    return
                if in_flight < 10:
                    in_flight += 1
                    await client.send(SyncUpdate(editor.type("y")))
                await asyncio.sleep(0.002)
        finally:
            reading.cancel()
            await client.ws.close()

    async def native(self, session, srv: ServerProcess) -> None:
        editor = Editor()
        client = await NClient.connect(session, srv.http_url, token=token("ws"))
        try:
            await client.request("doc.subscribe", doc="honest-ws")
            while not self.stop.is_set():
                try:
                    await client.request("doc.update", doc="honest-ws", update=editor.type("w"))
                    self.acked["ws"] += 1
                except (NativeError, ConnectionError, TimeoutError) as exc:
                    self.errors.append(f"/ws doc.update: {exc!r}")
                    return
        finally:
            await client.close()

    async def http(self, session, srv: ServerProcess) -> None:
        headers = {"Authorization": f"Bearer {token('http')}"}
        editor = Editor()
        while not self.stop.is_set():
            async with session.post(f"{srv.http_url}/api/docs/honest-http/update",
                                    data=editor.type("h"), headers=headers) as response:
                if response.status != 200:
                    self.errors.append(f"HTTP update: {response.status} "
                                       f"{await response.text()}")
                    return
                self.acked["http"] += 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_arbitrary_strings_in_every_field_hurt_no_one_else(tmp_path, pg_schema, session,
                                                                 backend):
    async with contextlib.AsyncExitStack() as stack:
        url = None
        if backend == "postgres":
            url = await stack.enter_async_context(pg_schema())
        srv = ServerProcess(tmp_path / "fuzz.db", database_url=url, args=APP,
                            env={"COLLAB_SECRET": SECRET}).start()
        stack.callback(srv.stop)
        honest = Honest()
        writers = [asyncio.ensure_future(w(session, srv))
                   for w in (honest.yjs, honest.native, honest.http)]
        fuzzer = await NClient.connect(session, srv.http_url, json=True,
                                       token=token("fz", admin=True))
        stack.push_async_callback(fuzzer.close)
        await fuzzer.request("actor.call", actor="room", key="lobby", action="send",
                             args=["fz-first", "a message to edit and react to"], kwargs=AS_FZ)
        admin = {"Authorization": f"Bearer {token('fz', admin=True)}"}
        answers: Counter[str] = Counter()
        try:
            for s in arbitrary_strings():
                for op, fields in native_requests(s):
                    try:
                        await fuzzer.request(op, **fields)
                        answers["ok"] += 1
                    except NativeError as exc:
                        assert exc.code != "internal", (op, fields, exc)
                        answers[exc.code] += 1
                for path, body in http_requests(s):
                    async with session.post(srv.http_url + path, data=json.dumps(body),
                                            headers={**admin,
                                                     "Content-Type": "application/json"}) as r:
                        answer = await r.json()
                        assert r.status < 500, (path, body, r.status, answer)
                        answers[answer["error"]["code"] if r.status >= 400 else "ok"] += 1
                if any(w.done() for w in writers):
                    break
            await asyncio.sleep(0.5)  # writes the fuzzer caused settle while honest ones go on
        finally:
            honest.stop.set()
            await asyncio.wait(writers, timeout=TIMEOUT)
        assert honest.errors == [], honest.errors
        assert all(honest.acked[name] > 0 for name in ("yjs", "ws", "http")), honest.acked
        assert answers["invalid_text"] > 0, answers  # the lone surrogates were refused
        async with session.get(f"{srv.http_url}/metrics") as r:
            metrics = await r.text()
        assert "collab_commit_failures_total 0.0" in metrics, "a commit failed"
