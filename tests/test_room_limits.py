"""A room's write limit (Room.RATE_PER_SECOND, bursts of RATE_BURST) on every path a
write can take, against a real server with auth on: `/ws` with `actor.connect`, `/ws`
calling without connecting (metered per socket), and the HTTP actor API (metered per
token user). Each client floods send, then finds edit, delete and react refused too;
another caller's budget is its own."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from collab.actors.room import Room
from tests.nclient import NativeError, NClient

SECRET = "room-limits-secret-long-enough-for-hs256"
#: Writes fired at once: far past a burst of RATE_BURST, so even a slow machine that
#: refills RATE_PER_SECOND for several seconds meanwhile must refuse some.
FLOOD = 100


def token(user: str, **claims) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time() + 600), "rooms": {"*": "rw"},
                       **claims}, SECRET, algorithm="HS256")


@pytest.fixture
def srv(server_factory):
    return server_factory("room-limits", env={"COLLAB_SECRET": SECRET})


async def ws_client(session, srv, user: str) -> NClient:
    url = srv.http_url.replace("http", "ws", 1)
    return NClient(await session.ws_connect(f"{url}/ws?token={token(user)}"), False)


def over_the_rate(codes: list[str], seconds: float) -> None:
    """The flood was cut to about its burst plus what refilled, the rest refused."""
    accepted = codes.count("ok")
    assert set(codes) <= {"ok", "rate_limited"}, codes
    assert "rate_limited" in codes
    assert accepted <= Room.RATE_BURST + Room.RATE_PER_SECOND * seconds + 1


class WsCaller:
    """Room actions over one `/ws` socket, connected to the room or not."""

    def __init__(self, client: NClient, room: str, connected: bool) -> None:
        self.client = client
        self.room = room
        self.kwargs = {} if connected else {"user": "ann"}

    async def __call__(self, action: str, *args) -> str:
        try:
            await self.client.request("actor.call", actor="room", key=self.room,
                                      action=action, args=list(args), kwargs=self.kwargs)
        except NativeError as exc:
            return exc.code
        return "ok"


class HttpCaller:
    """Room actions over the HTTP actor API, as the token's user."""

    def __init__(self, session, srv, room: str, user: str) -> None:
        self.session = session
        self.url = f"{srv.http_url}/api/actors/room/{room}/actions"
        self.headers = {"Authorization": f"Bearer {token(user, admin=True)}"}

    async def __call__(self, action: str, *args) -> str:
        async with self.session.post(f"{self.url}/{action}", headers=self.headers,
                                     json={"args": list(args), "kwargs": {"user": "ann"}}) as r:
            body = await r.json()
        if r.status == 200:
            return "ok"
        assert r.status == (429 if body["error"]["code"] == "rate_limited" else 400)
        return body["error"]["code"]


async def flood_then_every_write(call) -> None:
    started = time.monotonic()
    codes = await asyncio.gather(*(call("send", f"m-{i}", "hi") for i in range(FLOOD)))
    over_the_rate(codes, time.monotonic() - started)
    # Every write action draws on the same allowance: the bucket is empty now.
    assert await call("edit", 1, "changed") == "rate_limited"
    assert await call("react", 1, "+1") == "rate_limited"
    assert await call("delete", 1) == "rate_limited"


@pytest.mark.parametrize("path", ["ws-connected", "ws-unconnected", "http"])
async def test_room_writes_are_limited_on_every_path(srv, session, path):
    room = f"limits-{path}"
    if path == "http":
        call = HttpCaller(session, srv, room, "backend")
        other = HttpCaller(session, srv, room, "other-backend")
    else:
        connected = path == "ws-connected"
        client = await ws_client(session, srv, "ann")
        if connected:
            await client.request("actor.connect", actor="room", key=room)
        call = WsCaller(client, room, connected)
        # Another socket of the same user has an allowance of its own.
        other = WsCaller(await ws_client(session, srv, "ann"), room, False)
    await flood_then_every_write(call)
    assert await other("send", "from-another-caller", "hi") == "ok"
    # Reads are not metered.
    reader = await ws_client(session, srv, "ann")
    page = await reader.request("actor.call", actor="room", key=room, action="history",
                                kwargs={"limit": 200})
    assert len(page["messages"]) <= Room.RATE_BURST + Room.RATE_PER_SECOND * 10 + 1
