"""Webhooks against a real receiver on loopback and a real server process
(actors/webhooks.py): document changes arrive debounced and signed, a receiver that
fails is retried, one that is down while collab restarts still gets every event, a
deletion is announced, and the settings refuse a webhook without a secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time

import pytest
from aiohttp import web

from collab.config import ConfigError, Settings
from tests.serverproc import ServerProcess
from tests.waits import until
from tests.yclient import Editor

SECRET = "webhook-test-secret-0123456789"


class Receiver:
    """An HTTP endpoint on loopback that records the events it accepts, checking
    their signature; it can be told to fail, and be stopped and started on its port."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.bad_signatures = 0
        self.failures_left = 0
        self.port = _free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Collab-Signature", ""), expected):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.failures_left:
            self.failures_left -= 1
            return web.Response(status=500)
        self.events.append(json.loads(body))
        return web.Response(status=204)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def receiver():
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


def serve(tmp_path, receiver: Receiver) -> ServerProcess:
    env = {"COLLAB_WEBHOOK_URL": receiver.url, "COLLAB_WEBHOOK_SECRET": SECRET,
           "COLLAB_WEBHOOK_DOCS": "hooked/*", "COLLAB_WEBHOOK_QUIET": "0.3",
           "COLLAB_WEBHOOK_AT_MOST": "1"}
    return ServerProcess(tmp_path / "hooks.db", env=env).start()


async def test_changes_are_posted_debounced_signed_and_retried(tmp_path, session, receiver):
    srv = serve(tmp_path, receiver)
    try:
        receiver.failures_left = 1  # the first attempt fails: the queue retries it
        editor = Editor()
        for n in range(5):
            resp = await session.post(f"{srv.http_url}/api/docs/hooked/a/update",
                                      data=editor.type(f"<{n}>"))
            assert resp.status == 200
        await session.post(f"{srv.http_url}/api/docs/other/update", data=Editor().type("x"))
        await until(lambda: len(receiver.events) >= 1)
        (event,) = receiver.events
        assert (event["event"], event["name"], event["seq"]) == ("document.changed",
                                                                  "hooked/a", 5)
        assert abs(event["at"] - time.time()) < 60  # signed with the body: replays show
        assert receiver.bad_signatures == 0 and receiver.failures_left == 0

        assert (await session.delete(f"{srv.http_url}/api/docs/hooked/a")).status == 204
        await until(lambda: any(e["event"] == "document.deleted" for e in receiver.events))
        deleted = next(e for e in receiver.events if e["event"] == "document.deleted")
        assert (deleted["name"], deleted["epoch"]) == ("hooked/a", 1)

        resp = await session.post(f"{srv.http_url}/api/actors/room/lobby/actions/send",
                                  json={"args": ["m-1", "hello"], "kwargs": {"user": "ann"}})
        assert resp.status == 200, await resp.text()
        await until(lambda: any(e["event"] == "room.message" for e in receiver.events))
        posted = next(e for e in receiver.events if e["event"] == "room.message")
        assert posted["name"] == "lobby" and posted["message"]["body"] == "hello"
    finally:
        srv.stop()


async def test_a_receiver_down_across_a_restart_of_collab_gets_every_event(
        tmp_path, session, receiver):
    srv = serve(tmp_path, receiver)
    try:
        await receiver.stop()  # down: deliveries fail and wait in the durable queue
        resp = await session.post(f"{srv.http_url}/api/docs/hooked/b/update",
                                  data=Editor().type("while down"))
        assert resp.status == 200
        await asyncio.sleep(1.5)  # the change is due and its first attempt failed
        assert srv.stop() == 0
        srv = serve(tmp_path, receiver)
        await receiver.start()
        await until(lambda: [e["name"] for e in receiver.events] == ["hooked/b"])
        async with session.get(f"{srv.http_url}/api/actors/webhook/default/queues/"
                               "watch:document_changed") as resp:
            assert resp.status == 200
            assert (await resp.json())["dead"] == []
    finally:
        srv.stop()


def test_a_webhook_needs_a_secret_and_an_http_url():
    with pytest.raises(ConfigError, match="COLLAB_WEBHOOK_SECRET"):
        Settings.from_env({"COLLAB_WEBHOOK_URL": "https://example.com/hook"})
    with pytest.raises(ConfigError, match="http"):
        Settings.from_env({"COLLAB_WEBHOOK_URL": "ftp://x", "COLLAB_WEBHOOK_SECRET": SECRET})
