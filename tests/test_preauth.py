"""What a connection may cost before it authenticates, against real server processes
with auth on: a `/ws` frame over the auth message's 64 KiB is refused at its header,
and a request head over COLLAB_MAX_HEADER_BYTES is refused, so 200 sockets sending all
but the last byte of 8 MiB frames or 1 MiB heads (or of the largest they may send)
leave the server's memory nearly where it was; honest clients, `/yjs` and in-band
`/ws` alike, are not disturbed; requests pipelined behind an auth message go through
whatever their size; and once the connections waiting to authenticate hold more than
COLLAB_MAX_PREAUTH_BYTES (unfinished auth messages and heads), the longest waiting are
closed, while thousands of honest clients connecting at once are not."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import aiohttp
import pytest

from collab.config import DEFAULT_MAX_HEADER_BYTES, MAX_PREAUTH_MESSAGE_BYTES
from collab.errors import CloseCode
from collab.gateway.preauth import PREAUTH_SHED_MIN_BYTES, PendingAuth
from collab.protocol.ywire import SyncUpdate
from tests.nclient import NClient
from tests.test_auth_gateway import SECRET, an_update, token, ws_base
from tests.waits import TIMEOUT
from tests.yclient import Editor, YClient

#: Sockets in the flood; the issue measured 80 of them at +644 MiB.
FLOOD = 200
#: What the flood may cost the server in all (RSS growth), in MiB.
FLOOD_BUDGET_MIB = 32
#: Honest clients connecting at once, each authenticating in-band.
STORM = 1500
#: A frame just under COLLAB_MAX_MESSAGE_BYTES (8 MiB): the largest an authenticated
#: socket may send, and what the flood of the issue declared.
BIG_FRAME = 8 * 1024 * 1024 - 16


@pytest.fixture
def secured(server_factory):
    # Silent sockets must outlive the measurement: long deadlines.
    return server_factory("secured", env={"COLLAB_SECRET": SECRET, "COLLAB_AUTH_TIMEOUT": "120",
                                          "COLLAB_HEADER_TIMEOUT": "120"})


async def upgrade(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw `/ws` socket upgraded without credentials."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET /ws HTTP/1.1\r\nHost: collab\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def frame_header(length: int) -> bytes:
    """A masked binary frame's header declaring `length` payload bytes (mask key 0)."""
    return struct.pack("!BBQ", 0x82, 0x80 | 127, length) + b"\0\0\0\0"


async def send_all_but_the_last_byte(port: int, length: int):
    """Upgrade, then send a frame of `length` bytes but its last one; returns the
    socket, or None once the server stopped reading it (it refused the frame)."""
    reader, writer = await upgrade(port)
    writer.write(frame_header(length))
    chunk = bytes(64 * 1024)
    try:
        for start in range(0, length - 1, len(chunk)):
            writer.write(chunk[:min(len(chunk), length - 1 - start)])
            await writer.drain()
    except ConnectionError:
        writer.close()
        return None
    return reader, writer


async def refused_frame(port: int, length: int) -> bool:
    """Send all but the last byte of a `length`-byte frame; whether the server refused
    it (1009, or a reset that overtook the close frame)."""
    sent = await send_all_but_the_last_byte(port, length)
    if sent is None:
        return True
    reader, writer = sent
    try:
        async with asyncio.timeout(TIMEOUT):
            return await close_code(reader) == CloseCode.MESSAGE_TOO_BIG
    except (ConnectionError, asyncio.IncompleteReadError):
        return True
    finally:
        writer.close()


async def close_code(reader: asyncio.StreamReader) -> int | None:
    """The code of the server's close frame (unmasked), skipping any frame before it."""
    while True:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big") if payload else None


async def honest_clients_work(srv, session: aiohttp.ClientSession, name: str) -> None:
    """A stock y-websocket-style client (token in the query) syncs and has its update
    echoed, and a `/ws` client authenticates in-band and writes."""
    grant = token("ann", docs={"*": "rw"})
    yjs = await YClient.connect(session, f"{ws_base(srv)}/yjs", f"{name}?token={grant}")
    update = Editor().type("hello")
    await yjs.send(SyncUpdate(update))
    await yjs.recv_until(lambda m: isinstance(m, SyncUpdate) and m.update == update)
    await yjs.ws.close()
    native = NClient(await session.ws_connect(f"{ws_base(srv)}/ws"), json_mode=False)
    assert (await native.request("auth", token=grant))["user"] == "ann"
    await native.request("doc.subscribe", doc=name)
    assert (await native.request("doc.update", doc=name, update=an_update("hi")))["seq"] >= 1
    await native.close()


async def test_a_flood_of_unauthenticated_sockets_costs_little(secured, session):
    await honest_clients_work(secured, session, "warm-up")  # what every server has loaded
    before = secured.rss_mib()
    # The flood: all but the last byte of 8 MiB frames. Refused at the header,
    # the server reads no more of them.
    refused = await asyncio.gather(*(refused_frame(secured.port, BIG_FRAME)
                                     for _ in range(FLOOD)))
    assert all(refused)
    # The most a socket may send before it authenticates, held unfinished.
    held = await asyncio.gather(*(send_all_but_the_last_byte(secured.port,
                                                             MAX_PREAUTH_MESSAGE_BYTES)
                                  for _ in range(FLOOD)))
    assert None not in held
    await honest_clients_work(secured, session, "during")
    grown = secured.rss_mib() - before
    print(f"RSS {before:.1f} MiB -> +{grown:.1f} MiB with {FLOOD} sockets each holding "
          f"{MAX_PREAUTH_MESSAGE_BYTES - 1} bytes of a frame, after {FLOOD} refused 8 MiB ones")
    assert grown <= FLOOD_BUDGET_MIB
    for _, writer in held:
        writer.close()


async def send_head(port: int, length: int):
    """Open a connection and send `length` bytes of a request head that never ends;
    returns the connection, or None once the server stopped reading it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    line = b"X-Padding: " + b"v" * 200 + b"\r\n"
    writer.write(b"GET /ws HTTP/1.1\r\nHost: collab\r\n")
    try:
        for _ in range(length // len(line)):
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        writer.close()
        return None
    return reader, writer


async def refused_head(port: int, length: int) -> bool:
    """Send `length` bytes of a request head; whether the server refused it (431, or
    a reset that overtook the 431)."""
    sent = await send_head(port, length)
    if sent is None:
        return True
    reader, writer = sent
    try:
        async with asyncio.timeout(TIMEOUT):
            answer = await reader.read()
    except ConnectionError:
        return True
    finally:
        writer.close()
    return answer.startswith(b"HTTP/1.1 431 ")


async def test_a_flood_of_request_heads_costs_little(secured, session):
    await honest_clients_work(secured, session, "warm-up")
    before = secured.rss_mib()
    # Heads of 1 MiB, which aiohttp alone would take (128 headers of 8 KiB): refused at
    # 16 KiB with 431, the server reads no more of them.
    refused = await asyncio.gather(*(refused_head(secured.port, 1 << 20) for _ in range(FLOOD)))
    assert all(refused)
    # The largest head a client may send, held unfinished.
    held = await asyncio.gather(*(send_head(secured.port, DEFAULT_MAX_HEADER_BYTES - 300)
                                  for _ in range(FLOOD)))
    assert None not in held
    await honest_clients_work(secured, session, "during")
    grown = secured.rss_mib() - before
    print(f"RSS {before:.1f} MiB -> +{grown:.1f} MiB with {FLOOD} unfinished heads of "
          f"{DEFAULT_MAX_HEADER_BYTES - 300} bytes, after {FLOOD} refused 1 MiB ones")
    assert grown <= FLOOD_BUDGET_MIB
    for _, writer in held:
        writer.close()


async def test_a_frame_over_the_auth_message_limit_is_refused_at_its_header(secured):
    reader, writer = await upgrade(secured.port)
    writer.write(frame_header(MAX_PREAUTH_MESSAGE_BYTES + 1) + b"\0")  # and nothing more
    async with asyncio.timeout(TIMEOUT):
        assert await close_code(reader) == CloseCode.MESSAGE_TOO_BIG
    writer.close()


async def test_requests_right_behind_the_auth_message_go_through_at_full_size(secured, session):
    big = an_update("x" * 300_000)  # far over the 64 KiB an unauthenticated frame may have
    assert len(big) > 4 * MAX_PREAUTH_MESSAGE_BYTES
    for _ in range(3):  # they may reach the server together, or not: either way
        client = NClient(await session.ws_connect(f"{ws_base(secured)}/ws"), json_mode=False)
        # Sent back to back, none awaiting the answer to the one before.
        answers = await asyncio.gather(
            client.request("auth", token=token("ann", docs={"*": "rw"})),
            client.request("doc.subscribe", doc="pipelined"),
            client.request("doc.update", doc="pipelined", update=big))
        assert answers[0]["user"] == "ann" and answers[2]["seq"] >= 1
        await client.close()


async def still_open(reader: asyncio.StreamReader) -> bool:
    try:
        await asyncio.wait_for(reader.read(1), 0.5)
    except TimeoutError:
        return True
    except ConnectionError:
        pass
    return False


async def test_past_the_preauth_budget_the_longest_waiting_are_closed(server_factory, session):
    budget = 1 << 20
    srv = server_factory("budget", env={"COLLAB_SECRET": SECRET, "COLLAB_AUTH_TIMEOUT": "120",
                                        "COLLAB_HEADER_TIMEOUT": "120",
                                        "COLLAB_MAX_PREAUTH_BYTES": str(budget)})
    # Each holds all but the last byte of the largest auth message: 16 fit in 1 MiB.
    frames = [await send_all_but_the_last_byte(srv.port, MAX_PREAUTH_MESSAGE_BYTES)
              for _ in range(50)]
    fit = budget // (MAX_PREAUTH_MESSAGE_BYTES - 1)
    async with asyncio.timeout(TIMEOUT):
        codes = [await close_code(reader) for reader, _ in frames[:-fit]]
    assert set(codes) == {CloseCode.TRY_AGAIN_LATER}
    assert all(await asyncio.gather(*(still_open(reader) for reader, _ in frames[-fit + 1:])))
    # Unfinished heads count in the same budget: they push the frames out, then each other.
    heads = [await send_head(srv.port, DEFAULT_MAX_HEADER_BYTES - 300) for _ in range(100)]
    async with asyncio.timeout(TIMEOUT):
        assert not any(await asyncio.gather(*(still_open(reader)
                                              for reader, _ in frames + heads[:30])))
    assert all(await asyncio.gather(*(still_open(reader) for reader, _ in heads[-30:])))
    await honest_clients_work(srv, session, "newcomer")
    assert srv.log().count("COLLAB_MAX_PREAUTH_BYTES") <= 2  # a line per 10 s, not per socket
    for _, writer in frames + heads:
        writer.close()


async def test_thousands_of_honest_clients_at_once_are_all_let_in(secured):
    """A reconnect storm: every client waits its turn to authenticate, holding nothing."""
    grant = token("ann", docs={"*": "rw"})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as storm:
        sockets = await asyncio.gather(*(storm.ws_connect(f"{ws_base(secured)}/ws")
                                         for _ in range(STORM)))
        for ws in sockets:
            await ws.send_json({"id": 1, "op": "auth", "token": grant})
        answers = await asyncio.gather(*(ws.receive(timeout=TIMEOUT) for ws in sockets))
        assert all(a.type is aiohttp.WSMsgType.TEXT and a.json()["ok"] for a in answers)
        for ws in sockets:
            await ws.close()
    assert "COLLAB_MAX_PREAUTH_BYTES" not in secured.log()


def test_the_budget_sheds_the_longest_waiting_that_hold_much():
    big, small = PREAUTH_SHED_MIN_BYTES, 500
    closed: list[str] = []
    pending = PendingAuth(budget=3 * big + 2 * small)
    for name in ("small-1", "big-1", "small-2", "big-2", "big-3"):
        pending.enter(name, lambda name=name: closed.append(name))
    for name in ("small-1", "small-2"):
        pending.hold(name, small)
    pending.hold("big-1", big)
    pending.hold("big-2", big)
    pending.hold("big-3", big)
    assert closed == []  # exactly the budget
    pending.hold("big-3", 1)  # one byte past it: the longest waiting big one goes
    assert closed == ["big-1"] and pending.held == 2 * big + 2 * small + 1
    pending.hold("small-2", big)  # now big itself, and waiting longer than big-2
    assert closed == ["big-1", "small-2"]
    assert pending.closed == 2 and len(pending) == 3
    assert pending.evict_oldest() and closed[-1] == "small-1"  # to make room: any size


def test_past_the_budget_small_ones_go_too_when_big_ones_are_not_enough():
    closed: list[int] = []
    pending = PendingAuth(budget=2_000)
    for n in range(10):
        pending.enter(n, lambda n=n: closed.append(n))
        pending.hold(n, 300)  # each under the shedding threshold
    assert closed == [0, 1, 2, 3] and pending.held == 1_800
