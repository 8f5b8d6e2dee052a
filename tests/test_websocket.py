"""gateway/websocket.py in an in-process server: once a socket is open, aiohttp's
request and request handler are gone (what `detach` relies on in aiohttp's private
attributes fails here first if aiohttp changes), and the socket still answers pings,
completes close handshakes and refuses what it refused before."""

from __future__ import annotations

import asyncio
import base64
import gc
import os

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_protocol import RequestHandler

from collab.config import Settings
from collab.gateway.app import build_app
from collab.gateway.websocket import WebSocket
from collab.protocol import hocuspocus as hp
from collab.protocol import ywire
from collab.protocol.hocuspocus import Frame
from tests.waits import TIMEOUT, until
from tests.yclient import Editor, YClient

SOCKETS = 20
MAX_MESSAGE = 64 * 1024


@pytest.fixture
async def server(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/ws.db",
                        max_message_bytes=MAX_MESSAGE)
    server = TestServer(build_app(settings))
    await server.start_server()
    yield server
    await server.close()


def alive(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


async def test_an_open_socket_keeps_no_request_of_aiohttp(server):
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        clients = [await YClient.connect(session, base, "ws/held") for _ in range(SOCKETS)]
        for client in clients:
            await client.recv_until(lambda m: isinstance(m, ywire.SyncStep1))
        native = await session.ws_connect(f"{base}/ws")  # /ws, authenticated by none: open
        await native.send_json({"id": 1, "op": "ping"})
        assert (await native.receive_json(timeout=TIMEOUT))["id"] == 1
        provider = await session.ws_connect(f"{base}/")  # Hocuspocus, without an auth hook
        await provider.send_bytes(hp.serialize(Frame("ws/held", hp.Auth("", "4.8.0"))))
        async with asyncio.timeout(TIMEOUT):
            while not isinstance(hp.parse((await provider.receive()).data), Frame):
                pass
        assert alive(web.Request) == 0
        assert alive(RequestHandler) == 0
        assert alive(WebSocket) == SOCKETS + 2
        # ...and the sockets work: an edit reaches the others.
        await clients[0].send(ywire.SyncUpdate(Editor().type("held")))
        got = await clients[-1].recv_until(lambda m: isinstance(m, ywire.SyncUpdate))
        assert b"held" in got.update
        for client in clients:
            await client.ws.close()
        await native.close()
        await provider.close()
    await until(lambda: alive(WebSocket) == 0)


async def test_pings_are_answered_and_a_close_is_answered(server):
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/yjs/ws/ping"), autoping=False)
        await ws.ping(b"are you there")
        async with asyncio.timeout(TIMEOUT):
            while (msg := await ws.receive()).type is not aiohttp.WSMsgType.PONG:
                pass
        assert msg.data == b"are you there"
        assert await ws.close(code=4000, message=b"bye")  # the server's close came back
        assert ws.close_code == 1000


async def test_a_message_over_the_limit_closes_with_1009(server):
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/yjs/ws/big"))
        await ws.send_bytes(bytes(MAX_MESSAGE + 1))
        async with asyncio.timeout(TIMEOUT):
            while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE,
                                                     aiohttp.WSMsgType.CLOSED):
                pass
        assert ws.close_code == 1009


def masked_frame(payload: bytes) -> bytes:
    """A client's binary frame of any size (mask key 0: the payload goes as it is)."""
    size = len(payload)
    if size <= 125:
        length = bytes((0x80 | size,))
    elif size < 65536:
        length = bytes((0x80 | 126,)) + size.to_bytes(2, "big")
    else:
        length = bytes((0x80 | 127,)) + size.to_bytes(8, "big")
    return b"\x82" + length + b"\0\0\0\0" + payload


async def upgrade_with(server, path: str, frames: bytes):
    """A raw connection sending its upgrade request to `path` and `frames` in one
    write; returns it once the 101 has come."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: collab\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode() + frames)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def until_step_2(reader: asyncio.StreamReader) -> None:
    """Read the server's binary frames until a sync step 2."""
    while True:
        first, size = await reader.readexactly(2)
        assert first == 0x82, first
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await reader.readexactly(8), "big")
        if type(ywire.parse(await reader.readexactly(size))) is ywire.SyncStep2:
            return


STEP_1 = masked_frame(ywire.serialize(ywire.SyncStep1(b"\x00")))


async def test_frames_sent_with_the_upgrade_request_are_read(server):
    """A client may send frames right behind its upgrade request, in the same packet:
    they reach aiohttp's reader before the socket is taken over, and are not lost."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await upgrade_with(server, "/yjs/ws/pipelined", STEP_1)
        try:
            await until_step_2(reader)  # the answer to the pipelined step 1
        finally:
            writer.close()


async def test_a_flood_sent_with_the_upgrade_request_is_read_and_reading_goes_on(server):
    """More than the queue's limit (128 KiB), sent with the upgrade request, is queued
    before collab takes the socket over: all of it is read, and what comes after too."""
    editor = Editor()
    flood = b"".join(masked_frame(ywire.serialize(ywire.SyncUpdate(editor.type("x" * 50_000))))
                     for _ in range(3))
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await upgrade_with(server, "/yjs/ws/flood", flood)
        try:
            writer.write(STEP_1)
            await until_step_2(reader)  # the answer to the step 1 sent after the flood
        finally:
            writer.close()
