"""A minimal y-websocket test client over aiohttp: raw frames in, parsed messages out.

It speaks the protocol by hand (not through a provider) so tests can send
exactly the bytes they mean, including bad ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from pycrdt import Doc, Text

from collab.protocol import ywire
from tests.serverproc import TIMEOUT


class YClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, base_url: str, doc: str) -> YClient:
        ws = await session.ws_connect(f"{base_url}/yjs/{doc}", autoping=True)
        return cls(ws)

    async def send(self, message: ywire.Message) -> None:
        await self.ws.send_bytes(ywire.serialize(message))

    async def recv(self) -> ywire.Message:
        msg = await self.ws.receive(timeout=TIMEOUT)
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise ConnectionError(f"expected a binary frame, got {msg.type!r} {msg.data!r}")
        return ywire.parse(msg.data)

    async def recv_until(self, predicate: Callable[[ywire.Message], bool]) -> ywire.Message:
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await self.recv()
                if predicate(message):
                    return message

    async def closed_with(self) -> int:
        """Read until the server closes; returns its close code."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING):
                    return self.ws.close_code
                if msg.type is aiohttp.WSMsgType.ERROR:
                    return self.ws.close_code


class Editor:
    """A pycrdt doc whose local edits come out as Yjs updates."""

    def __init__(self) -> None:
        self.doc = Doc()
        self.text = self.doc.get("body", type=Text)
        self.updates: list[bytes] = []
        self.doc.observe(lambda event: self.updates.append(event.update))

    def type(self, chars: str) -> bytes:
        self.text.insert(len(self.text), chars)
        return self.updates[-1]
